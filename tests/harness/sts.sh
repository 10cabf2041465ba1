#!/usr/bin/env bash
# Local STS emulator (moto's server) for the aws-role test suite.
#
#   sts.sh up      start moto_server on 127.0.0.1:$AWS_ROLE_TEST_STS_PORT (default 5059)
#   sts.sh down    stop the moto_server that `up` started
#   sts.sh url     print the endpoint URL
#   sts.sh check   get-caller-identity + assume-role through the venv's aws CLI
#   sts.sh reset   forget all state moto holds (POST /moto-api/reset)
#   sts.sh proxy-up|proxy-down|proxy-url
#                  the fault-injecting proxy in front of moto (sts-fault-proxy.py) on
#                  127.0.0.1:$AWS_ROLE_TEST_PROXY_PORT (default 5060)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

PORT=${AWS_ROLE_TEST_STS_PORT:-5059}
URL=http://127.0.0.1:$PORT
PIDF=$RUN_DIR/moto.pid
LOGF=$LOG_DIR/moto.log
PAT=bin/moto_server
START_TIMEOUT=${AWS_ROLE_TEST_STS_TIMEOUT:-30}

answers() { http_answers "$URL/moto-api/"; }

cmd_up() {
  local t0 pid
  t0=$(now_ms)
  require_root
  [ -x "$VENV/bin/moto_server" ] || die "$VENV/bin/moto_server missing; run tests/harness/deps.sh"
  install -d -m 0755 "$RUN_DIR" "$LOG_DIR"
  if pid=$(pidfile_alive "$PIDF" "$PAT"); then
    pid_matches "$pid" "-p $PORT" \
      || die "moto_server (pid $pid) runs on another port than $PORT; run 'sts.sh down' first"
    wait_for "$START_TIMEOUT" answers || die "moto_server (pid $pid) does not answer on $URL"
    echo "sts up: $URL in $(elapsed_s "$t0") (already running, pid $pid)"
    return 0
  fi
  rm -f "$PIDF"
  # Something else on the port would make our checks pass against the wrong server.
  if answers; then
    die "something not started by sts.sh already answers on $URL"
  fi
  # setsid + cd /: same reasons as the Slurm daemons in cluster.sh (survive the CI step,
  # do not pin its cwd); setsid execs, so $! is moto_server's own PID.
  (cd / && exec setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" \
    </dev/null >>"$LOGF" 2>&1) &
  pid=$!
  echo "$pid" >"$PIDF"
  if ! wait_for "$START_TIMEOUT" answers; then
    tail -n 20 "$LOGF" >&2 || true
    die "moto_server (pid $pid) does not answer on $URL after ${START_TIMEOUT}s"
  fi
  pid_matches "$pid" "$PAT" || { tail -n 20 "$LOGF" >&2; die "moto_server exited; is port $PORT taken?"; }
  echo "sts up: $URL in $(elapsed_s "$t0") (started pid $pid)"
}

cmd_down() {
  stop_pidfile "$PIDF" "$PAT" moto_server
}

PROXY_PORT=${AWS_ROLE_TEST_PROXY_PORT:-5060}
PROXY_URL=http://127.0.0.1:$PROXY_PORT
PROXY_PIDF=$RUN_DIR/sts-fault-proxy.pid
PROXY_PAT=sts-fault-proxy.py

proxy_answers() {
  timeout 5 "$VENV/bin/python3" -c '
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/stats", timeout=3)' "$PROXY_URL" >/dev/null 2>&1
}

cmd_proxy_up() {
  require_root
  cmd_up >/dev/null
  if pidfile_alive "$PROXY_PIDF" "$PROXY_PAT" >/dev/null && proxy_answers; then
    echo "fault proxy up: $PROXY_URL (already running)"
    return 0
  fi
  (cd / && exec setsid "$VENV/bin/python3" "$HERE/sts-fault-proxy.py" --port "$PROXY_PORT" \
    --upstream "$URL" </dev/null >>"$LOG_DIR/sts-fault-proxy.log" 2>&1) &
  echo "$!" >"$PROXY_PIDF"
  wait_for "$START_TIMEOUT" proxy_answers || die "fault proxy does not answer on $PROXY_URL"
  echo "fault proxy up: $PROXY_URL (started pid $(cat "$PROXY_PIDF"))"
}

aws_test() {
  AWS_ACCESS_KEY_ID=AKIDTESTAWSROLE00000 AWS_SECRET_ACCESS_KEY=dummy-secret \
    AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    timeout 30 "$VENV/bin/aws" --endpoint-url "$URL" "$@"
}

cmd_check() {
  aws_test sts get-caller-identity --output json
  aws_test sts assume-role --role-arn arn:aws:iam::123456789012:role/x \
    --role-session-name slurm-1-0 --output json
}

cmd_reset() {
  timeout 10 "$VENV/bin/python3" -c '
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/reset", method="POST"), timeout=5)
' "$URL"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  url) echo "$URL" ;;
  check) cmd_check ;;
  reset) cmd_reset ;;
  proxy-up) cmd_proxy_up ;;
  proxy-down) stop_pidfile "$PROXY_PIDF" "$PROXY_PAT" sts-fault-proxy ;;
  proxy-url) echo "$PROXY_URL" ;;
  *)
    echo "usage: $0 up|down|url|check|reset|proxy-up|proxy-down|proxy-url" >&2
    exit 2
    ;;
esac
