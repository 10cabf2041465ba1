#!/usr/bin/env bash
# Every STS fault of the fault proxy, on the real cluster: one job per fault, submitted as
# alice with --aws-role=demo while the site map points at the proxy in that mode. The job
# gets its credentials or FAILS with `aws-role: …` in its output; either way the job start
# stays inside the prolog's deadline, nothing is left on the node, and the node stays IDLE.
# (tests/integration/faults.sh drives the prolog binary itself through the same faults.)
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/jobs.sh
. "$REPO/tests/harness/jobs.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
OUT=/home/alice/aws-role-faults
sl scancel -u alice >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
rm -rf "$OUT"
runuser -u alice -- mkdir -p "$OUT"
jobs_init alice "$OUT"
ARN_OF='echo "ARN=$($VENV/bin/aws --endpoint-url $STS sts get-caller-identity --query Arn --output text 2>&1)"'

# fault ENDPOINT WANT(COMPLETED|FAILED) "message fragment" "what"
fault() {
  local endpoint=$1 want=$2 msg=$3 what=$4 j st t0 ms o
  bash "$REPO/tests/harness/site.sh" write "$endpoint"
  t0=$(now_ms)
  j=$(submit alice --aws-role=demo <<<"$ARN_OF")
  st=$(slurm_job_wait "$j" 90)
  ms=$(( $(now_ms) - t0 ))
  o=$(job_out "$j")
  check_eq "$what: job $want (${ms} ms from submit to end)" "$want" "$st"
  check_contains "$what: the job's output says so" "$msg" "$o"
  # The site map's timeout is 5 s; the plugin kills a prolog after its own limit.
  check "$what: the job ended within 30 s of its submission" test "$ms" -lt 30000
  check "$what: nothing left on the node" test ! -e "/run/aws-role/$j"
  check "$what: the node is not drained" bash "$REPO/tests/harness/cluster.sh" assert-healthy
}
fault "http://127.0.0.1:1" FAILED "aws-role: could not assume role demo: STS could not be reached: connection refused" "connection refused"
fault "$PROXY/hang" FAILED "aws-role: could not assume role demo: STS did not answer within 5s" "STS hangs"
fault "$PROXY/slow/30" FAILED "aws-role: could not assume role demo: STS did not answer within 5s" "STS slower than the timeout"
fault "$PROXY/slow/1" COMPLETED "assumed-role/demo/slurm-" "STS slow but within the timeout"
fault "$PROXY/http500" FAILED "aws-role: could not assume role demo: STS answered HTTP 500" "HTTP 500"
fault "$PROXY/throttle/0.5" COMPLETED "assumed-role/demo/slurm-" "Throttling for half the calls"
fault "$PROXY/throttle/1" FAILED "aws-role: could not assume role demo: STS kept throttling" "Throttling for every call"
fault "$PROXY/deny" FAILED "aws-role: could not assume role demo: STS refused: AccessDenied" "AccessDenied"
fault "$PROXY/malformed" FAILED "aws-role: could not assume role demo: STS sent a malformed answer" "malformed XML"
fault "$PROXY/truncated" FAILED "as if cut short" "truncated body"
fault "$PROXY/expired" FAILED "had already expired" "expired credentials in the answer"
fault "$PROXY/reset" FAILED "connection reset by peer" "connection reset mid-answer"
bash "$REPO/tests/harness/site.sh" write "$STS"
check "nothing is left in /run/aws-role" bash -c "[ -z \"\$(ls -A /run/aws-role)\" ]"
finish
