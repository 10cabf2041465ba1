#!/usr/bin/env bash
# aws-role-prolog / aws-role-epilog as PBS runs them (no PBS server can be installed here,
# so the calling contract is reproduced exactly): mom_priv/prologue and epilogue get the
# job as positional arguments (Torque: jobid user group jobname resource_list queue
# account [script] [hosts]; OpenPBS: jobid user group), run as root, cwd /, with an EMPTY
# environment and stdin /dev/null. The job's files are then used by the AWS CLI and boto3
# as the job's user, in a login shell with PBS_JOBID set and the profile.d snippet sourced.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
WORK=$(mktemp -d /tmp/aws-role-pbs-it.XXXXXX)
chmod 0755 "$WORK"
BASE=/run/aws-role-pbs-it
trap 'rm -rf "$WORK"; rm -rf "$BASE"' EXIT
rm -rf "$BASE"
SNIPPET=$WORK/aws-role.sh
install -m 0644 "$REPO/packaging/pbs/aws-role.sh" "$SNIPPET"

node_credentials "$WORK/node-credentials"

# write_map FILE ENDPOINT [TIMEOUT] [MAX_ATTEMPTS]
write_map() {
  {
    map_head "$2" "${3:-5s}" "${4:-3}"
    cat <<TOML

[roles.pbs-batch]
arn = "arn:aws:iam::123456789012:role/pbs-batch"
max_session = "2h"

[roles.pbs-default]
arn = "arn:aws:iam::123456789012:role/pbs-default"
max_session = "1h"

[pbs]
default_role = "pbs-default"

[pbs.queues.batch]
default_role = "pbs-batch"
TOML
  } >"$1"
}
write_map "$WORK/map.toml" "$STS"
write_map "$WORK/dead.toml" "http://127.0.0.1:9" 1s 1

