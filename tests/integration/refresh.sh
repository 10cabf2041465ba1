#!/usr/bin/env bash
# aws-role-refresher against the STS emulator through the fault proxy, on job directories
# made by the real prolog (run as slurmd runs it): refresh, failure and retry, an epilog
# racing a refresh, revocation, orphans, and what --status shows. Sessions are seconds
# long ([sts] min_session, accepted only for a loopback emulator) so a refresh is due at
# once; the timing rules themselves are unit-tested in core::refresh.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
WORK=$(mktemp -d /tmp/aws-role-rf.XXXXXX)
chmod 0755 "$WORK"
BASE=/run/aws-role-rf
trap 'rm -rf "$WORK"; rm -rf "$BASE"' EXIT
rm -rf "$BASE"
ALICE_UID=$(id -u alice)
ALICE_GID=$(id -g alice)
node_credentials "$WORK/node-credentials"

# write_map ENDPOINT [ALLOWED_USER] [MARGIN] [TIMEOUT]: 20-s sessions, refreshed half-way (the lead
# is capped at half a session), orphans removed 2 s after their end.
write_map() {
  {
    map_head "$1" "${4:-3s}" 1 'min_session = "20s"'
    cat <<TOML

[defaults]
margin = "${3:-5m}"

[refresh]
lead = "1h"
jitter = "0s"
scan_interval = "1s"
orphan_grace = "2s"

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["${2:-alice}"]
max_session = "20s"
TOML
  } >"$WORK/map.toml.new"
  mv -f "$WORK/map.toml.new" "$WORK/map.toml"
}

