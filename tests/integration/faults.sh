#!/usr/bin/env bash
# Fault injection: aws-role-prolog run exactly as slurmd runs it (root, empty environment
# but the Prolog variables) against every way STS can fail, through the fault proxy
# (tests/harness/sts-fault-proxy.py) in front of the STS emulator, plus one refresher pass
# against a hung STS. For every fault, one block, and the same five promises:
#   1. the prolog exits 0 (a failing Prolog drains the node) within its deadline: the map's
#      [sts] timeout covers every attempt, retry and backoff, so the bound is that timeout
#      plus 2 s (process start, the map, the files; sts/mod.rs adds a 1-s hard stop);
#   2. either the job's credentials work (the AWS CLI as the job's user gets the role
#      session) or failure.json says in plain words what went wrong;
#   3. the job directory holds exactly the expected files: no credentials, config or
#      temporary files after a failure, no temporary files after a success;
#   4. neither the node's secret key nor any secret key STS issued for the job appears on
#      the prolog's stderr or stdout (slurmd's log) or in failure.json;
#   5. the epilog afterwards leaves the base directory empty.
# Each job gets its own proxy path (/<mode>/<arg>/<tag>), so its STS calls are counted
# apart even while other suites use the proxy. See tests/FAULTS-TABLE.md.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
WORK=$(mktemp -d /tmp/aws-role-faults.XXXXXX)
chmod 0755 "$WORK"
BASE=$WORK/base
trap 'rm -rf "$WORK"' EXIT
ALICE_UID=$(id -u alice)
ALICE_GID=$(id -g alice)
# Tags this run's proxy paths: a long-lived proxy keeps the counts of earlier runs.
RUN=f$$x$(date +%s)
NODE_SECRET=nodesecret-faults-0000000000000000000000

node_credentials "$WORK/node-credentials" "$NODE_SECRET"

# The per-path counters are newer than the proxy: an old one still running would make
# every count below fail for a reason that has nothing to do with aws-role.
stats_json() { timeout 10 "$VENV/bin/python3" -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]+"/stats",timeout=5).read().decode())' "$PROXY" 2>&1; }
if [[ $(stats_json) != *'"paths"'* ]]; then
  not_ok "the fault proxy at $PROXY counts calls per path (it predates sts-fault-proxy.py's per-path stats: restart it with sts.sh proxy-down; sts.sh proxy-up)"
  finish
  exit
fi

# write_map FILE ENDPOINT TIMEOUT MAX_ATTEMPTS [CREDENTIALS_FILE]
write_map() {
  {
    map_head "$2" "$3" "$4" "" "${5:-}"
    cat <<TOML

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]
max_session = "2h"
TOML
  } >"$1"
}

