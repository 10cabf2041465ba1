#!/usr/bin/env bash
# aws-role-prolog / aws-role-epilog against a real STS emulator (moto) and the fault
# proxy, run exactly as slurmd runs them: as root, with an empty environment except the
# Prolog variables, for a real unprivileged user. The job's files are then used by the
# AWS CLI and boto3 as that user, reading nothing but the written files.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
WORK=$(mktemp -d /tmp/aws-role-it.XXXXXX)
chmod 0755 "$WORK"
BASE=/run/aws-role-it
trap 'rm -rf "$WORK"; rm -rf "$BASE"' EXIT
ALICE_UID=$(id -u alice)
ALICE_GID=$(id -g alice)

# Node credentials: root-only, never in the environment.
node_credentials "$WORK/node-credentials"

# write_map FILE ENDPOINT [TIMEOUT] [MAX_ATTEMPTS]
write_map() {
  {
    map_head "$2" "${3:-8s}" "${4:-5}"
    cat <<TOML

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]
max_session = "2h"

[roles.analytics]
arn = "arn:aws:iam::123456789012:role/analytics"
allow_groups = ["analysts"]

[roles.shared]
arn = "arn:aws:iam::123456789012:role/shared"

[partitions.gpu]
default_role = "shared"
TOML
  } >"$1"
}
write_map "$WORK/map.toml" "$STS"