# prolog JOBID [END_IN_SECONDS]
prolog() {
  (cd / && env -i SLURM_JOB_ID="$1" SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_GID="$ALICE_GID" \
    SLURM_JOB_USER=alice SLURM_JOB_PARTITION=debug SLURM_JOB_RESTART_COUNT=0 \
    SLURM_JOB_END_TIME=$(($(date +%s) + ${2:-3600})) SPANK_AWS_ROLE=demo \
    "$BIN/aws-role-prolog" --config "$WORK/map.toml" </dev/null 2>>"$WORK/prolog.err")
}
epilog() { (cd / && env -i SLURM_JOB_ID="$1" "$BIN/aws-role-epilog" --config "$WORK/map.toml" </dev/null 2>>"$WORK/epilog.err"); }
# refresh_once: one pass; output in $OUT (stdout and log), exit status in $RC.
refresh_once() {
  OUT=$(cd / && "$BIN/aws-role-refresher" --config "$WORK/map.toml" --once 2>&1)
  RC=$?
}
field() { "$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }
key_of() { field "$BASE/$1/credentials.json" AccessKeyId; }
proxy_calls() {
  "$VENV/bin/python3" -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/stats"))["calls"].get(sys.argv[2],0))' "$PROXY" "$1"
}

# --- a due job is refreshed ---------------------------------------------------------
write_map "$PROXY/pass"
J=920001
prolog $J
check "prolog wrote credentials" test -s "$BASE/$J/credentials.json"
k1=$(key_of $J)
exp1=$(field "$BASE/$J/credentials.json" Expiration)
sleep 11 # half of the 20-s session
calls0=$(proxy_calls pass)
refresh_once
check_eq "one pass refreshes the due job and exits 0" "0 1 live, 1 refreshed, 0 failed, 0 removed" "$RC $(tail -n1 <<<"$OUT")"
check_eq "exactly one STS call for one refresh" 1 $(( $(proxy_calls pass) - calls0 ))
k2=$(key_of $J)
check "the refresh wrote new keys" test -n "$k2" -a "$k1" != "$k2"
check "the new credentials expire later" test "$(field "$BASE/$J/credentials.json" Expiration)" '>' "$exp1"
check_eq "state counts the refresh" 1 "$(field "$BASE/$J/state.json" refreshes)"
for f in credentials.json credentials config endpoint-token endpoint-url state.json; do
  check_eq "$f is still root's, read-only for alice" "640 root:root user:alice:r--" "$(job_file "$BASE/$J/$f")"
done
check_eq "no temporary files left" "config credentials credentials.json endpoint-token endpoint-url state.json" "$(ls "$BASE/$J" | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "the session name is unchanged" "slurm-$J-0" "$(field "$BASE/$J/state.json" session_name)"
arn=$(runuser -u alice -- env -i HOME=/home/alice AWS_CONFIG_FILE="$BASE/$J/config" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  timeout 60 "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity --query Arn --output text 2>&1)
check_contains "the CLI works with the refreshed credentials" "assumed-role/demo/slurm-$J-0" "$arn"
secret=$(field "$BASE/$J/credentials.json" SecretAccessKey)
check_not_contains "the refresher's output holds no secret" "$secret" "$OUT"
refresh_once
check_eq "a pass right after has nothing due" "0 1 live, 0 refreshed, 0 failed, 0 removed" "$RC $(tail -n1 <<<"$OUT")"

# --- STS refuses: retried later, recorded, credentials untouched ------------------------
sleep 11
write_map "$PROXY/deny"
before=$(sha256sum "$BASE/$J/credentials.json")
refresh_once
check_eq "a failed refresh makes --once exit 1" 1 "$RC"
check_contains "the failure is logged with STS's answer" "AccessDenied" "$OUT"
check_contains "the log says the current credentials stay valid" "stay valid until" "$OUT"
check_eq "the credentials are untouched" "$before" "$(sha256sum "$BASE/$J/credentials.json")"
check_contains "state records the last error" "AccessDenied" "$(field "$BASE/$J/state.json" last_error)"
status=$("$BIN/aws-role-prolog" --config "$WORK/map.toml" --status 2>&1)
check_contains "--status lists the job with its role and session" "$J" "$(grep "slurm-$J-0" <<<"$status")"
check_contains "--status shows the last error" "AccessDenied" "$status"
check_not_contains "--status shows no secret" "$secret" "$status"
write_map "$PROXY/pass"
refresh_once
check_eq "after STS recovers, the refresh succeeds" "0 1 refreshed" "$RC $(tail -n1 <<<"$OUT" | grep -o '1 refreshed')"
check_eq "the success clears the last error" None "$(field "$BASE/$J/state.json" last_error)"
check_eq "state counts two refreshes" 2 "$(field "$BASE/$J/state.json" refreshes)"
json=$("$BIN/aws-role-prolog" --config "$WORK/map.toml" --status --json)
check_contains "--status --json gives the job as JSON" "\"session_name\":\"slurm-$J-0\"" "$json"

# --- the epilog during a refresh: nothing left behind, no error --------------------------
sleep 11
write_map "$PROXY/slow/2" alice 5m 8s # one attempt may take 4 s
(cd / && "$BIN/aws-role-refresher" --config "$WORK/map.toml" --once >"$WORK/race.out" 2>&1; echo $? >"$WORK/race.rc") &
sleep 1
epilog $J
wait
check "the epilog removed the job while STS was answering" test ! -e "$BASE/$J"
sleep 0.5
check "nothing reappeared after the refresh finished" test ! -e "$BASE/$J"
check_eq "the racing pass exits 0" 0 "$(cat "$WORK/race.rc")"
check_contains "the racing pass noticed the job ended" "ended during its refresh" "$(cat "$WORK/race.out")"
check_not_contains "the racing pass logged no error" "ERROR" "$(cat "$WORK/race.out")"

# --- revocation: a role taken away is not refreshed ------------------------------------
write_map "$PROXY/pass"
J=920002
prolog $J
sleep 11
write_map "$PROXY/pass" bob
before=$(sha256sum "$BASE/$J/credentials.json")
calls0=$(proxy_calls pass)
refresh_once
check_contains "a revoked role stops being refreshed, with the reason" "no longer authorized" "$OUT"
check_eq "no STS call for a revoked job" 0 $(( $(proxy_calls pass) - calls0 ))
check_eq "its credentials are left to expire" "$before" "$(sha256sum "$BASE/$J/credentials.json")"
epilog $J

# --- never past the job's end: a job ending within the floor is not refreshed -----------
write_map "$PROXY/pass" alice 0s
J=920003
prolog $J 15 # ends in 15 s, margin 0: the first 20-s session already covers it
calls0=$(proxy_calls pass)
refresh_once
check_eq "credentials that reach the job's end are not refreshed" "0 0" "$RC $(( $(proxy_calls pass) - calls0 ))"

# --- orphans: the epilog never ran ----------------------------------------------------
sleep 18 # end (15 s) + margin (0) + orphan_grace (2 s) has passed
refresh_once
check_contains "an ended job's directory is removed" "removed: the job ended" "$OUT"
check "the orphan's directory is gone" test ! -e "$BASE/$J"
J=920004
printf '[sts]\n' >"$WORK/broken.toml"
(cd / && env -i SLURM_JOB_ID=$J SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_USER=alice \
  "$BIN/aws-role-prolog" --config "$WORK/broken.toml" --base-dir "$BASE" </dev/null 2>/dev/null)
check "a failed job leaves a failure record" test -s "$BASE/$J/failure.json"
refresh_once
check "a young failure record is kept (the job may still run)" test -s "$BASE/$J/failure.json"
status=$("$BIN/aws-role-prolog" --config "$WORK/map.toml" --status 2>&1)
check_contains "--status shows the failed job and why" "no credentials: the site's role map is invalid" "$status"
epilog $J

# --- a job without an end that Slurm no longer knows -------------------------------------
# Before, a job without an end time was refreshed for as long as its directory existed.
# Now the refresher asks `scontrol show job` before each of its refreshes (job 920005 is
# not one the test cluster knows: "Invalid job id specified").
J=920005
(cd / && env -i SLURM_JOB_ID=$J SLURM_JOB_UID="$ALICE_UID" SLURM_JOB_GID="$ALICE_GID" \
  SLURM_JOB_USER=alice SLURM_JOB_PARTITION=debug SPANK_AWS_ROLE=demo \
  "$BIN/aws-role-prolog" --config "$WORK/map.toml" </dev/null 2>>"$WORK/prolog.err")
check_eq "a job without an end gets credentials" None "$(field "$BASE/$J/state.json" end_time)"
sleep 11 # half of the 20-s session: due
refresh_once
check_eq "a due job Slurm no longer knows is removed, not refreshed" "0 0 live, 0 refreshed, 0 failed, 1 removed" "$RC $(tail -n1 <<<"$OUT")"
check_contains "... and the log says why" "Slurm no longer knows job $J" "$OUT"
check "... its directory is gone" test ! -e "$BASE/$J"

# --- 5,000 job directories, a few of them odd, under a 128-descriptor limit ------------
# Before, the scan held one descriptor per directory (EMFILE past ~1,020 under the default
# 1,024) and the first odd entry ended every pass and --status.
J=920006
prolog $J
"$VENV/bin/python3" - "$BASE" <<'PY'
import json, os, sys
base = sys.argv[1]
for n in range(5000):
    d = os.path.join(base, str(940000 + n))
    os.mkdir(d, 0o711)
    with open(os.path.join(d, "failure.json"), "w") as f:
        json.dump({"job_id": str(940000 + n), "reason": "STS could not be reached", "time": "2099-01-01T00:00:00Z"}, f)
open(os.path.join(base, "930000"), "w").write("a file where a job directory should be")
os.mkdir(os.path.join(base, "930001")); os.chmod(os.path.join(base, "930001"), 0o777)
os.mkdir(os.path.join(base, "930002")); open(os.path.join(base, "930002", "state.json"), "w").write("{not json")
os.makedirs(os.path.join(base, "930003", "state.json"))
PY
OUT=$(cd / && ulimit -n 128 && "$BIN/aws-role-refresher" --config "$WORK/map.toml" --once 2>&1); RC=$?
check_eq "one pass over 5,005 entries with 128 descriptors: the live job, the odd ones skipped" \
  "0 1 live, 0 refreshed, 0 failed, 0 removed, 4 skipped" "$RC $(tail -n1 <<<"$OUT")"
check_contains "... each odd entry is logged" "930001" "$OUT"
status=$(cd / && ulimit -n 128 && "$BIN/aws-role-prolog" --config "$WORK/map.toml" --status --json 2>&1); rc=$?
check_eq "--status with 128 descriptors exits 0" 0 "$rc"
check_eq "... and lists every entry (5,000 failed, the live one, 4 odd ones)" 5005 "$(grep -c '"kind"' <<<"$status")"
check_contains "... the odd ones with why" '"dir":"930001","note"' "$status"
rm -rf "$BASE"/94???? "$BASE"/93000?
epilog $J

# --- a cross-account role: ExternalId, managed session policies, transitive tags ----------
# moto takes them without looking; the fault proxy's record shows what the prolog and the
# refresher sent on the wire, call by call (under a path of this run's own: the proxy
# outlives a suite).
XPATH=xacct-$$-$RANDOM
write_map "$PROXY/pass/$XPATH"
cat >>"$WORK/map.toml" <<'TOML'
tags = { project = "p-{partition}", job = "{job_id}" }
transitive_tag_keys = ["project"]
policy_arns = ["arn:aws:iam::123456789012:policy/hpc/read-data", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
external_id = "vendor:4711/hpc"
TOML
J=920090
prolog $J
check "prolog with the cross-account settings wrote credentials" test -s "$BASE/$J/credentials.json"
sleep 11 # half of the 20-s session
refresh_once
check_contains "... and the refresher renewed them" "1 refreshed, 0 failed" "$OUT"
sent=$(sent_params "$PROXY" "$XPATH")
want="ExternalId=vendor:4711/hpc PolicyArns.member.1.arn=arn:aws:iam::123456789012:policy/hpc/read-data PolicyArns.member.2.arn=arn:aws:iam::aws:policy/ReadOnlyAccess RoleSessionName=slurm-$J-0 Tags.member.1.Key=job Tags.member.1.Value=$J Tags.member.2.Key=project Tags.member.2.Value=p-debug TransitiveTagKeys.member.1=project"
check_eq "two AssumeRole calls through the proxy (prolog, refresh)" 2 "$(grep -c . <<<"$sent")"
check_eq "the prolog's call carried ExternalId, both PolicyArns and the transitive key" "$want" "$(sed -n 1p <<<"$sent")"
check_eq "... and so did the refresher's" "$want" "$(sed -n 2p <<<"$sent")"
check_not_contains "the ExternalId is in no log line of the refresher" "vendor:4711" "$OUT"
check_not_contains "... nor of the prolog" "vendor:4711" "$(cat "$WORK/prolog.err" 2>/dev/null)"
epilog $J

# --- a broken map is reported with its position -----------------------------------------
printf '[sts]\nregion = "us-east-1"\n[refresh]\nlead = "soon"\n' >"$WORK/map.toml"
refresh_once
check_eq "a broken map makes --once exit 1" 1 "$RC"
check_contains "the error names the file, line and column" "$WORK/map.toml:4:" "$OUT"

check_not_contains "no epilog error along the way" "ERROR" "$(cat "$WORK/epilog.err" 2>/dev/null)"
finish
