#!/usr/bin/env bash
# Long jobs on the real Slurm: a job whose credentials are replaced several times while it
# runs. A long-running boto3 client and a long-running aws-sdk-rust client inside the job
# call GetCallerIdentity in a loop; both must see their access key id change (read from
# the requests they signed) and never fail — also while the refresher is killed and
# restarted, and while STS refuses a refresh for a while. Sessions are 60 s (the map's
# min_session, accepted only for a loopback emulator), refreshed 30 s before expiry.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
PROXY=$(bash "$REPO/tests/harness/sts.sh" proxy-url)
OUT=/home/alice/aws-role-refresh
TEST_BIN=/usr/local/libexec/aws-role-test
REFRESHER="bash $REPO/tests/harness/refresher.sh"
RLOG=$($REFRESHER log)
BASE=/run/aws-role
LOOP_SECS=130

sl scancel -u alice >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
site() { AWS_ROLE_SITE_FAST_REFRESH=1 bash "$REPO/tests/harness/site.sh" write "$1"; }
site "$PROXY/pass"
install -d -m 0755 "$TEST_BIN"
(cd "$REPO" && cargo build -q --release -p aws-role-test-sdk-client) || not_ok "build the Rust SDK test client"
install -m 0755 "$REPO/target/release/aws-role-sdk-whoami" "$TEST_BIN/"
rm -rf "$OUT"
runuser -u alice -- mkdir -p "$OUT"
$REFRESHER down >/dev/null 2>&1
log_from=$(( $( [ -f "$RLOG" ] && wc -l <"$RLOG" || echo 0) + 1 ))
$REFRESHER up --config /etc/aws-role/role-map.toml >/dev/null || not_ok "start the refresher"
rlog() { tail -n +"$log_from" "$RLOG"; }
proxy_calls() {
  "$VENV/bin/python3" -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/stats"))["calls"].get(sys.argv[2],0))' "$PROXY" "$1"
}
pass0=$(proxy_calls pass)

# The job: both clients at once, one process each for the whole run.
J=$(runuser -l alice -c "sbatch --parsable --aws-role=demo --time=10 -o $OUT/%j.out" <<JOB 2>&1 | tail -n1
#!/bin/bash
$VENV/bin/python3 - $STS $LOOP_SECS <<'PY' &
import sys, time, boto3
seen = {}
def grab(request, **_):
    auth = request.headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else auth
    seen["key"] = auth.split("Credential=")[1].split("/")[0]
sts = boto3.session.Session().client("sts", endpoint_url=sys.argv[1])
sts.meta.events.register("before-send.sts.*", grab)
end = time.time() + int(sys.argv[2])
n = 0
while time.time() < end:
    n += 1
    try:
        arn = sts.get_caller_identity()["Arn"]
        print("BOTO", n, "ok", seen.get("key"), arn, flush=True)
    except Exception as e:
        print("BOTO", n, "FAIL", type(e).__name__, str(e)[:200], flush=True)
    time.sleep(2)
PY
$TEST_BIN/aws-role-sdk-whoami $STS $((LOOP_SECS / 2)) 2 | sed 's/^/RUST /'
echo "RUST_RC=\${PIPESTATUS[0]}"
wait
JOB
)
check "sbatch --aws-role=demo --time=10 accepted (job $J)" test -n "$J"
state_of() { sl scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[^ ]*' | cut -d= -f2; }
wait_for 60 bash -c "[ \"\$(timeout 10 scontrol show job -o $J | grep -o 'JobState=[^ ]*')\" = JobState=RUNNING ] && [ -s $BASE/$J/credentials.json ]" \
  || not_ok "job $J running with credentials"
secret=$("$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["SecretAccessKey"])' "$BASE/$J/credentials.json")

# 1. The refresher dies (SIGKILL) and comes back 8 s later: the job must not notice.
sleep 40
$REFRESHER kill >/dev/null
sleep 8
$REFRESHER up --config /etc/aws-role/role-map.toml >/dev/null || not_ok "restart the refresher"

# 2. STS refuses refreshes until the refresher has failed once; then it recovers.
sleep 15
site "$PROXY/deny"
wait_for 45 bash -c "tail -n +$log_from $RLOG | grep -q 'job{id=$J}.*refresh failed'"
check_contains "a refused refresh is logged, and the job keeps its credentials" "stay valid until" "$(rlog | grep "refresh failed" | head -1)"
status=$("$BIN/aws-role-prolog" --status 2>&1)
check_contains "--status shows the job's last error" "AccessDenied" "$(grep "slurm-$J-0" <<<"$status")"
site "$PROXY/pass"

# 3. The job ends on its own.
wait_for 150 bash -c "case \$(timeout 10 scontrol show job -o $J | grep -o 'JobState=[^ ]*') in *COMPLETED*|*FAILED*|*CANCELLED*|*TIMEOUT*) exit 0;; esac; exit 1" \
  || not_ok "job $J finished within its loop time"
check_eq "the job completed" COMPLETED "$(state_of "$J")"
o=$(cat "$OUT/$J.out" 2>/dev/null)
boto_ok=$(grep -c '^BOTO [0-9]* ok .*assumed-role/demo/slurm-'"$J"'-0' <<<"$o")
boto_keys=$(grep '^BOTO [0-9]* ok' <<<"$o" | awk '{print $4}' | sort -u | wc -l)
rust_keys=$(grep "^RUST .*assumed-role/demo/slurm-$J-0" <<<"$o" | awk '{print $4}' | sort -u | wc -l)
rust_ok=$(grep -c "^RUST .*assumed-role/demo/slurm-$J-0" <<<"$o")
check_eq "boto3 never failed over ${LOOP_SECS}s" 0 "$(grep -c '^BOTO [0-9]* FAIL' <<<"$o")"
check "boto3 made its calls as the job's role session ($boto_ok calls)" test "$boto_ok" -ge 50
check "one boto3 client saw its access key id change at least twice ($boto_keys keys)" test "$boto_keys" -ge 3
check_eq "aws-sdk-rust never failed" "RUST_RC=0" "$(grep '^RUST_RC=' <<<"$o")"
check_eq "aws-sdk-rust made every call as the job's role session" $((LOOP_SECS / 2)) "$rust_ok"
check "one aws-sdk-rust client saw its access key id change at least twice ($rust_keys keys)" test "$rust_keys" -ge 3

# 4. What it cost, and what is left.
refreshed=$(rlog | grep -c "job{id=$J}.*credentials refreshed")
check "the refresher refreshed the job several times ($refreshed)" test "$refreshed" -ge 3
check_eq "STS calls for the job = 1 (prolog) + refreshes" $((1 + refreshed)) $(( $(proxy_calls pass) - pass0 ))
check "the refresher logged its restart" test "$(rlog | grep -c 'started; role map')" -ge 2
wait_for 10 test ! -e "$BASE/$J" || true
check "the job's credentials are gone after it ended" test ! -e "$BASE/$J"
sleep 3
check_not_contains "the refresher did not trip over the ended job" "cannot" "$(rlog | grep "$J")"
check_not_contains "the job's secret key is not in the refresher's log" "$secret" "$(rlog)"
check_not_contains "the job's secret key is not in slurmd's log" "$secret" "$(cat /var/log/slurm/slurmd.log 2>/dev/null)"
check "the node is not drained" bash "$REPO/tests/harness/cluster.sh" assert-healthy

$REFRESHER down >/dev/null 2>&1
bash "$REPO/tests/harness/site.sh" write >/dev/null
finish