# prolog JOBID ROLE PARTITION [MAP] [END_IN_SECONDS]: runs the prolog as slurmd would;
# stderr kept in $WORK/err.JOBID, exit status in $RC.
prolog() {
  local id=$1 role=$2 part=$3 map=${4:-$WORK/map.toml} end=${5:-5400}
  local envs=(SLURM_JOB_ID="$id" SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_GID="$ALICE_GID"
    SLURM_JOB_USER=alice SLURM_JOB_PARTITION="$part" SLURM_CLUSTER_NAME=lab
    SLURM_JOB_RESTART_COUNT=0 SLURM_JOB_END_TIME=$(($(date +%s) + end)))
  [ -n "$role" ] && envs+=(SPANK_AWS_ROLE="$role")
  (cd / && env -i "${envs[@]}" "$BIN/aws-role-prolog" --config "$map" </dev/null 2>"$WORK/err.$id" >"$WORK/out.$id")
  RC=$?
}
epilog() {
  (cd / && env -i SLURM_JOB_ID="$1" "$BIN/aws-role-epilog" --config "${2:-$WORK/map.toml}" </dev/null 2>>"$WORK/err.$1")
  RC=$?
}
# as_alice CMD...: a clean login-less environment pointing only at the job's files.
as_alice() {
  runuser -u alice -- env -i HOME=/home/alice PATH=/usr/bin:/bin "$@"
}
caller_arn_cli() {
  as_alice AWS_CONFIG_FILE="$BASE/$1/config" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    timeout 60 "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity --query Arn --output text 2>&1
}
caller_arn_boto3() {
  as_alice AWS_CONFIG_FILE="$BASE/$1/config" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    timeout 60 "$VENV/bin/python3" -c '
import sys, boto3
s = boto3.session.Session()
print(s.client("sts", endpoint_url=sys.argv[1]).get_caller_identity()["Arn"])' "$STS" 2>&1
}
secret_of() { "$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["SecretAccessKey"])' "$1"; }

# --- check-config -------------------------------------------------------------------
out=$("$BIN/aws-role-prolog" --check-config "$WORK/map.toml" 2>&1); rc=$?
check_eq "--check-config accepts a valid map" 0 "$rc"
check_contains "--check-config summarises roles" "demo" "$out"
printf '[sts]\nregion = "us-east-1"\n[roles.x]\narn = "arn:aws:iam::12345:role/x"\n' >"$WORK/bad.toml"
out=$("$BIN/aws-role-prolog" --check-config "$WORK/bad.toml" 2>&1); rc=$?
check_eq "--check-config refuses a bad map with exit 1" 1 "$rc"
check_contains "the error names file, line and column" "$WORK/bad.toml:4:" "$out"

# --- a job that gets its role ---------------------------------------------------------
J=910001
prolog $J demo debug
check_eq "prolog exits 0" 0 "$RC"
check_eq "base dir is root 0711" "711 root:root" "$(mode_owner $BASE)"
check_eq "job dir is root 0711" "711 root:root" "$(mode_owner $BASE/$J)"
for f in credentials.json credentials config endpoint-token endpoint-url; do
  check_eq "$f is root's, read-only for alice" "640 root:root user:alice:r--" "$(job_file $BASE/$J/$f)"
done
check_eq "state record is root's, read-only for alice (the TaskProlog reads the names in it)" "640 root:root user:alice:r--" "$(job_file $BASE/$J/state.json)"
check "no failure record" test ! -e "$BASE/$J/failure.json"
check_contains "AWS CLI (credential_process) sees the job's role session" "assumed-role/demo/slurm-$J-0" "$(caller_arn_cli $J)"
check_contains "boto3 (credential_process) sees the job's role session" "assumed-role/demo/slurm-$J-0" "$(caller_arn_boto3 $J)"
static=$(as_alice AWS_SHARED_CREDENTIALS_FILE="$BASE/$J/credentials" AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 \
  timeout 60 "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity --query Arn --output text 2>&1)
check_contains "AWS CLI reading only the static INI sees the role session" "assumed-role/demo/slurm-$J-0" "$static"
exp=$("$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["Expiration"])' "$BASE/$J/credentials.json")
secs=$(( $(date -d "$exp" +%s) - $(date +%s) ))
check "a 90-min job under a 2 h cap gets ~95 min (end + 5 min margin): ${secs}s" test "$secs" -ge 5600 -a "$secs" -le 5710
secret=$(secret_of "$BASE/$J/credentials.json")
check_not_contains "the secret key is not on the prolog's stderr" "$secret" "$(cat "$WORK/err.$J")"
check_not_contains "the session token is not on the prolog's stderr" "$(head -c 40 <<<"$(grep -o '"SessionToken": "[^"]*' "$BASE/$J/credentials.json" | cut -d'"' -f4)")" "$(cat "$WORK/err.$J")"
check_contains "stderr says which role and session, with the job id" "job{id=$J}" "$(cat "$WORK/err.$J")"
check "bob cannot read alice's credentials" bash -c "! runuser -u bob -- cat $BASE/$J/credentials.json 2>/dev/null"
check "bob cannot list alice's job dir" bash -c "! runuser -u bob -- ls $BASE/$J 2>/dev/null"
check "bob cannot list the base dir" bash -c "! runuser -u bob -- ls $BASE 2>/dev/null"
check "alice cannot replace her files (dir not writable)" bash -c "! runuser -u alice -- mv $BASE/$J/config $BASE/$J/x 2>/dev/null"

# --- requeue: a second prolog replaces the files atomically -----------------------------
key1=$(grep -o 'ASIA[A-Z0-9]*' "$BASE/$J/credentials" | head -1)
prolog $J demo debug
key2=$(grep -o 'ASIA[A-Z0-9]*' "$BASE/$J/credentials" | head -1)
check_eq "second prolog exits 0" 0 "$RC"
check "second prolog issued new keys" test -n "$key2" -a "$key1" != "$key2"
check_eq "no temporary files left behind" "config credentials credentials.json endpoint-token endpoint-url state.json" "$(ls $BASE/$J | sort | tr '\n' ' ' | sed 's/ $//')"
check_contains "the CLI still works after the rewrite" "assumed-role/demo/slurm-$J-0" "$(caller_arn_cli $J)"

# --- epilog -----------------------------------------------------------------------------
epilog $J
check_eq "epilog exits 0" 0 "$RC"
check "epilog removed the job dir" test ! -e "$BASE/$J"
epilog $J
check_eq "epilog is idempotent (nothing to remove, still 0)" 0 "$RC"
out=$(as_alice AWS_CONFIG_FILE="$BASE/$J/config" AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true timeout 60 "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity 2>&1)
check_contains "after the job, the CLI finds no credentials" "Unable to locate credentials" "$out"

# --- partition default, opt-out, no role ------------------------------------------------
prolog 910002 "" gpu
check_contains "a gpu job without --aws-role gets the partition default" "assumed-role/shared/slurm-910002-0" "$(caller_arn_cli 910002)"
prolog 910003 none gpu
check "--aws-role=none opts out: nothing written" test ! -e "$BASE/910003"
prolog 910004 "" debug
check "no request, no default: nothing written" test ! -e "$BASE/910004"
check_eq "no-role prolog exits 0" 0 "$RC"

# --- failures: exit 0, failure record with a clear reason, no credential files ---------
# expect_failure JOBID "reason fragment" "what"
expect_failure() {
  local id=$1 want=$2 what=$3 reason
  check_eq "$what: prolog exits 0" 0 "$RC"
  reason=$("$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["reason"])' "$BASE/$id/failure.json" 2>&1)
  check_contains "$what: failure record says why" "$want" "$reason"
  check "$what: no credential files" bash -c "! ls $BASE/$id/credentials* $BASE/$id/config 2>/dev/null | grep -q ."
  check_not_contains "$what: stderr has no node secret" "nodesecret" "$(cat "$WORK/err.$id")"
}
prolog 910010 analytics debug
expect_failure 910010 "user alice may not use role analytics; roles you may request: demo, none" "role not allowed"
prolog 910011 nosuchrole debug
expect_failure 910011 "there is no role named \"nosuchrole\"" "unknown role"
prolog 910012 "arn:aws:iam::123456789012:role/demo" debug
expect_failure 910012 "never an ARN" "full ARN requested"
write_map "$WORK/down.toml" "http://127.0.0.1:1" 3s
prolog 910013 demo debug "$WORK/down.toml"
expect_failure 910013 "could not assume role demo: STS could not be reached" "STS unreachable"
write_map "$WORK/slow.toml" "$PROXY/slow/30" 2s
t0=$(date +%s%N)
prolog 910014 demo debug "$WORK/slow.toml"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_failure 910014 "did not answer within 2s" "STS slow"
check "STS slow: the prolog kept its 2 s deadline (took ${ms} ms)" test "$ms" -lt 5000
write_map "$WORK/deny.toml" "$PROXY/deny"
prolog 910015 demo debug "$WORK/deny.toml"
expect_failure 910015 "STS refused: AccessDenied" "AccessDenied"
write_map "$WORK/throttled.toml" "$PROXY/throttle/1" 8s 3
prolog 910016 demo debug "$WORK/throttled.toml"
expect_failure 910016 "throttling" "always throttled"
printf 'this is = not [valid toml\n' >"$WORK/broken.toml"
prolog 910017 demo debug "$WORK/broken.toml"
# A broken map has no base_dir: the record goes to the default place.
reason=$(cat /run/aws-role/910017/failure.json 2>&1)
check_contains "bad map: failure record in the default base dir" "role map is invalid" "$reason"
check_contains "bad map: the node log names the file and position" "broken.toml:1:" "$(cat "$WORK/err.910017")"
rm -rf /run/aws-role/910017

write_map "$WORK/flaky.toml" "$PROXY/throttle/0.3" 8s 10
prolog 910018 demo debug "$WORK/flaky.toml"
check "throttled 30% of the time: retries get the credentials" test -s "$BASE/910018/credentials.json"

# A requeued job whose role now fails loses its old credentials.
prolog 910019 demo debug
prolog 910019 demo debug "$WORK/down.toml"
expect_failure 910019 "could not be reached" "requeue after success, STS down"

# --- hostile users, round two (tests/README.md, "Attacks, round two") --------------------
# A job started with the gid of a group its user is not in (kept from `sg`, or set by
# root) gets nothing through that group: analytics is for members of analysts only.
ANALYSTS_GID=$(getent group analysts | cut -d: -f3)
(cd / && env -i SLURM_JOB_ID=910030 SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_GID="$ANALYSTS_GID" \
  SLURM_JOB_USER=alice SLURM_JOB_PARTITION=debug SLURM_JOB_END_TIME=$(($(date +%s) + 3600)) \
  SPANK_AWS_ROLE=analytics "$BIN/aws-role-prolog" --config "$WORK/map.toml" </dev/null 2>"$WORK/err.910030")
RC=$?
expect_failure 910030 "user alice may not use role analytics" "the job's gid is analysts, alice is not a member"

# The node's keys readable by others: STS is not called, the job fails saying why.
chmod 0644 "$WORK/node-credentials"
prolog 910031 demo debug
expect_failure 910031 "is not root's alone" "node keys readable by others"
check_contains "... the record names the mode" "mode 0644" "$(cat "$BASE/910031/failure.json")"
chmod 0600 "$WORK/node-credentials"
out=$("$BIN/aws-role-prolog" --check-node --config "$WORK/map.toml" --base-dir "$BASE" 2>&1)
check_contains "--check-node: node keys root's alone are OK" "OK    node credentials: $WORK/node-credentials: root's alone" "$out"
chmod 0640 "$WORK/node-credentials"
out=$("$BIN/aws-role-prolog" --check-node --config "$WORK/map.toml" --base-dir "$BASE" 2>&1); rc=$?
check_contains "--check-node: node keys readable by the group FAIL" "FAIL  node credentials:" "$out"
check_eq "... and it exits 2" 2 "$rc"
chmod 0600 "$WORK/node-credentials"


# --- the node's identity from a credential_process, and from a broker role ---------------
# A helper that prints a session (as IAM Roles Anywhere's aws_signing_helper does): the job
# gets its role, and its session is capped at 1 h (role chaining) although demo allows 2 h.
mkdir -p "$WORK/node"
cat >"$WORK/node/helper" <<'SH'
#!/bin/sh
case "$1" in
  hang) sleep 60 & echo "$$ $!" >"$(dirname "$0")/hang.pids"; wait; exit 0 ;;
  fail) echo "no certificate at /etc/pki/node.pem" >&2; exit 3 ;;
esac
printf '{"Version": 1, "AccessKeyId": "ASIANODEPROCESS00000", "SecretAccessKey": "nodesecret", "SessionToken": "node-token", "Expiration": "%s"}\n' "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
SH
chmod 0700 "$WORK/node/helper"
node_map() { # node_map NAME PROFILE-FILE-TEXT
  printf '%s' "$2" >"$WORK/node/$1.ini"
  chmod 0600 "$WORK/node/$1.ini"
  write_map "$WORK/node/$1.toml" "$STS" 3s 1
  sed -i "s#^credentials_file = .*#credentials_file = \"$WORK/node/$1.ini\"#" "$WORK/node/$1.toml"
}
node_map process "[default]
credential_process = $WORK/node/helper ok
"
out=$("$BIN/aws-role-prolog" --check-node --config "$WORK/node/process.toml" --base-dir "$BASE" 2>&1)
check_contains "--check-node: credential_process works" "OK    node identity: credential_process $WORK/node/helper of profile default in $WORK/node/process.ini: works, STS says this node is arn:aws:" "$out"
out=$("$BIN/aws-role-prolog" --check-config "$WORK/node/process.toml" 2>&1)
check_contains "--check-config: credential_process named, the cap explained" "node identity: credential_process $WORK/node/helper of profile default in $WORK/node/process.ini; if it gives a role's session (IAM Roles Anywhere does)" "$out"
prolog 910050 demo debug "$WORK/node/process.toml"
check_eq "credential_process: the prolog exits 0" 0 "$RC"
left=$("$VENV/bin/python3" -c 'import json,sys,datetime as d; e=d.datetime.fromisoformat(json.load(open(sys.argv[1]))["Expiration"].replace("Z","+00:00")); print(int((e-d.datetime.now(d.timezone.utc)).total_seconds()))' "$BASE/910050/credentials.json" 2>&1)
check "credential_process: the job's session is capped at 1 h ($left s left; demo allows 2 h)" test "$left" -le 3600 -a "$left" -gt 3000
epilog 910050 "$WORK/node/process.toml"
J=910060
for how in fail hang; do
  J=$((J + 1))
  node_map "$how" "[default]
credential_process = $WORK/node/helper $how
"
  t0=$(date +%s)
  prolog "$J" demo debug "$WORK/node/$how.toml"
  took=$(($(date +%s) - t0))
  check "credential_process that ${how}s: the prolog gives up within the 3-s deadline (${took} s)" test "$took" -le 6
done
expect_failure 910061 "STS was not called: this node's own AWS credentials are unusable: profile default of $WORK/node/fail.ini: " "credential_process that fails"
check_contains "... with what the helper said" "no certificate at /etc/pki/node.pem" "$(cat "$BASE/910061/failure.json")"
expect_failure 910062 "they did not come within 3s (sts.timeout), so the source's processes were killed (" "credential_process that hangs"
check_contains "... naming the source" "; the source is profile default of $WORK/node/hang.ini" "$(cat "$BASE/910062/failure.json")"
live=""
for p in $(cat "$WORK/node/hang.pids" 2>/dev/null); do
  st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ] && live+=" $p"
done
check "... and neither the hung helper nor its child outlives the prolog ($(cat "$WORK/node/hang.pids" 2>/dev/null):${live:- none left})" test -s "$WORK/node/hang.pids" -a -z "$live"
epilog 910061 "$WORK/node/fail.toml"
epilog 910062 "$WORK/node/hang.toml"
node_map broker "[default]
role_arn = arn:aws:iam::123456789012:role/hpc-broker
source_profile = keys
endpoint_url = $STS
[keys]
aws_access_key_id = AKIDNODE000000000000
aws_secret_access_key = nodesecret
"
out=$("$BIN/aws-role-prolog" --check-node --config "$WORK/node/broker.toml" --base-dir "$BASE" 2>&1)
check_contains "--check-node: a broker role works, through its source profile" "OK    node identity: role_arn arn:aws:iam::123456789012:role/hpc-broker of profile default, from static keys (aws_access_key_id) of profile keys in $WORK/node/broker.ini: works, STS says this node is arn:aws:sts::123456789012:assumed-role/hpc-broker/" "$out"
check_contains "... and the 1-h cap is said" "INFO  role chaining:" "$out"
out=$("$BIN/aws-role-prolog" --check-config "$WORK/node/broker.toml" 2>&1)
check_contains "--check-config: the broker role and its 1-h cap" "that is role chaining, so STS gives each job a session of at most 1 h" "$out"
printf '#   %s\n' "${out//$'\n'/$'\n'#   }" | grep "node identity"

# Plain http to another host is refused where the map is read, with its position.
write_map "$WORK/remote-http.toml" "http://10.11.12.13:5000"
out=$("$BIN/aws-role-prolog" --check-config "$WORK/remote-http.toml" 2>&1); rc=$?
check_eq "--check-config refuses http:// off loopback (exit 1)" 1 "$rc"
check_contains "... saying where and why" "remote-http.toml:3:12: sts.endpoint \"http://10.11.12.13:5000\" is plain http to a host other than this one" "$out"
prolog 910032 demo debug "$WORK/remote-http.toml"
check_eq "the prolog with that map exits 0" 0 "$RC"
check_contains "... and the job's failure record says the map is invalid" "role map is invalid" "$(cat /run/aws-role/910032/failure.json 2>&1)"
rm -rf /run/aws-role/910032

# An STS (or a proxy) whose error text forges lines and terminal escapes: one escaped
# line in the record and in the node's log.
write_map "$WORK/forge.toml" "$PROXY/forge"
prolog 910033 demo debug "$WORK/forge.toml"
rec=$(cat "$BASE/910033/failure.json" 2>&1)
check_contains "forged STS message: the job fails with STS's (escaped) words" 'denied\\r\\u{9b}2K\\nslurmstepd' "$rec"
check "... no raw CSI or carriage return in the record" bash -c "! grep -qaP '\\x{9b}|\\r' '$BASE/910033/failure.json'"
check "... nor in the node's log" bash -c "! grep -qaP '\\x{9b}|\\r' '$WORK/err.910033'"
check "... where the forged text starts no line of its own" bash -c "! grep -q '^slurmstepd' '$WORK/err.910033'"

# TaskProlog (Prolog-only sites), as slurmstepd runs it, as the job's user: a failure
# record the user cannot read (root's, e.g. written for an unknown user) fails the task.
task_prolog() { # JOBID PARTITION: output in $OUT, exit status in $RC
  OUT=$(cd / && runuser -u alice -- env -i SLURM_JOB_ID="$1" SLURM_JOB_PARTITION="$2" \
    SLURM_SCRIPT_CONTEXT=prolog_task "$BIN/aws-role-prolog" --config "$WORK/map.toml" --base-dir "$BASE" 2>&1)
  RC=$?
}
install -d -m 0711 "$BASE/910034"
printf '{"job_id": "910034", "reason": "x", "time": "2026-01-01T00:00:00Z"}\n' >"$BASE/910034/failure.json"
chmod 0600 "$BASE/910034/failure.json"
task_prolog 910034 debug
check "TaskProlog: an unreadable failure record fails the task (exit $RC)" test "$RC" -ne 0
check_contains "... saying why" "print aws-role: the job's AWS role could not be given, and its failure record cannot be read" "$OUT"
task_prolog 910035 gpu
check "TaskProlog: a job of a partition with a default and no record fails (exit $RC)" test "$RC" -ne 0
check_contains "... saying why" "neither credentials nor a failure record" "$OUT"
task_prolog 910035 debug
check_eq "TaskProlog: a job that could get no role and has nothing runs, silently" "0 " "$RC $OUT"
rm -rf "$BASE/910034"

for id in 910002 910010 910011 910012 910013 910014 910015 910016 910018 910019 910030 910031 910033; do epilog $id; done
check "every epilog left the base dir empty" test -z "$(ls -A $BASE)"
finish