# pbs_run BINARY ARGS...: as pbs_mom runs it; stderr in $WORK/err, exit status in $RC.
pbs_run() {
  local bin=$1
  shift
  (cd / && env -i "$BIN/$bin" --config "${MAP:-$WORK/map.toml}" "$@" </dev/null >"$WORK/out" 2>"$WORK/err")
  RC=$?
}
prologue() { pbs_run aws-role-prolog "$@"; }
epilogue() { pbs_run aws-role-epilog "$@"; }
# torque_epilogue JOBID: Torque's 11 epilogue arguments.
torque_epilogue() {
  epilogue "$1" alice alice myjob 4242 "nodes=1:ppn=1,walltime=01:30:00" \
    "cput=00:00:01,mem=1kb,vmem=1kb,walltime=00:00:05" batch null 0 /var/spool/torque/mom_priv/jobs/x.SC
}
# login_shell JOBID CMD: CMD in alice's `bash -l` with PBS_JOBID set and the snippet
# sourced, starting from credentials that would otherwise shadow the job's role.
login_shell() {
  runuser -u alice -- env -i HOME=/home/alice PATH=/usr/bin:/bin PBS_JOBID="$1" \
    AWS_ROLE_BASE_DIR="$BASE" AWS_PROFILE=someone-else AWS_ACCESS_KEY_ID=AKIDSTALE0000000000 \
    AWS_SECRET_ACCESS_KEY=stale timeout 60 bash -lc ". '$SNIPPET'; $2" 2>&1
}
cli_arn() {
  login_shell "$1" "'$VENV/bin/aws' --endpoint-url '$STS' sts get-caller-identity --query Arn --output text"
}
boto3_arn() {
  login_shell "$1" "'$VENV/bin/python3' -c 'import sys, boto3; print(boto3.session.Session().client(\"sts\", endpoint_url=sys.argv[1]).get_caller_identity()[\"Arn\"])' '$STS'"
}
expires_in() {
  local exp
  exp=$("$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["Expiration"])' "$1/credentials.json")
  echo $(($(date -d "$exp" +%s) - $(date +%s)))
}
# base_untouched: the base dir does not exist, or is empty.
base_untouched() { [ ! -e "$BASE" ] || [ -z "$(ls -A "$BASE")" ]; }

# --- Torque prologue: queue default, walltime -------------------------------------------
J=1234.server.example.com
prologue "$J" alice alice myjob "neednodes=1:ppn=1,nodes=1:ppn=1,walltime=01:30:00" batch null \
  /var/spool/torque/mom_priv/jobs/$J.SC node01
check_eq "Torque prologue exits 0" 0 "$RC"
check_eq "base dir is root 0711" "711 root:root" "$(mode_owner $BASE)"
check_eq "job dir is root 0711" "711 root:root" "$(mode_owner "$BASE/$J")"
for f in credentials.json credentials config endpoint-token endpoint-url state.json; do
  check_eq "Torque: $f is root's, read-only for alice" "640 root:root user:alice:r--" "$(job_file "$BASE/$J/$f")"
done
check "Torque: no failure record" test ! -e "$BASE/$J/failure.json"
check_contains "the log names the queue's default role" "default role of queue batch" "$(cat "$WORK/err")"
secs=$(expires_in "$BASE/$J")
check "walltime 01:30:00 under a 2 h cap gives ~95 min (walltime + 5 min margin): ${secs}s" test "$secs" -ge 5600 -a "$secs" -le 5710
check_contains "AWS CLI in a login shell sees the queue's role as pbs-<jobid>" \
  "assumed-role/pbs-batch/pbs-$J" "$(cli_arn "$J")"
check_contains "boto3 in a login shell sees the queue's role as pbs-<jobid>" \
  "assumed-role/pbs-batch/pbs-$J" "$(boto3_arn "$J")"
envs=$(login_shell "$J" 'env | grep "^AWS_" | sort')
check_contains "the snippet sets AWS_CONFIG_FILE" "AWS_CONFIG_FILE=$BASE/$J/config" "$envs"
check_contains "the snippet sets AWS_SHARED_CREDENTIALS_FILE=/dev/null" "AWS_SHARED_CREDENTIALS_FILE=/dev/null" "$envs"
check_contains "the snippet disables IMDS" "AWS_EC2_METADATA_DISABLED=true" "$envs"
check_not_contains "the snippet removes AWS_PROFILE" "AWS_PROFILE=" "$envs"
check_not_contains "the snippet removes AWS_ACCESS_KEY_ID" "AWS_ACCESS_KEY_ID=" "$envs"
check "bob cannot read alice's credentials" bash -c "! runuser -u bob -- cat '$BASE/$J/credentials.json' 2>/dev/null"
other=$(runuser -u alice -- env -i HOME=/home/alice PATH=/usr/bin:/bin PBS_JOBID=999.nojob AWS_ROLE_BASE_DIR="$BASE" \
  AWS_PROFILE=keep bash -lc ". '$SNIPPET'; env | grep ^AWS_PROFILE" 2>&1)
check_eq "another job (no files) is left alone" "AWS_PROFILE=keep" "$other"

# --- OpenPBS prologue: 3 arguments, site fallback role, duration = cap --------------------
A='1234[5].server'
prologue "$A" alice alice
check_eq "OpenPBS prologue exits 0" 0 "$RC"
check "array job dir has brackets mapped" test -d "$BASE/1234_5_.server"
check_eq "OpenPBS: config is root's, read-only for alice" "640 root:root user:alice:r--" "$(job_file "$BASE/1234_5_.server/config")"
secs=$(expires_in "$BASE/1234_5_.server")
check "no walltime: duration is the role's 1 h cap: ${secs}s" test "$secs" -ge 3500 -a "$secs" -le 3610
check_contains "AWS CLI: array job session is pbs-<jobid> with brackets mapped" \
  "assumed-role/pbs-default/pbs-1234-5-.server" "$(cli_arn "$A")"
check_contains "boto3: array job session is pbs-<jobid> with brackets mapped" \
  "assumed-role/pbs-default/pbs-1234-5-.server" "$(boto3_arn "$A")"

# OpenPBS with --queue: the queue's default role (cap 2 h).
prologue --queue batch 77.server alice alice
check_eq "OpenPBS prologue with --queue exits 0" 0 "$RC"
check_contains "--queue picks the queue's default role" "assumed-role/pbs-batch/pbs-77.server" "$(cli_arn 77.server)"
secs=$(expires_in "$BASE/77.server")
check "--queue batch: duration is that role's 2 h cap: ${secs}s" test "$secs" -ge 7100 -a "$secs" -le 7210

# --- epilogue -------------------------------------------------------------------------------
torque_epilogue "$J"
check_eq "Torque epilogue exits 0" 0 "$RC"
check "epilogue removed the Torque job's dir" test ! -e "$BASE/$J"
torque_epilogue "$A"
check "epilogue removed the array job's dir" test ! -e "$BASE/1234_5_.server"
epilogue 77.server alice alice myjob 4242 "" "walltime=00:00:01" "" null 0
check "OpenPBS epilogue (10 args) removed its dir" test ! -e "$BASE/77.server"
torque_epilogue "$J"
check_eq "epilogue is idempotent (still 0)" 0 "$RC"
check "nothing left in the base dir" base_untouched
out=$(login_shell "$J" "'$VENV/bin/aws' --endpoint-url '$STS' --region us-east-1 sts get-caller-identity")
check_not_contains "after the job the login shell gets no role" "assumed-role/pbs-batch/pbs-$J" "$out"

# --- STS unreachable: failure record, exit 0, the user sees why --------------------------
start=$(date +%s)
MAP=$WORK/dead.toml prologue 55.server alice alice myjob "walltime=00:10:00" batch null
took=$(($(date +%s) - start))
check_eq "STS down: prologue still exits 0 (no requeue/hold)" 0 "$RC"
check "STS down: prologue finished well inside OpenPBS's 30 s (${took}s)" test "$took" -lt 20
check_eq "STS down: failure record is root's, read-only for alice" "640 root:root user:alice:r--" "$(job_file "$BASE/55.server/failure.json")"
check "STS down: no config" test ! -e "$BASE/55.server/config"
msg=$(login_shell 55.server 'env | grep ^AWS_EC2_METADATA_DISABLED')
check_contains "the login shell says why there are no credentials" "aws-role: this job has no AWS credentials: could not assume role pbs-batch" "$msg"
check_contains "a failed job never falls back to the node's role" "AWS_EC2_METADATA_DISABLED=true" "$msg"
torque_epilogue 55.server
check "epilogue removes the failure record" test ! -e "$BASE/55.server"
rm -rf "$BASE"

# --- hostile job ids and malformed arguments: refused, nothing touched, exit 0 -----------
long=$(printf '1%.0s' $(seq 300))
for id in "../x" "1/2" "" "$long" $'1\n2' $'1\e[31m' "1[a].s" "-1"; do
  shown=$(printf '%q' "$id" | cut -c1-40)
  prologue "$id" alice alice myjob "walltime=01:00:00" batch null
  check_eq "prologue refuses job id $shown with exit 0" 0 "$RC"
  check "prologue with job id $shown touched nothing" base_untouched
  check_not_contains "the refusal carries no raw control character ($shown)" $'\e' "$(cat "$WORK/err")"
  prologue "$id" alice alice
  check "OpenPBS prologue with job id $shown touched nothing" base_untouched
  torque_epilogue "$id"
  check_eq "epilogue refuses job id $shown with exit 0" 0 "$RC"
  check "epilogue with job id $shown touched nothing" base_untouched
done
prologue "../x" alice alice myjob "walltime=01:00:00" batch null
check_contains "the refusal names the job id" 'invalid pbs job id "../x"' "$(cat "$WORK/err")"
for list in "walltime=abc" "walltime" "walltime=" "nodes=1,,walltime=01:00:00" \
  "walltime=01:00:00,walltime=02:00:00" $'walltime=01:00:00\n' "=5" "walltime=99999999999:00:00:00"; do
  shown=$(printf '%q' "$list")
  prologue 88.server alice alice myjob "$list" batch null
  check_eq "malformed resource list $shown: exit 0" 0 "$RC"
  check "malformed resource list $shown: nothing touched" base_untouched
  check_contains "malformed resource list $shown: the log names argument 5" "argument 5 (resource_list)" "$(cat "$WORK/err")"
done
for bad in "88.server nosuchuser-x alice" "88.server alice bob" "88.server alice" "88.server alice alice myjob walltime=1:00:00"; do
  # shellcheck disable=SC2086
  prologue $bad
  check_eq "bad prologue arguments ($bad): exit 0" 0 "$RC"
  check "bad prologue arguments ($bad): nothing touched" base_untouched
done
# A user-controlled job name that looks like an option stays an argument.
prologue 89.server alice alice "--base-dir=$WORK/evil" "walltime=01:00:00" batch null
check "a job name like --base-dir=... is not taken as an option" test ! -e "$WORK/evil"
check "...and the job is provisioned in the real base dir" test -s "$BASE/89.server/config"
torque_epilogue 89.server

finish
