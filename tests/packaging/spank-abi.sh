#!/usr/bin/env bash
# The SPANK ABI the plugin is built with, checked against a Slurm release's own headers.
#
# The plugin does not generate its SPANK bindings: slurm-spank is built with
# SKIP_SLURM_BINDINGS=1 (.cargo/config.toml) and uses the bindings it bundles
# (build/bindings.rs, generated from Slurm 23.11's spank.h, plus src/spank_sys.rs for
# struct spank_option). Those only work on another Slurm release if every value and layout
# they hard-code is the same there. This script extracts them from the crate's source and
# compiles a small C program against the given headers that prints the headers' values:
#
#   - every spank_item_t constant (S_JOB_UID, S_JOB_ID, S_JOB_ARRAY_ID, ...),
#   - every spank_context_t constant (S_CTX_*),
#   - every ESPANK_* error (spank_err_t, i.e. slurm_err_t) and the #defines
#     ESPANK_SUCCESS, SLURM_SUCCESS, SLURM_ERROR, SPANK_OPTION_MAXLEN, HAVE_S_CTX_*,
#   - sizeof of spank_item_t, spank_err_t, spank_context_t, and sizeof/offsetof of every
#     field of struct spank_option (Rust side: repr(C) layout of the crate's struct on
#     x86_64: pointers and Option<fn> 8 bytes, c_int 4),
#   - that every function the bindings declare is declared by the headers (one not
#     declared only fails if the built plugin needs it: see below).
#
# Our own shim (spank-plugin/src/shim.c) is C compiled against the headers of the Slurm
# release it is built for, so it has no bundled values to check.
#
#     bash tests/packaging/spank-abi.sh [INCLUDE_DIR]...
#
# INCLUDE_DIR holds slurm/spank.h (default /usr/include, the host's 22.05). Each
# mismatch is one failed check. Ends with "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

