#!/usr/bin/env bash
# aws-role-endpoint, the node's credentials endpoint, on job directories made by the real
# prolog (run as slurmd runs it) against the STS emulator: the job's user gets the job's
# current credentials with the job's token, through the real SDKs and the CLI with nothing
# but the endpoint's variables; everybody and everything else is refused, each case with
# its own answer; refreshed keys are served at once; an ended job gets nothing; a slow or
# huge request and a flood of connections cost the others nothing; no token and no secret
# reaches the daemon's log.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
WORK=$(mktemp -d /tmp/aws-role-ep.XXXXXX)
chmod 0755 "$WORK"
BASE=/run/aws-role-ep
# A port below 1024 (the map refuses others) that nothing else of the suite uses.
PORT=942
EP_PID=
trap '[ -z "$EP_PID" ] || kill "$EP_PID" 2>/dev/null; rm -rf "$WORK" "$BASE"' EXIT
rm -rf "$BASE"
node_credentials "$WORK/node-credentials"
ALICE_UID=$(id -u alice)
BOB_UID=$(id -u bob)
# Built before any job: its sessions last 20 s.
(cd "$REPO" && cargo build -q --release -p aws-role-test-sdk-client) || not_ok "build the Rust SDK test client"
install -m 0755 "$REPO/target/release/aws-role-sdk-whoami" "$WORK/"