# prolog JOBID MAP: as slurmd runs it, for a 90-min job asking for role demo. Sets RC and
# MS (wall time in ms); stderr in $WORK/err.JOBID, stdout in $WORK/out.JOBID.
prolog() {
  local id=$1 t0
  t0=$(date +%s%N)
  (cd / && env -i SLURM_JOB_ID="$id" SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_GID="$ALICE_GID" \
    SLURM_JOB_USER=alice SLURM_JOB_PARTITION=debug SLURM_CLUSTER_NAME=lab \
    SLURM_JOB_RESTART_COUNT=0 SLURM_JOB_END_TIME=$(($(date +%s) + 5400)) SPANK_AWS_ROLE=demo \
    "$BIN/aws-role-prolog" --config "$2" </dev/null 2>"$WORK/err.$id" >"$WORK/out.$id")
  RC=$?
  MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
epilog() {
  (cd / && env -i SLURM_JOB_ID="$1" "$BIN/aws-role-epilog" --config "$2" </dev/null 2>>"$WORK/err.$1")
}
caller_arn_cli() {
  runuser -u alice -- env -i HOME=/home/alice PATH=/usr/bin:/bin \
    AWS_CONFIG_FILE="$BASE/$1/config" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    timeout 60 "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity --query Arn --output text 2>&1
}
json_field() { "$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>&1; }
listing() { ls -A "$1" 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//'; }
# path_stat KEY FIELD: one proxy path's counter ("calls", "faulted"; 0 if never called), or
# its "secrets", one per line.
path_stat() {
  stats_json | "$VENV/bin/python3" -c '
import json, sys
p = json.load(sys.stdin)["paths"].get(sys.argv[1], {})
v = p.get(sys.argv[2], [] if sys.argv[2] == "secrets" else 0)
print("\n".join(v) if isinstance(v, list) else v)' "$1" "$2"
}

# secrets_absent WHAT JOBID KEY: neither the node's secret nor any secret STS issued through
# proxy path KEY (nor the job's own, when it got credentials) is in the prolog's output or
# in failure.json.
secrets_absent() {
  local what=$1 id=$2 key=$3 logs s n=0
  logs="$(cat "$WORK/err.$id" "$WORK/out.$id" 2>/dev/null) $(cat "$BASE/$id/failure.json" 2>/dev/null)"
  check_not_contains "$what: the node's secret key is not in the prolog's output" "$NODE_SECRET" "$logs"
  local issued=()
  [ -n "$key" ] && mapfile -t issued < <(path_stat "$key" secrets)
  [ -s "$BASE/$id/credentials.json" ] && issued+=("$(json_field "$BASE/$id/credentials.json" SecretAccessKey)")
  for s in $(printf '%s\n' "${issued[@]}" | sort -u); do
    n=$((n + 1))
    [[ $logs == *"$s"* ]] && { not_ok "$what: a secret key STS issued for the job is in the prolog's output"; return; }
  done
  ok "$what: none of the $n secret key(s) STS issued for the job is in the prolog's output or failure.json"
}

# deadline WHAT TIMEOUT_S: check 1, with the measured time in the check's text.
deadline() {
  local bound=$(( $2 * 1000 + 2000 ))
  check_eq "$1: prolog exits 0" 0 "$RC"
  check "$1: prolog took ${MS} ms, under its bound ${bound} ms (timeout ${2} s, all attempts, + 2 s)" test "$MS" -lt "$bound"
  TIMES+=("$1: ${MS} ms")
}

# expect_success WHAT JOBID KEY TIMEOUT_S: checks 1-5 for a job that got its credentials.
expect_success() {
  local what=$1 id=$2 key=$3 t=$4
  deadline "$what" "$t"
  check_contains "$what: the AWS CLI as alice gets the job's role session" "assumed-role/demo/slurm-$id-0" "$(caller_arn_cli "$id")"
  check_eq "$what: the job dir holds exactly the credential files and state (no temporary files)" \
    "config credentials credentials.json endpoint-token endpoint-url state.json" "$(listing "$BASE/$id")"
  secrets_absent "$what" "$id" "$key"
  epilog "$id" "$WORK/map.$id"
  check_eq "$what: the epilog leaves the base dir empty" "" "$(listing "$BASE")"
}

# plain_line TEXT: one line, and no braces (the mark of a Rust Debug dump).
plain_line() { [[ $1 != *[{}]* && $1 != *$'\n'* ]]; }

# expect_failure WHAT JOBID KEY TIMEOUT_S "reason fragment": checks 1-5 for a job that got
# no credentials.
expect_failure() {
  local what=$1 id=$2 key=$3 t=$4 want=$5 reason
  deadline "$what" "$t"
  reason=$(json_field "$BASE/$id/failure.json" reason)
  check_contains "$what: failure.json says why" "could not assume role demo: $want" "$reason"
  check "$what: the reason is one plain line, no Debug dump: '$reason'" plain_line "$reason"
  check_eq "$what: the job dir holds only failure.json (no credentials, config or temporary files)" \
    "failure.json" "$(listing "$BASE/$id")"
  check_contains "$what: the node's log has the reason with the job id" "job{id=$id}" "$(grep -F "$want" "$WORK/err.$id")"
  secrets_absent "$what" "$id" "$key"
  epilog "$id" "$WORK/map.$id"
  check_eq "$what: the epilog leaves the base dir empty" "" "$(listing "$BASE")"
}

# calls WHAT KEY: this job's STS calls through the proxy, into CALLS and FAULTED.
calls() {
  CALLS=$(path_stat "$2" calls)
  FAULTED=$(path_stat "$2" faulted)
  COUNTS+=("$1: $CALLS call(s), $FAULTED faulted")
}

# case_map JOBID MODE TIMEOUT MAX_ATTEMPTS: the job's own map, endpoint and proxy key.
case_map() {
  KEY="$2/$RUN-$1"
  write_map "$WORK/map.$1" "$PROXY/$KEY" "$3" "$4"
}

TIMES=()
COUNTS=()

# --- refused: nothing listens on the port --------------------------------------------------
J=930001
port=$("$VENV/bin/python3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_map "$WORK/map.$J" "http://127.0.0.1:$port" 3s 3
prolog $J "$WORK/map.$J"
expect_failure "refused" $J "" 3 "STS could not be reached: connection refused"

# --- hang: the connection is accepted, no answer ever comes ---------------------------------
J=930002
case_map $J hang 3s 3
prolog $J "$WORK/map.$J"
expect_failure "hang" $J "$KEY" 3 "STS did not answer within 3s (after retries)"
calls "hang" "$KEY"
# Each attempt gets half the deadline, so a hung connection still leaves room for one retry.
check "hang: 2 attempts of 1.5 s each fit the 3 s deadline, at most max_attempts (3): $CALLS calls" \
  test "$CALLS" -ge 1 -a "$CALLS" -le 3

# --- slow: every answer takes longer than the deadline ----------------------------------------
J=930003
case_map $J slow/10 3s 3
prolog $J "$WORK/map.$J"
expect_failure "slower than the timeout" $J "$KEY" 3 "STS did not answer within 3s (after retries)"
calls "slower than the timeout" "$KEY"
check "slower than the timeout: attempts bounded by max_attempts (3): $CALLS calls" test "$CALLS" -ge 1 -a "$CALLS" -le 3

# --- slow, but within the per-attempt share of the deadline: success -------------------------
J=930004
case_map $J slow/1 4s 3
prolog $J "$WORK/map.$J"
expect_success "slow but within the timeout" $J "$KEY" 4
calls "slow but within the timeout" "$KEY"
check_eq "slow but within the timeout: one STS call, no retry" 1 "$CALLS"
check "slow but within the timeout: the prolog waited for the 1-s answer (${MS} ms)" test "$MS" -ge 1000

# --- HTTP 500 on every call -----------------------------------------------------------------
J=930005
case_map $J http500/1 5s 3
prolog $J "$WORK/map.$J"
expect_failure "HTTP 500 always" $J "$KEY" 5 "STS answered HTTP 500 (InternalFailure)"
calls "HTTP 500 always" "$KEY"
check_eq "HTTP 500 always: retried up to max_attempts (3), not more" 3 "$CALLS"

# --- HTTP 500 on half the calls: retried to success --------------------------------------
J=930006
case_map $J http500/0.5 20s 10
prolog $J "$WORK/map.$J"
expect_success "HTTP 500 half the time" $J "$KEY" 20
calls "HTTP 500 half the time" "$KEY"
check "HTTP 500 half the time: $CALLS calls, at most max_attempts (10)" test "$CALLS" -ge 1 -a "$CALLS" -le 10
check_eq "HTTP 500 half the time: every call but the last was a 500" $((CALLS - 1)) "$FAULTED"

# --- Throttling on 30% and 50% of the calls: retried to success ---------------------------
for jf in 930007:0.3 930008:0.5; do
  J=${jf%:*} f=${jf#*:}
  case_map "$J" "throttle/$f" 20s 10
  prolog "$J" "$WORK/map.$J"
  expect_success "throttled $f" "$J" "$KEY" 20
  calls "throttled $f" "$KEY"
  check "throttled $f: $CALLS calls, at most max_attempts (10)" test "$CALLS" -ge 1 -a "$CALLS" -le 10
  check_eq "throttled $f: every call but the last was throttled" $((CALLS - 1)) "$FAULTED"
done

# --- exact fractions (<k>of<n>: the first k of every n calls), so the counts are exact too --
J=930018
case_map $J throttle/2of3 8s 3
prolog $J "$WORK/map.$J"
expect_success "throttled twice, then answered (3 attempts)" $J "$KEY" 8
calls "throttled twice, then answered" "$KEY"
check_eq "throttled twice, then answered: the last allowed attempt (3) got the credentials" "3 2" "$CALLS $FAULTED"

J=930019
case_map $J throttle/3of4 8s 3
prolog $J "$WORK/map.$J"
expect_failure "throttled 3 times, 3 attempts" $J "$KEY" 8 "STS kept throttling the request until the retries ran out"
calls "throttled 3 times, 3 attempts" "$KEY"
check_eq "throttled 3 times, 3 attempts: no 4th call, although it would have passed" 3 "$CALLS"

J=930020
case_map $J http500/1of2 5s 3
prolog $J "$WORK/map.$J"
expect_success "one HTTP 500, then answered" $J "$KEY" 5
calls "one HTTP 500, then answered" "$KEY"
check_eq "one HTTP 500, then answered: retried once" "2 1" "$CALLS $FAULTED"

# --- Throttling on every call: bounded retries, then a clear failure -------------------------
J=930009
case_map $J throttle/1 8s 4
prolog $J "$WORK/map.$J"
expect_failure "throttled always" $J "$KEY" 8 "STS kept throttling the request until the retries ran out"
calls "throttled always" "$KEY"
check_eq "throttled always: retried up to max_attempts (4), not more" 4 "$CALLS"

# --- AccessDenied: not retried ---------------------------------------------------------------
J=930010
case_map $J deny 5s 3
prolog $J "$WORK/map.$J"
expect_failure "AccessDenied" $J "$KEY" 5 "STS refused: AccessDenied"
calls "AccessDenied" "$KEY"
check_eq "AccessDenied: a refusal is not retried" 1 "$CALLS"

# fails_within_3_attempts JOBID MODE "what" "reason" [retried]: the prolog against proxy MODE
# (5 s, 3 attempts) fails with reason, after 1 to 3 STS calls.
fails_within_3_attempts() {
  J=$1
  case_map "$J" "$2" 5s 3
  prolog "$J" "$WORK/map.$J"
  expect_failure "$3" "$J" "$KEY" 5 "$4"
  calls "$3" "$KEY"
  if [ "${5:-}" = retried ]; then
    check "$3: retried, at most max_attempts (3): $CALLS calls" test "$CALLS" -ge 1 -a "$CALLS" -le 3
  else
    check "$3: $CALLS calls, at most max_attempts (3)" test "$CALLS" -ge 1 -a "$CALLS" -le 3
  fi
}

# --- HTTP 200 with a body that is not XML ------------------------------------------------------
fails_within_3_attempts 930011 malformed "malformed XML" "STS sent a malformed answer: HTTP 200 with a body that is not an AssumeRole response"

# --- HTTP 200 with the answer cut in half (inside the session token) --------------------------
fails_within_3_attempts 930012 truncated "truncated body" "STS sent a malformed answer: it stops before </AssumeRoleResponse>, as if cut short"

# --- the connection reset half-way through the answer ------------------------------------------
fails_within_3_attempts 930013 reset "connection reset mid-answer" "the connection to STS broke while it answered: connection reset by peer" retried

# --- credentials that had already expired -------------------------------------------------------
fails_within_3_attempts 930014 expired "expired credentials" "STS returned credentials that had already expired (Expiration 2001-01-01T00:00:00Z)"

# --- credentials expiring in 30 s for a 95-min session ----------------------------------------
J=930015
case_map $J short/30 5s 3
prolog $J "$WORK/map.$J"
# 90 min + the 5-min margin = 5700 s, or 5699 s when the clock's second turns between
# prolog() setting SLURM_JOB_END_TIME and the prolog reading the time.
reason=$(json_field "$BASE/$J/failure.json" reason)
asked=$(sed -nE "s/.*far sooner than the ([0-9]+) s asked for; is this node's clock right\?.*/\1/p" <<<"$reason")
check "credentials expiring too soon: the reason compares them with the request (5699 or 5700 s): $reason" \
  test "${asked:-0}" -ge 5699 -a "${asked:-0}" -le 5700
expect_failure "credentials expiring too soon" $J "$KEY" 5 "STS returned credentials that expire in "

# --- sooner than asked but more than half of it: taken, with its real expiry ------------------
J=930016
case_map $J short/4000 5s 3
prolog $J "$WORK/map.$J"
exp=$(json_field "$BASE/$J/credentials.json" Expiration)
left=$(( $(date -d "$exp" +%s) - $(date +%s) ))
check "sooner but usable: credentials.json has STS's expiry, ~4000 s (${left} s), not the 5700 s asked" \
  test "$left" -ge 3900 -a "$left" -le 4000
check_eq "sooner but usable: state.json records the same expiry" "$exp" "$(json_field "$BASE/$J/state.json" expiration)"
expect_success "sooner but usable" $J "$KEY" 5

# --- the node's own credentials file is missing: no STS call at all ---------------------------
J=930017
KEY="pass/$RUN-$J"
write_map "$WORK/map.$J" "$PROXY/$KEY" 5s 3 "$WORK/no-such-credentials"
prolog $J "$WORK/map.$J"
check_contains "node credentials missing: the reason names the file" "$WORK/no-such-credentials" "$(json_field "$BASE/$J/failure.json" reason)"
expect_failure "node credentials missing" $J "$KEY" 5 "STS was not called: this node's own AWS credentials are unusable"
calls "node credentials missing" "$KEY"
check_eq "node credentials missing: no STS call" 0 "$CALLS"

# --- the refresher against a hung STS: the job's credentials stay as they were ----------------
# 20-s sessions ([sts] min_session, loopback only), refreshed half-way: due after 10 s.
J=930030
write_refresh_map() {
  {
    map_head "$PROXY/$1/$RUN-$J" 3s 3 'min_session = "20s"'
    cat <<TOML

[refresh]
lead = "1h"
jitter = "0s"
scan_interval = "1s"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]
max_session = "20s"
TOML
  } >"$WORK/map.$J"
}
write_refresh_map pass
prolog $J "$WORK/map.$J"
check "refresher: the prolog wrote 20-s credentials" test -s "$BASE/$J/credentials.json"
sums() { (cd "$BASE/$J" && sha256sum credentials.json credentials config 2>&1); }
before=$(sums)
sleep 11
for mode in hang expired truncated; do
  write_refresh_map $mode
  t0=$(date +%s%N)
  out=$(cd / && "$BIN/aws-role-refresher" --config "$WORK/map.$J" --once 2>&1)
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  TIMES+=("refresher, $mode: ${ms} ms")
  calls "refresher, $mode" "$mode/$RUN-$J"
  check_eq "refresher, $mode: the failed pass exits 1" 1 "$rc"
  check "refresher, $mode: the pass took ${ms} ms, under its bound 5000 ms (timeout 3 s + 2 s)" test "$ms" -lt 5000
  check "refresher, $mode: $CALLS STS calls, at most max_attempts (3)" test "$CALLS" -ge 1 -a "$CALLS" -le 3
  check_eq "refresher, $mode: the job's credentials are byte-identical" "$before" "$(sums)"
  check_eq "refresher, $mode: no temporary files" "config credentials credentials.json endpoint-token endpoint-url state.json" "$(listing "$BASE/$J")"
  check_contains "refresher, $mode: the log says the credentials stay valid" "stay valid until" "$out"
  check_not_contains "refresher, $mode: the node's secret is not in its log" "$NODE_SECRET" "$out"
  check_not_contains "refresher, $mode: the job's secret is not in its log" "$(json_field "$BASE/$J/credentials.json" SecretAccessKey)" "$out"
done
check_contains "refresher: state.json records the last error" "stops before </AssumeRoleResponse>" "$(json_field "$BASE/$J/state.json" last_error)"
epilog $J "$WORK/map.$J"
check_eq "refresher: the epilog leaves the base dir empty" "" "$(listing "$BASE")"

# --- an account-wide rate: the proxy's token bucket (the model of STS's limit) ------------
# rate/1/2: a burst of 2, then 1 call a second, shared by every caller of the path. Three
# prologs at once: two get a token at once, the third is throttled and gets in on a retry
# within its 5-s deadline. The proxy's per-session counts say who was throttled.
# sessions_of KEY: one line per RoleSessionName of proxy path KEY, "<name> <calls>
# <throttled> <ok>"; calls_of KEY: "<calls> <throttled> <ok>" summed over them.
sessions_of() {
  stats_json | "$VENV/bin/python3" -c '
import json, sys
s = json.load(sys.stdin)["paths"].get(sys.argv[1], {}).get("sessions", {})
for k, v in sorted(s.items()):
    print(k, v["calls"], v["throttled"], v["ok"])' "$1"
}
calls_of() { sessions_of "$1" | awk '{c += $2; t += $3; o += $4} END {print c + 0, t + 0, o + 0}'; }
case_map 930090 rate/1/2 5s 8
for j in 930091 930092 930093; do cp "$WORK/map.930090" "$WORK/map.$j"; done
for j in 930091 930092 930093; do prolog $j "$WORK/map.$j" & done
wait
for j in 930091 930092 930093; do
  check "rate 1/s, burst 2: job $j got credentials" test -s "$BASE/$j/credentials.json"
done
sessions=$(sessions_of "$KEY")
check_eq "... each session succeeded once" 3 "$(awk '$4 == 1' <<<"$sessions" | wc -l)"
check "... and at least one was throttled first (session calls throttled ok: $(tr '\n' ';' <<<"$sessions"))" \
  test "$(awk '$3 >= 1' <<<"$sessions" | wc -l)" -ge 1
for j in 930091 930092 930093; do epilog $j "$WORK/map.$j"; done

# --- the node's own rate ([sts] node_rate): a burst leaves the node paced ------------------
# Eight prologs at once, node_rate = 3, against an account rate of 4 a second (burst 4):
# the node sends three at once and the rest a third of a second apart, so STS never
# throttles and each job makes exactly one call. (At exactly the account's rate, the
# calls' own jitter on the way would meet an empty bucket now and then: a node_rate needs
# some headroom under its share.)
paced=(930101 930102 930103 930104 930105 930106 930107 930108)
case_map 930100 rate/4/4 5s 8
sed -i 's/^max_attempts = .*/&\nnode_rate = 3/' "$WORK/map.930100"
rm -f "$BASE.sts-rate"
t0=$(date +%s%N)
for j in "${paced[@]}"; do prolog $j "$WORK/map.930100" & done
wait
took=$(( ($(date +%s%N) - t0) / 1000000 ))
got=0
for j in "${paced[@]}"; do [ -s "$BASE/$j/credentials.json" ] && got=$((got + 1)); done
check_eq "node_rate 3 against an account rate of 4/s: all 8 jobs got credentials" 8 "$got"
check_eq "... with 8 STS calls, none throttled, 8 successes" "8 0 8" "$(calls_of "$KEY")"
check "... spread over more than a second and a half, not sent at once (${took} ms)" test "$took" -ge 1500
check_eq "... the schedule is root's alone" "600 root:root" "$(mode_owner "$BASE.sts-rate")"
for j in "${paced[@]}"; do epilog $j "$WORK/map.930100"; done
# Twelve at once with node_rate = 2 and a 3-s deadline: slots come 0.5 s apart after the
# first two, and a job whose slot would be later than the deadline (less a second for the
# call) fails at once, saying so, without calling STS.
late=(930111 930112 930113 930114 930115 930116 930117 930118 930119 930120 930121 930122)
case_map 930110 rate/100/100 3s 8
sed -i 's/^max_attempts = .*/&\nnode_rate = 2/' "$WORK/map.930110"
rm -f "$BASE.sts-rate"
for j in "${late[@]}"; do prolog $j "$WORK/map.930110" & done
wait
got=0 refused=0
for j in "${late[@]}"; do
  [ -s "$BASE/$j/credentials.json" ] && got=$((got + 1))
  grep -q "this node's STS rate (\[sts\] node_rate = 2 calls a second, shared by its prologs and refresher) has no free slot before the deadline" \
    "$BASE/$j/failure.json" 2>/dev/null && refused=$((refused + 1))
done
check "node_rate 2, 3-s deadline: 5 or 6 of 12 got a slot in time ($got)" test "$got" -ge 5 -a "$got" -le 6
check_eq "... the others failed saying the node's rate had no slot" 12 "$((got + refused))"
check_eq "... and only those that got one called STS" "$got" "$(calls_of "$KEY" | cut -d' ' -f1)"
for j in "${late[@]}"; do epilog $j "$WORK/map.930110"; done

echo "# prolog and refresher times: ${TIMES[*]/%/;}"
echo "# STS calls per fault: ${COUNTS[*]/%/;}"
finish