WORK=$(mktemp -d /tmp/aws-role-spank-abi.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The slurm-spank version in Cargo.lock, and its source in cargo's registry.
crate_version=$(awk '/^name = "slurm-spank"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$REPO/Cargo.lock")
CRATE=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"slurm-spank-$crate_version" 2>/dev/null | head -n1)
if [ -z "$crate_version" ] || [ ! -f "$CRATE/build/bindings.rs" ] || [ ! -f "$CRATE/src/spank_sys.rs" ]; then
  not_ok "slurm-spank $crate_version's source (build/bindings.rs) is in cargo's registry (cargo fetch)"
  finish
  exit 1
fi
BINDINGS=$CRATE/build/bindings.rs
echo "# bundled bindings: $BINDINGS"

# ------------------------------------------------------------- what the bindings say
# NAME VALUE, one a line: constants of the enums bindgen prefixes with their type...
sed -nE \
  -e 's/^pub const (spank_item|spank_context)_([A-Z0-9_]+): [a-z_]+ = (-?[0-9]+);$/\2 \3/p' \
  -e 's/^pub const slurm_err_t_(ESPANK_[A-Z0-9_]+): slurm_err_t = (-?[0-9]+);$/\1 \2/p' \
  -e 's/^pub const (ESPANK_SUCCESS|SLURM_SUCCESS|SLURM_ERROR|SPANK_OPTION_MAXLEN|HAVE_S_CTX_[A-Z_]+): [a-z0-9]+ = (-?[0-9]+);$/\1 \2/p' \
  "$BINDINGS" >"$WORK/constants"
# ...the enum types (bindgen: c_uint, 4 bytes)...
{
  echo "sizeof(spank_item_t) 4"
  echo "sizeof(spank_err_t) 4"
  echo "sizeof(spank_context_t) 4"
} >"$WORK/sizes"
# ...struct spank_option as src/spank_sys.rs defines it (repr(C), x86_64).
awk '
  /^pub struct spank_option \{/ {in_s = 1; off = 0; maxa = 1; next}
  in_s && /^\}/ {
    size = int((off + maxa - 1) / maxa) * maxa
    print "sizeof(struct spank_option)", size
    in_s = 0
  }
  in_s && $1 == "pub" {
    f = $2; sub(/:$/, "", f)
    t = $0; sub(/^ *pub [a-z_]+: */, "", t); sub(/,$/, "", t)
    if (t ~ /^\*(const|mut) / || t == "spank_opt_cb_f") s = 8
    else if (t ~ /c_int$/) s = 4
    else { print "UNKNOWN-FIELD-TYPE", f, t; next }
    off = int((off + s - 1) / s) * s
    print "offsetof(struct spank_option, " f ")", off
    off += s
    if (s > maxa) maxa = s
  }' "$CRATE/src/spank_sys.rs" >>"$WORK/sizes"
# Functions the bindings declare.
sed -nE 's/^    pub fn ([a-z][a-z_0-9]*)\(.*/\1/p' "$BINDINGS" | sort -u >"$WORK/functions"

n_const=$(wc -l <"$WORK/constants")
n_size=$(wc -l <"$WORK/sizes")
n_fn=$(wc -l <"$WORK/functions")
check "the bindings name the items, contexts and errors the plugin relies on" \
  bash -c "grep -q '^S_JOB_UID ' '$WORK/constants' && grep -q '^S_JOB_ARRAY_ID ' '$WORK/constants' && grep -q '^ESPANK_ENV_NOEXIST ' '$WORK/constants' && grep -q '^S_CTX_JOB_SCRIPT ' '$WORK/constants'"
check_eq "every struct spank_option field type is known" "" "$(grep UNKNOWN "$WORK/sizes")"
echo "# from the bindings: $n_const constants, $n_size sizes/offsets, $n_fn functions"

# The plugin's undefined symbols (if built): a function missing from a release's headers
# only matters if the plugin calls it.
PLUGIN_UNDEF=$WORK/plugin-undefined
so=${CARGO_TARGET_DIR:-$REPO/target}/release/libaws_role_spank.so
if [ ! -f "$so" ]; then
  (cd "$REPO" && cargo build -q --release --locked -p aws-role-spank) >"$WORK/cargo.log" 2>&1 ||
    sed 's/^/#   /' "$WORK/cargo.log" | tail -n 20
fi
if [ -f "$so" ]; then
  nm -D --undefined-only "$so" | awk '{print $NF}' | sort -u >"$PLUGIN_UNDEF"
  ok "the plugin's undefined symbols ($(wc -l <"$PLUGIN_UNDEF")): $so"
else
  not_ok "the plugin is built ($so)"
  : >"$PLUGIN_UNDEF"
fi

# ---------------------------------------------------------------- each Slurm's headers
check_headers() {
  local inc=$1 ver hex prog=$WORK/abi.c fn name value expr
  hex=$(awk '$1 == "#define" && $2 == "SLURM_VERSION_NUMBER" {print $3; exit}' "$inc/slurm/slurm_version.h" 2>/dev/null)
  if [[ ! $hex =~ ^0[xX][0-9a-fA-F]+$ ]]; then
    not_ok "$inc/slurm/slurm_version.h gives SLURM_VERSION_NUMBER"
    return
  fi
  ver=$(printf '%d.%02d.%d' $(((hex >> 16) & 0xff)) $(((hex >> 8) & 0xff)) $((hex & 0xff)))
  echo "# Slurm $ver headers: $inc"
  {
    echo '#include <stddef.h>'
    echo '#include <stdio.h>'
    echo '#include <slurm/spank.h>'
    echo 'int main(void) {'
    while read -r name value; do
      echo "  printf(\"$name %lld\\n\", (long long)($name));"
    done <"$WORK/constants"
    while read -r expr; do
      expr=${expr% *}
      echo "  printf(\"$expr %zu\\n\", $expr);"
    done <"$WORK/sizes"
    echo '  return 0;'
    echo '}'
  } >"$prog"
  if ! gcc -std=gnu11 -Wall -Werror -I"$inc" -o "$WORK/abi" "$prog" 2>"$WORK/gcc.log"; then
    sed 's/^/#   /' "$WORK/gcc.log" | head -n 20
    not_ok "Slurm $ver: the C program with every bundled constant compiles against $inc"
    return
  fi
  "$WORK/abi" >"$WORK/actual"
  while read -r name value; do
    check_eq "Slurm $ver: $name" "$value" "$(awk -v n="$name" '$1 == n {print $2}' "$WORK/actual")"
  done <"$WORK/constants"
  while read -r expr; do
    check_eq "Slurm $ver: ${expr% *}" "${expr##* }" "$(grep -F "${expr% *} " "$WORK/actual" | awk '{print $NF}')"
  done <"$WORK/sizes"
  # Functions: declared by the headers (an undeclared identifier fails to compile).
  local missing=() unused_missing=()
  while read -r fn; do
    printf '#include <slurm/spank.h>\nvoid *p = (void *)&%s;\n' "$fn" >"$WORK/fn.c"
    if ! gcc -std=gnu11 -c -I"$inc" -o /dev/null "$WORK/fn.c" 2>/dev/null; then
      if grep -qxF "$fn" "$PLUGIN_UNDEF"; then missing+=("$fn"); else unused_missing+=("$fn"); fi
    fi
  done <"$WORK/functions"
  check_eq "Slurm $ver: every bundled function the plugin calls is declared ($n_fn checked)" "" "${missing[*]}"
  [ ${#unused_missing[@]} = 0 ] ||
    echo "# Slurm $ver: not declared, and not called by the plugin: ${unused_missing[*]}"
}

[ $# -gt 0 ] || set -- /usr/include
for inc in "$@"; do
  check_headers "$inc"
done
finish
