#!/usr/bin/env bash
# Assertions for the shell test suites. Source it; every check prints one TAP-like line
# ("ok - ..." / "not ok - ..."), and `finish` prints the counts and fails the script if
# any check failed.
# shellcheck disable=SC2034

T_PASS=0
T_FAIL=0
T_NAME=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${AWS_ROLE_TEST_VENV:-/opt/aws-role-test/venv}
BIN=${AWS_ROLE_BIN_DIR:-/usr/libexec/aws-role}

ok() { T_PASS=$((T_PASS + 1)); printf 'ok - %s\n' "$*"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); printf 'not ok - %s\n' "$*"; }

# check "what is proved" CMD...: passes when CMD succeeds.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# check_eq "what" EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

# check_contains "what" NEEDLE HAYSTACK
check_contains() {
  if [[ $3 == *"$2"* ]]; then ok "$1"; else not_ok "$1 ('$2' not in: ${3:0:400})"; fi
}

# check_not_contains "what" NEEDLE HAYSTACK
check_not_contains() {
  if [[ $3 != *"$2"* ]]; then ok "$1"; else not_ok "$1 ('$2' found)"; fi
}

finish() {
  printf '%s: %d passed, %d failed\n' "$T_NAME" "$T_PASS" "$T_FAIL"
  printf '%s %s\n' "$T_PASS" "$T_FAIL" >>"${AWS_ROLE_TEST_TALLY:-/dev/null}"
  [ "$T_FAIL" = 0 ]
}

# mode_owner PATH: "<octal mode> <user>:<group>"
mode_owner() { stat -c '%a %U:%G' "$1" 2>&1; }
