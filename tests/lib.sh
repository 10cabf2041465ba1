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

# node_credentials FILE [SECRET]: the node's own test keys, root-only, as the map's
# credentials_file (never in any environment).
node_credentials() {
  install -m 0600 /dev/null "$1"
  printf '[default]\naws_access_key_id = AKIDNODE000000000000\naws_secret_access_key = %s\n' \
    "${2:-nodesecret}" >"$1"
}

# map_head ENDPOINT TIMEOUT MAX_ATTEMPTS [MORE_STS_LINES] [CREDENTIALS_FILE]: the [sts] and
# [node] sections the integration suites' maps start with: node credentials in
# $WORK/node-credentials, jobs under $BASE, the credential helper from $BIN. The caller
# appends its roles (and any other section).
map_head() {
  cat <<TOML
[sts]
region = "us-east-1"
endpoint = "$1"
credentials_file = "${5:-$WORK/node-credentials}"
timeout = "$2"
max_attempts = $3
${4:-}
[node]
base_dir = "$BASE"
credential_helper = "$BIN/aws-role-credentials"
TOML
}

finish() {
  printf '%s: %d passed, %d failed\n' "$T_NAME" "$T_PASS" "$T_FAIL"
  printf '%s %s\n' "$T_PASS" "$T_FAIL" >>"${AWS_ROLE_TEST_TALLY:-/dev/null}"
  [ "$T_FAIL" = 0 ]
}

# mode_owner PATH: "<octal mode> <user>:<group>"
mode_owner() { stat -c '%a %U:%G' "$1" 2>&1; }
# job_file PATH: mode, owner and the named-user ACL entries of a job's file, e.g.
# "640 root:root user:alice:r--": root's, and readable (not writable) by the job's user.
job_file() {
  printf '%s %s' "$(stat -c '%a %U:%G' "$1" 2>&1)" \
    "$(getfacl -cp "$1" 2>/dev/null | grep '^user:[^:]' | tr '\n' ' ' | sed 's/ $//')"
}
