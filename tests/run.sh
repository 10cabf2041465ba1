#!/usr/bin/env bash
# The whole aws-role test suite. On a fresh Debian 12 machine, as root:
#
#     bash tests/run.sh
#
# Installs what it needs (tests/harness/deps.sh), checks formatting and lints, runs the
# unit/property tests and the fuzz targets (tests/fuzz/run.sh, 20 s each), builds and
# checks the .deb and .rpm (without installing them),
# brings up a real single-node Slurm and the STS emulator, installs the .deb (dpkg -i),
# runs the demo and the integration and end-to-end suites against the installed files,
# proves that no test drained the node, runs the multi-node suite on a 2-node cluster of
# its own (tests/harness/multinode.sh) on Slurm 22.05 and on Slurm 24.11 (a Debian trixie
# root; AWS_ROLE_TEST_SLURM_2411=0 skips it), and finally purges the package and checks
# that nothing of it is left. Ends with "N passed, N failed".
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
H=tests/harness

# Each stage's time is printed when the next one starts (CI must stay under 60 minutes).
T_START=$(date +%s)
T_STEP=$T_START
STEP_NAME=
step() {
  local now
  now=$(date +%s)
  [ -z "$STEP_NAME" ] || printf '=== took %d s: %s (%d s so far)\n' $((now - T_STEP)) "$STEP_NAME" $((now - T_START))
  STEP_NAME=$*
  T_STEP=$now
  [ $# = 0 ] || printf '\n=== %s\n' "$*"
}

step "dependencies"
bash $H/deps.sh

step "cargo fmt / clippy / shellcheck"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
bash tests/shellcheck.sh

step "unit and property tests"
cargo test --workspace 2>&1 | tee /tmp/aws-role-cargo-test.log
rust_pass=$(awk '/^test result:/ {s += $4} END {print s + 0}' /tmp/aws-role-cargo-test.log)
rust_fail=$(awk '/^test result:/ {s += $6} END {print s + 0}' /tmp/aws-role-cargo-test.log)

step "OpenPBS hook (stand-in pbs module)"
/usr/bin/python3 -m py_compile packaging/pbs/aws_role_launch_hook.py
/usr/bin/python3 -m unittest discover -s tests/pbs -v 2>&1 | tee /tmp/aws-role-hook-test.log
hook_pass=$(grep -c ' ok$' /tmp/aws-role-hook-test.log || true)
rust_pass=$((rust_pass + hook_pass))

TALLY=$(mktemp)
export AWS_ROLE_TEST_TALLY=$TALLY
failed_suites=()

# Each cargo-fuzz target for AWS_ROLE_FUZZ_SECONDS (default 20), after replaying the
# committed regression inputs; one check per target. About 2 min; 5 with a cold build.
step "fuzz targets, ${AWS_ROLE_FUZZ_SECONDS:-20} s each (tests/fuzz/run.sh)"
bash tests/fuzz/run.sh || failed_suites+=(tests/fuzz/run.sh)

# Before the cluster: it builds the same release binaries install.sh then reuses.
step "packages (tests/packaging/check.sh)"
bash tests/packaging/check.sh || failed_suites+=(tests/packaging/check.sh)

step "cluster, STS emulator, install"
bash $H/cluster.sh up
bash $H/sts.sh up
bash $H/sts.sh proxy-up
bash $H/install.sh

step "the README's demo (bash tests/demo.sh)"
if bash tests/demo.sh; then echo "1 0" >>"$TALLY"; else echo "0 1" >>"$TALLY"; failed_suites+=(tests/demo.sh); fi

# The multi-node suite runs last, on a cluster of its own (below).
MULTINODE=tests/e2e/multinode.sh
for t in tests/integration/*.sh tests/e2e/*.sh; do
  [ -e "$t" ] || continue
  [ "$t" = "$MULTINODE" ] && continue
  step "$t"
  bash "$t" || failed_suites+=("$t")
done

step "no test drained the node"
if bash $H/cluster.sh assert-healthy; then echo "1 0" >>"$TALLY"; else echo "0 1" >>"$TALLY"; failed_suites+=(assert-healthy); fi

# Its own munged, slurmctld port, STS emulator and network namespaces: it neither needs
# nor disturbs the single-node cluster, and takes itself down at the end.
step "no secret key the emulator issued is in any log or job output (tests/secret-scan.sh)"
bash tests/secret-scan.sh || failed_suites+=(tests/secret-scan.sh)

step "$MULTINODE (2 nodes, each in its own namespaces)"
bash "$MULTINODE" || failed_suites+=("$MULTINODE")

# The same suite on Slurm 24.11 from a Debian trixie root. The first run downloads and
# installs that root (~2.5 min, ~600 MB under /var/lib/aws-role-test) and builds the
# plugin against its headers (target/slurm-24.11).
if [ "${AWS_ROLE_TEST_SLURM_2411:-1}" = 1 ]; then
  step "$MULTINODE on Slurm 24.11 (trixie root)"
  AWS_ROLE_MN_SLURM=24.11 bash "$MULTINODE" || failed_suites+=("$MULTINODE (24.11)")
fi

# The SPANK values and layouts slurm-spank's bundled bindings hard-code, against each
# Slurm release's own headers: 22.05 (the host's) always, 24.11 when its root exists
# (made by the step above).
TRIXIE_INC=$(bash $H/trixie.sh path)/usr/include
abi_dirs=(/usr/include)
if [ "${AWS_ROLE_TEST_SLURM_2411:-1}" != 0 ] && [ -f "$TRIXIE_INC/slurm/spank.h" ]; then
  abi_dirs+=("$TRIXIE_INC")
fi
# The Slurm 24.11 packages (target/slurm-24.11/), checked like the 22.05 ones above,
# from the same trixie root's headers.
if [ "${AWS_ROLE_TEST_SLURM_2411:-1}" != 0 ] && [ -f "$TRIXIE_INC/slurm/spank.h" ]; then
  step "packages for Slurm 24.11 (SLURM_INCLUDE_DIR=$TRIXIE_INC tests/packaging/check.sh)"
  SLURM_INCLUDE_DIR=$TRIXIE_INC bash tests/packaging/check.sh || failed_suites+=("tests/packaging/check.sh (24.11)")
fi

step "SPANK ABI of the bundled bindings (tests/packaging/spank-abi.sh ${abi_dirs[*]})"
bash tests/packaging/spank-abi.sh "${abi_dirs[@]}" || failed_suites+=(tests/packaging/spank-abi.sh)

# Last: afterwards aws-role is no longer installed.
step "dpkg --purge aws-role (tests/packaging/purge.sh)"
bash tests/packaging/purge.sh || failed_suites+=(tests/packaging/purge.sh)

step # the last stage's time
read -r sh_pass sh_fail < <(awk '{p += $1; f += $2} END {print p + 0, f + 0}' "$TALLY")
rm -f "$TALLY"
[ ${#failed_suites[@]} = 0 ] || echo "failed: ${failed_suites[*]}"
echo
echo "rust: $rust_pass passed, $rust_fail failed; shell: $sh_pass passed, $sh_fail failed"
printf 'total: %d passed, %d failed\n' $((rust_pass + sh_pass)) $((rust_fail + sh_fail))
[ ${#failed_suites[@]} = 0 ] && [ "$rust_fail" = 0 ]