# write_map [ENDPOINT_LINES]: 20-s sessions (refreshed half-way), the endpoint on $PORT.
write_map() {
  {
    map_head "$STS" 5s 2 'min_session = "20s"'
    cat <<TOML

[refresh]
lead = "1h"
jitter = "0s"

[endpoint]
listen = "127.0.0.1:$PORT"
max_connections_per_user = 4
${1:-}

[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice", "bob"]
max_session = "20s"
TOML
  } >"$WORK/map.toml"
}

# prolog JOBID USER
prolog() {
  (cd / && env -i SLURM_JOB_ID="$1" SLURM_JOB_UID="$(id -u "$2")" SLURM_JOB_GID="$(id -g "$2")" \
    SLURM_JOB_USER="$2" SLURM_JOB_PARTITION=debug SLURM_JOB_RESTART_COUNT=0 \
    SLURM_JOB_END_TIME=$(($(date +%s) + 3600)) SPANK_AWS_ROLE=demo \
    "$BIN/aws-role-prolog" --config "$WORK/map.toml" </dev/null 2>>"$WORK/prolog.err")
}
epilog() { (cd / && env -i SLURM_JOB_ID="$1" "$BIN/aws-role-epilog" --config "$WORK/map.toml" </dev/null 2>>"$WORK/epilog.err"); }
start_endpoint() {
  "$BIN/aws-role-endpoint" --config "$WORK/map.toml" 2>>"$WORK/endpoint.log" &
  EP_PID=$!
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null
}
field() { "$VENV/bin/python3" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }
url_of() { cat "$BASE/$1/endpoint-url"; }
token_of() { cat "$BASE/$1/endpoint-token"; }
# fetch USER JOB [TOKEN]: "<status> <body>" of one GET as USER ("root" for root).
fetch() {
  local as=(runuser -u "$1" --)
  [ "$1" = root ] && as=()
  "${as[@]}" curl -s -m 10 -o - -w ' %{http_code}' ${3:+-H "Authorization: $3"} "$(url_of "$2")" 2>&1 |
    awk '{code = $NF; $NF = ""; printf "%s %s", code, $0}'
}
# as_job USER JOB CMD...: CMD as USER with only what the job's tools would see from the
# endpoint: its three variables and the region, and no config file, helper or key file.
as_job() {
  local user=$1 job=$2
  shift 2
  runuser -u "$user" -- env -i PATH=/usr/bin:/bin HOME=/nonexistent \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$(url_of "$job")" \
    AWS_CONTAINER_AUTHORIZATION_TOKEN="$(token_of "$job")" \
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$BASE/$job/endpoint-token" "$@"
}

write_map
A=930001
B=930002
prolog $A alice
prolog $B bob
check "prolog wrote alice's job" test -s "$BASE/$A/credentials.json"
check_eq "the token file is root's, read-only for alice" "640 root:root user:alice:r--" "$(job_file "$BASE/$A/endpoint-token")"
check_eq "the token is 64 hex digits, no newline" 64 "$(tr -d '0-9a-f' <"$BASE/$A/endpoint-token" | wc -c | awk '{print 64 - $1}')"
check_eq "... and nothing else" 64 "$(wc -c <"$BASE/$A/endpoint-token")"
check "the two jobs' tokens differ" test "$(token_of $A)" != "$(token_of $B)"
check_eq "the job's URL names its directory" "http://127.0.0.1:$PORT/v1/credentials/$A" "$(url_of $A)"
start_endpoint
check "the endpoint listens on 127.0.0.1:$PORT" kill -0 "$EP_PID"

# --- the job's user with the job's token -------------------------------------------------
out=$(fetch alice $A "$(token_of $A)")
check_eq "alice with her job's token: 200" 200 "${out%% *}"
check_contains "... and her job's access key" "\"AccessKeyId\":\"$(field "$BASE/$A/credentials.json" AccessKeyId)\"" "$out"
check_contains "... with its expiry" "\"Expiration\":\"$(field "$BASE/$A/credentials.json" Expiration)\"" "$out"

tp=$(cd / && runuser -u alice -- env -i SLURM_JOB_ID=$A SLURM_SCRIPT_CONTEXT=prolog_task "$BIN/aws-role-prolog" --config "$WORK/map.toml" 2>&1)
check_contains "the TaskProlog (as alice) exports the job's endpoint URL" "export AWS_CONTAINER_CREDENTIALS_FULL_URI=$(url_of $A)" "$tp"
check_contains "... its token file" "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$BASE/$A/endpoint-token" "$tp"
check_contains "... and the map's region" "export AWS_REGION=us-east-1" "$tp"
check "... after removing the inherited ones" test "$(grep -n 'unset AWS_CONTAINER_CREDENTIALS_FULL_URI' <<<"$tp" | cut -d: -f1)" -lt \
  "$(grep -n 'export AWS_CONTAINER_CREDENTIALS_FULL_URI' <<<"$tp" | cut -d: -f1)"

# --- every refusal, and what it says -------------------------------------------------------
refusal() { # WHAT EXPECTED_STATUS EXPECTED_MESSAGE_FRAGMENT OUT
  check_eq "$1: $2" "$2" "${4%% *}"
  check_contains "$1: says why" "$3" "$4"
  check_not_contains "$1: no credentials in the answer" "AccessKeyId" "$4"
}
refusal "bob with alice's token" 403 "another user" "$(fetch bob $A "$(token_of $A)")"
refusal "root with alice's token (root is not the job's user)" 403 "another user" "$(fetch root $A "$(token_of $A)")"
refusal "alice with bob's token on her job" 403 "not this job's" "$(fetch alice $A "$(token_of $B)")"
refusal "alice with her token on bob's job" 403 "another user" "$(fetch alice $B "$(token_of $A)")"
refusal "alice with a one-digit-off token" 403 "not this job's" \
  "$(fetch alice $A "$(token_of $A | sed 's/.$/x/')")"
refusal "alice without a token" 401 "no Authorization token" "$(fetch alice $A)"
out=$(runuser -u alice -- curl -s -m 10 -w ' %{http_code}' -X POST -H "Authorization: $(token_of $A)" "$(url_of $A)")
check_eq "a POST: 405" 405 "${out##* }"
out=$(runuser -u alice -- curl -s -m 10 -w ' %{http_code}' -H "Authorization: $(token_of $A)" "http://127.0.0.1:$PORT/latest/meta-data/iam/security-credentials/")
check_eq "an instance-metadata path: 404" 404 "${out##* }"
out=$(runuser -u alice -- curl -s -m 10 --path-as-is -w ' %{http_code}' -H "Authorization: $(token_of $A)" "http://127.0.0.1:$PORT/v1/credentials/../$A")
check_eq "a path out of the store: 404" 404 "${out##* }"
out=$(runuser -u alice -- curl -s -m 10 -w ' %{http_code}' -H "Authorization: $(token_of $A)" -H "X-Pad: $(head -c 20000 /dev/zero | tr '\0' a)" "$(url_of $A)")
check_eq "a 20-KB request head is refused (431), not read" 431 "${out##* }"

# A slow client (half a request head, then nothing) is cut off after 5 s; a flood of
# alice's connections stops at her 4 while bob is still served.
slow=$(runuser -u alice -- "$VENV/bin/python3" - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v1/credentials/1 HTTP/1.1\r\nHost: x\r\n")
t = time.monotonic()
s.settimeout(30)
try:
    data = s.recv(4096)
    while data:
        data = s.recv(4096)
except OSError:
    pass
print("closed after %d s" % round(time.monotonic() - t))
PY
)
check_contains "a slow request head is cut off (5 s)" "closed after 5 s" "$slow"
runuser -u alice -- "$VENV/bin/python3" - "$PORT" >"$WORK/flood" <<'PY' &
import socket, sys, time
held, refused = [], 0
for _ in range(50):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.settimeout(0.2)
    try:
        # A connection over the cap is closed at once: recv sees the end.
        if s.recv(1) == b"":
            refused += 1
            continue
    except socket.timeout:
        pass
    held.append(s)
print("held %d refused %d" % (len(held), refused), flush=True)
time.sleep(4)
PY
FLOOD=$!
wait_for 30 grep -q held "$WORK/flood"
bob_during=$(fetch bob $B "$(token_of $B)")
check_eq "alice's flood: 4 connections held, the other 46 closed at once" "held 4 refused 46" "$(cat "$WORK/flood")"
wait $FLOOD
check_eq "bob is served while alice floods" 200 "${bob_during%% *}"
alice_after=$(fetch alice $A "$(token_of $A)")
check_eq "alice is served again once her connections closed" 200 "${alice_after%% *}"
check_contains "the log says alice's connections were capped" "refused a connection of uid $ALICE_UID: it has 4 open already" "$(cat "$WORK/endpoint.log")"

# --- the SDKs and the CLI with nothing but the endpoint ------------------------------------
py_arn='import sys, boto3; print(boto3.session.Session().client("sts", endpoint_url=sys.argv[1]).get_caller_identity()["Arn"])'
check_contains "boto3 (ContainerProvider) gets alice's role session" "assumed-role/demo/slurm-$A-0" \
  "$(as_job alice $A timeout 60 "$VENV/bin/python3" -c "$py_arn" "$STS" 2>&1)"
check_contains "AWS CLI v1 gets it too" "assumed-role/demo/slurm-$A-0" \
  "$(as_job alice $A timeout 60 "$VENV/bin/aws" --endpoint-url "$STS" sts get-caller-identity --query Arn --output text 2>&1)"
check_contains "aws-sdk-rust (its ECS provider) gets it too" "assumed-role/demo/slurm-$A-0" \
  "$(as_job alice $A timeout 60 "$WORK/aws-role-sdk-whoami" "$STS" 2>&1)"
check_contains "boto3 as bob with alice's variables gets nothing" "403" \
  "$(runuser -u bob -- env -i PATH=/usr/bin:/bin HOME=/nonexistent AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1 AWS_CONTAINER_CREDENTIALS_FULL_URI="$(url_of $A)" \
    AWS_CONTAINER_AUTHORIZATION_TOKEN="$(token_of $A)" timeout 60 "$VENV/bin/python3" -c "$py_arn" "$STS" 2>&1)"

# --- a refresh is served at once; an ended job gets nothing --------------------------------
k1=$(field "$BASE/$A/credentials.json" AccessKeyId)
sleep 11 # half of the 20-s session
(cd / && "$BIN/aws-role-refresher" --config "$WORK/map.toml" --once >/dev/null 2>&1)
k2=$(field "$BASE/$A/credentials.json" AccessKeyId)
check "the refresher replaced alice's keys" test -n "$k2" -a "$k1" != "$k2"
check_contains "the endpoint serves the new keys" "\"AccessKeyId\":\"$k2\"" "$(fetch alice $A "$(token_of $A)")"
check_eq "the token survived the refresh" 64 "$(wc -c <"$BASE/$A/endpoint-token")"
token=$(token_of $A)
url=$(url_of $A)
secret=$(field "$BASE/$A/credentials.json" SecretAccessKey)
session=$(field "$BASE/$A/credentials.json" SessionToken)
epilog $A
out=$(runuser -u alice -- curl -s -m 10 -w ' %{http_code}' -H "Authorization: $token" "$url")
check_eq "after the epilog the same token gets 404" 404 "${out##* }"
check_contains "... saying the job ended" "has ended" "$out"

# --- turned off in the map ------------------------------------------------------------------
write_map "enabled = false"
C=930003
prolog $C alice
check "with [endpoint] enabled = false the prolog writes no token" test ! -e "$BASE/$C/endpoint-token"
check_not_contains "... and the job is given no endpoint variable" "export AWS_CONTAINER" \
  "$(cd / && runuser -u alice -- env -i SLURM_JOB_ID=$C SLURM_SCRIPT_CONTEXT=prolog_task "$BIN/aws-role-prolog" --config "$WORK/map.toml" 2>&1)"
check_contains "... while the TaskProlog still exports the config" "export AWS_CONFIG_FILE=$BASE/$C/config" \
  "$(cd / && runuser -u alice -- env -i SLURM_JOB_ID=$C SLURM_SCRIPT_CONTEXT=prolog_task "$BIN/aws-role-prolog" --config "$WORK/map.toml" 2>&1)"
epilog $C
epilog $B

kill "$EP_PID" 2>/dev/null
wait "$EP_PID" 2>/dev/null
EP_PID=
log=$(cat "$WORK/endpoint.log")
check_contains "the log names each answer" "credentials to uid $ALICE_UID" "$log"
check_contains "... and each refusal" "refused uid $BOB_UID: the job is uid $ALICE_UID's" "$log"
check_not_contains "the log holds no token" "$token" "$log"
check_not_contains "the log holds no secret key" "$secret" "$log"
check_not_contains "the log holds no session token" "${session:0:40}" "$log"
finish
