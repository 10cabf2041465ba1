# shellcheck shell=bash
# What a tool of the table printed (tests/e2e/tools/s3-*.py and in-ns.sh's tool_*), as the
# result column: "list=ok read=ok write=ok", with FAIL for each step it did not show.
# Sourced by in-ns.sh and in-podman.sh, which print one report_tool line per tool.
#
#   tool_result OUTPUT
tool_result() {
  local res=""
  grep -q '^LIST: .*in\.csv\|^LIST: 1 rows' <<<"$1" && res+="list=ok " || res+="list=FAIL "
  grep -q "^READ: \(alpha\|\[(1, 2)\]\)" <<<"$1" && res+="read=ok " || res+="read=FAIL "
  grep -q '^WROTE$' <<<"$1" && res+="write=ok" || res+="write=FAIL"
  printf '%s\n' "$res"
}

# The TOOL line of one run (its version from the first line of OUTPUT, its result and
# first error), the INSIDE lines it printed, and on a failure the tool's own words: its
# output and the last 20 lines of ERR_FILE and of each MORE file, as ERR lines.
#
#   report_tool NAME OUTPUT EXIT_STATUS MECHANISM IMDS_CONTACTS ERR_FILE [MORE...]
report_tool() {
  local t=$1 out=$2 rc=$3 mech=$4 imds=$5 errf=$6 res err
  shift 6
  res=$(tool_result "$out")
  err=$(grep -v '^\s*$' "$errf" | grep -iv 'warn' | head -1 | cut -c1-200)
  [ "$rc" = 0 ] || err="exit $rc: $err"
  printf 'TOOL %s | %s | %s | %s | imds=%s | %s\n' "$t" "$(grep -v "^INSIDE: " <<<"$out" | head -1)" "$mech" "$res" \
    "$imds" "$err"
  grep '^INSIDE: ' <<<"$out" | sed "s/^/$t /"
  case "$res $rc" in *FAIL* | *[1-9]) { echo "$out"; tail -n 20 "$errf" "$@"; } | sed "s/^/ERR $t: /" ;; esac
}
