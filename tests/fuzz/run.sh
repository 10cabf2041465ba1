#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time: first the
# committed regression inputs (fuzz/regressions/<target>/, each must pass), then
# libFuzzer from the committed seeds (fuzz/seeds/<target>/) for AWS_ROLE_FUZZ_SECONDS
# (default 20). One check per target; a crash or a failed property fails it and prints
# the reproducer. See tests/README.md ("Fuzzing").
#
#     bash tests/fuzz/run.sh                         # every target, 20 s each
#     AWS_ROLE_FUZZ_SECONDS=300 bash tests/fuzz/run.sh map walltime
#
# Environment:
#   AWS_ROLE_FUZZ_SECONDS    seconds of fuzzing per target (default 20; 0: regressions only)
#   AWS_ROLE_FUZZ_WORK       scratch directory for corpora, crash inputs and logs
#                            (default /tmp/aws-role-fuzz; corpora grow across runs there)
#   AWS_ROLE_FUZZ_SANITIZER  cargo fuzz --sanitizer (default none: the fuzzed code has no
#                            unsafe, and without ASan libFuzzer runs several times faster)
#   AWS_ROLE_FUZZ_TOOLCHAIN  "nightly" or "stable" (stable: RUSTC_BOOTSTRAP=1); default:
#                            nightly when rustup has it, else stable
#
# cargo-fuzz itself comes from tests/harness/deps.sh (pinned version).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
T_NAME=tests/fuzz/run.sh
cd "$REPO" || exit 1

ALL_TARGETS=(map walltime session_name pbs_args state_record endpoint)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
SECS=${AWS_ROLE_FUZZ_SECONDS:-20}
WORK=${AWS_ROLE_FUZZ_WORK:-/tmp/aws-role-fuzz}
SANITIZER=${AWS_ROLE_FUZZ_SANITIZER:-none}
case $SECS in '' | *[!0-9]*)
  echo "AWS_ROLE_FUZZ_SECONDS must be a whole number of seconds, not '$SECS'" >&2
  exit 2
  ;;
esac
mkdir -p "$WORK"
started=$(date +%s)

# cargo-fuzz needs nightly's -Z flags. Without a nightly toolchain, stable accepts them
# under RUSTC_BOOTSTRAP=1 (what the Rust project itself builds with).
toolchain=${AWS_ROLE_FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ]; then
  if cargo +nightly --version >/dev/null 2>&1; then toolchain=nightly; else toolchain=stable; fi
fi
case $toolchain in
  nightly) CARGO=(cargo +nightly) ;;
  stable)
    export RUSTC_BOOTSTRAP=1
    # `cargo +stable` only where rustup is; a plain cargo otherwise.
    if cargo +stable --version >/dev/null 2>&1; then CARGO=(cargo +stable); else CARGO=(cargo); fi
    ;;
  *)
    echo "AWS_ROLE_FUZZ_TOOLCHAIN must be nightly or stable, not '$toolchain'" >&2
    exit 2
    ;;
esac
# How a person reruns one input with the same build.
REPRO="${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }${CARGO[*]} fuzz run -s $SANITIZER"
echo "toolchain: $("${CARGO[@]}" --version 2>&1)${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}; $(cargo-fuzz --version 2>&1 | head -1)"
echo "targets: ${TARGETS[*]}; ${SECS} s each; sanitizer $SANITIZER; scratch $WORK"

# One build for every target (cargo fuzz run would otherwise re-check it each time).
build_log=$WORK/build.log
build_start=$(date +%s)
built=1
if ! "${CARGO[@]}" fuzz build --sanitizer "$SANITIZER" >"$build_log" 2>&1; then
  built=0
  tail -40 "$build_log"
fi
build_secs=$(($(date +%s) - build_start))
echo "build: ${build_secs} s ($([ $built = 1 ] && echo ok || echo FAILED), log $build_log)"

total_runs=0
crashed=()
summary=()

