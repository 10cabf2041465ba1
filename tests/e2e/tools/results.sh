# shellcheck shell=bash
# What a tool of the table printed (tests/e2e/tools/s3-*.py and in-ns.sh's tool_*), as the
# result column: "list=ok read=ok write=ok", with FAIL for each step it did not show.
# Sourced by in-ns.sh and in-podman.sh.
#
#   tool_result OUTPUT
tool_result() {
  local res=""
  grep -q '^LIST: .*in\.csv\|^LIST: 1 rows' <<<"$1" && res+="list=ok " || res+="list=FAIL "
  grep -q "^READ: \(alpha\|\[(1, 2)\]\)" <<<"$1" && res+="read=ok " || res+="read=FAIL "
  grep -q '^WROTE$' <<<"$1" && res+="write=ok" || res+="write=FAIL"
  printf '%s\n' "$res"
}
