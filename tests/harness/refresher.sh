#!/usr/bin/env bash
# The node's refresher daemon for the test suites (no systemd on these machines: it is
# started the way the unit would start it, as root, detached).
#
#   refresher.sh up [ARGS...]   start aws-role-refresher ARGS... (default: the site map)
#   refresher.sh down           SIGTERM, as systemctl stop would
#   refresher.sh kill           SIGKILL: a crash, for the restart tests
#   refresher.sh log            print the log file's path
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

BIN=${AWS_ROLE_BIN_DIR:-/usr/libexec/aws-role}/aws-role-refresher
PIDF=$RUN_DIR/refresher.pid
LOGF=$LOG_DIR/refresher.log
PAT=aws-role-refresher

cmd_up() {
  local pid
  require_root
  [ -x "$BIN" ] || die "$BIN missing; run tests/harness/install.sh"
  install -d -m 0755 "$RUN_DIR" "$LOG_DIR"
  if pid=$(pidfile_alive "$PIDF" "$PAT"); then
    die "the refresher already runs (pid $pid); 'refresher.sh down' first"
  fi
  (cd / && exec setsid "$BIN" "$@" </dev/null >>"$LOGF" 2>&1) &
  echo "$!" >"$PIDF"
  sleep 0.3
  pid_matches "$(cat "$PIDF")" "$PAT" || { tail -n 5 "$LOGF" >&2; die "the refresher exited at once"; }
  echo "refresher up (pid $(cat "$PIDF")), log $LOGF"
}

cmd_kill() {
  local pid
  pid=$(pidfile_alive "$PIDF" "$PAT") || die "the refresher is not running"
  kill -KILL "$pid"
  wait_for 5 bash -c "! grep -q $PAT /proc/$pid/cmdline 2>/dev/null || grep -q '^State:.*Z' /proc/$pid/status"
  rm -f "$PIDF"
  echo "refresher killed (pid $pid)"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) stop_pidfile "$PIDF" "$PAT" aws-role-refresher ;;
  kill) cmd_kill ;;
  log) echo "$LOGF" ;;
  *) echo "usage: $0 up [ARGS...]|down|kill|log" >&2; exit 2 ;;
esac