# fuzz_one TARGET: regressions, then a bounded run. Prints its stats; fails on a crash.
fuzz_one() {
  local t=$1
  local log=$WORK/$t.log corpus=$WORK/corpus/$t artifacts=$WORK/artifacts/$t/
  local seeds=fuzz/seeds/$t regressions=fuzz/regressions/$t
  if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
    echo "  $t: no such fuzz target (fuzz/fuzz_targets/$t.rs)"
    return 1
  fi
  [ "$built" = 1 ] || {
    echo "  $t: not run, the build failed"
    return 1
  }
  mkdir -p "$corpus" "$artifacts"
  # Replay: every committed regression input, each run once as a file.
  local inputs=()
  if [ -d "$regressions" ]; then
    mapfile -t inputs < <(find "$regressions" -type f ! -name '.*' | sort)
  fi
  if [ ${#inputs[@]} -gt 0 ]; then
    if ! "${CARGO[@]}" fuzz run --sanitizer "$SANITIZER" "$t" "${inputs[@]}" -- \
      -runs=1 -timeout=10 -artifact_prefix="$artifacts" >"$log.regressions" 2>&1; then
      grep -E 'panicked at|^(assertion|SUMMARY)|Running: ' "$log.regressions" | tail -8 | sed 's/^/    /'
      local bad
      bad=$(grep -o 'Running: [^ ]*' "$log.regressions" | tail -1 | cut -d' ' -f2)
      echo "  $t: a regression input fails again: ${bad:-see $log.regressions}"
      echo "    reproduce: $REPRO $t ${bad:-$regressions}"
      crashed+=("$t")
      summary+=("$t regression-failed")
      return 1
    fi
    echo "  $t: ${#inputs[@]} regression input(s) pass"
  fi
  [ "$SECS" -gt 0 ] || return 0
  # Corpus dirs: the scratch one first (libFuzzer adds new inputs only there), then the
  # committed seeds and regressions, read-only.
  local dirs=("$corpus" "$seeds")
  [ -d "$regressions" ] && dirs+=("$regressions")
  # A dictionary of tokens libFuzzer would hardly build byte by byte (boundary integers).
  local dict=()
  [ -f "fuzz/dicts/$t.dict" ] && dict=(-dict="fuzz/dicts/$t.dict")
  local rc=0
  "${CARGO[@]}" fuzz run --sanitizer "$SANITIZER" "$t" "${dirs[@]}" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$artifacts" >"$log" 2>&1 || rc=$?
  local runs secs per_sec corp cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  total_runs=$((total_runs + ${runs:-0}))
  if [ "$rc" != 0 ]; then
    local unit
    unit=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //')
    grep -E 'panicked at|^(assertion|  left|  right|SUMMARY)' "$log" | head -8 | sed 's/^/    /'
    echo "  $t: CRASHED after ${runs:-?} runs (exit $rc; log $log)"
    echo "    input: ${unit:-none written, see the log}"
    [ -n "$unit" ] && echo "    reproduce: $REPRO $t $unit"
    echo "    then: copy it to $regressions/<what-it-shows>, fix, add a unit test in core"
    crashed+=("$t")
    summary+=("$t crashed")
    return 1
  fi
  echo "  $t: ${runs:-?} runs in ${secs:-?} s (${per_sec:-?} exec/s), corpus ${corp:-?} inputs, coverage ${cov:-?} edges"
  summary+=("$t ${runs:-?}")
}

for t in "${TARGETS[@]}"; do
  echo "--- $t"
  check "fuzz target $t: regressions pass and ${SECS} s of libFuzzer find nothing" fuzz_one "$t"
done

# The endpoint target's job directory (fake credentials, one per fuzzing process).
rm -rf "${TMPDIR:-/tmp}"/aws-role-fuzz-endpoint-*

elapsed=$(($(date +%s) - started))
echo "fuzz: ${#TARGETS[@]} targets, $total_runs runs, ${#crashed[@]} crashed${crashed[*]:+ (${crashed[*]})}; build ${build_secs} s, total ${elapsed} s; ${summary[*]}"
finish
