#!/usr/bin/env bash
# The tool table: the AWS CLIs, SDKs and data tools researchers use, each inside a real
# Slurm job (sbatch --aws-role=demo as alice) with exactly the environment aws-role gives,
# listing, reading and writing objects of its own bucket in moto's S3 (a moto of the
# suite's own, serving STS and S3 on one port as the job's emulator does: moto cannot list
# its state once S3 objects were replaced, and tests/secret-scan.sh lists the main one's)
# through a request log that records who signed each request. Each tool runs in a
# network namespace of the job's own (tests/e2e/tools/in-job.sh) where 169.254.169.254
# and [fd00:ec2::254] are a stand-in IMDS handing out a "node role": a tool that falls back
# to the node's identity is seen there and in its signatures, and can reach nothing of
# this machine's network. Proves, per tool: it worked, every request it sent was signed with
# the job's session (its access key and session token), it never contacted IMDS, and which
# mechanism gave it the credentials (credential_process, the endpoint, the static-key
# file). Prints the table (tool, version, mechanism, result) for the docs.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/jobs.sh
. "$REPO/tests/harness/jobs.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
TOOLS=${AWS_ROLE_TEST_TOOLS:-/opt/aws-role-test/tools}
TEST_BIN=/usr/local/libexec/aws-role-test
OUT=/home/alice/aws-role-tools
WORK=$(mktemp -d /tmp/aws-role-tools.XXXXXX)
# The request log in front of the suite's moto, and the node's endpoint (the map's default port).
S3_PORT=5061
S3_MOTO_PORT=5062
S3_MOTO=http://127.0.0.1:$S3_MOTO_PORT
EP_PORT=941
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null
  bash "$REPO/tests/harness/site.sh" write "$STS" >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# tool EXPECTED_MECHANISM: every tool of the table, and what it gets its credentials from.
declare -A MECH=(
  [cli-v1]=credential_process [cli-v2]=credential_process [boto3]=credential_process
  [s3fs-pandas]=credential_process [pyarrow]=credential_process [polars]=endpoint
  [polars-no-boto3]=endpoint [obstore]=endpoint [duckdb]=credential_process
  [gdal]="static-key file" [rclone]=credential_process [s5cmd]=credential_process
  [s3cmd-env]=credential_process [node-sdk-v3]=credential_process
  [aws-sdk-rust]=credential_process [container-boto3]=endpoint [container-polars]=endpoint
)
ORDER=(cli-v1 cli-v2 boto3 s3fs-pandas pyarrow polars polars-no-boto3 obstore duckdb gdal rclone
  s5cmd s3cmd-env node-sdk-v3 aws-sdk-rust container-boto3 container-polars)
# s3cmd as it is: the known fall-back (it asks IMDS at every start), run to prove the
# suite sees one when it happens.
HAZARD=s3cmd

for c in socat unshare "$TOOLS/bin/python3" /usr/bin/aws rclone s3cmd node /usr/bin/gdalinfo; do
  command -v "$c" >/dev/null || { not_ok "tool missing: $c (tests/harness/tools.sh install)"; finish; exit; }
done

# --- fixtures ---------------------------------------------------------------------------
sl scancel -u alice >/dev/null 2>&1
bash "$REPO/tests/harness/cluster.sh" wait-idle >/dev/null
bash "$REPO/tests/harness/site.sh" write "$STS"
bash "$REPO/tests/harness/container-root.sh" ensure || not_ok "make the container root"
# The job's credential_process, through a wrapper that notes each run (which mechanism).
install -d -m 0755 "$TEST_BIN/tools"
install -m 0755 "$REPO/tests/e2e/tools/in-job.sh" "$REPO/tests/e2e/tools/in-ns.sh" "$REPO/tests/e2e/tools/"s3-*.py "$REPO/tests/e2e/tools/results.sh" \
  "$REPO/tests/harness/imds-emulator.py" "$TEST_BIN/tools/"
cat >"$TEST_BIN/aws-role-credentials-logged" <<EOF
#!/bin/sh
# Test wrapper (tests/e2e/tools.sh): notes each run of the job's credential_process.
[ -n "\${AWS_ROLE_TEST_HELPER_LOG:-}" ] && echo run >>"\$AWS_ROLE_TEST_HELPER_LOG"
exec $BIN/aws-role-credentials "\$@"
EOF
chmod 0755 "$TEST_BIN/aws-role-credentials-logged"
sed -i "s|^credential_helper = .*|credential_helper = \"$TEST_BIN/aws-role-credentials-logged\"|" /etc/aws-role/role-map.toml
(cd "$REPO" && cargo build -q --release -p aws-role-test-sdk-client) || not_ok "build the Rust SDK test clients"
install -m 0755 "$REPO/target/release/aws-role-sdk-s3" "$TEST_BIN/"

"$VENV/bin/moto_server" -H 127.0.0.1 -p $S3_MOTO_PORT >"$WORK/s3-moto.log" 2>&1 &
PIDS+=($!)
wait_for 30 curl -sf -o /dev/null "$S3_MOTO/moto-api/" || not_ok "the suite's moto answers"
"$VENV/bin/python3" "$REPO/tests/harness/sigv4-log-proxy.py" serve --port $S3_PORT --upstream "$S3_MOTO" \
  --log "$WORK/requests.log" 2>>"$WORK/proxy.err" &
PIDS+=($!)
if ! (exec 3<>/dev/tcp/127.0.0.1/$EP_PORT) 2>/dev/null; then
  "$BIN/aws-role-endpoint" --config /etc/aws-role/role-map.toml 2>>"$WORK/endpoint.log" &
  PIDS+=($!)
fi
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$S3_PORT && exec 4<>/dev/tcp/127.0.0.1/$EP_PORT" 2>/dev/null ||
  not_ok "the request log and the endpoint listen"
# A fresh bucket per tool, with in.csv.
"$VENV/bin/python3" "$REPO/tests/harness/s3-fixture.py" buckets "$S3_MOTO" "${ORDER[@]}" "$HAZARD" ||
  not_ok "make the buckets"
rm -rf "$OUT"
runuser -u alice -- mkdir -p "$OUT"
jobs_init alice "$OUT"

# --- the job --------------------------------------------------------------------------------
# It prints its access key and the SHA-256 of its session token (never the token), then the
# table's lines. It keeps its endpoint variables (the token too, in its user's own file) for
# the container run after it ended.
J=$(submit alice --aws-role=demo --time=15 <<JOB
(umask 077; env | grep -E '^AWS_(CONTAINER|REGION|DEFAULT_REGION|EC2_METADATA_DISABLED)' | sed "s|^\(AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=\).*|\1$OUT/endpoint-token|" >$OUT/endpoint-env
  cp \$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE $OUT/endpoint-token)
$VENV/bin/python3 -c 'import json, os, hashlib; c = json.load(open(os.path.join(os.path.dirname(os.environ["AWS_CONFIG_FILE"]), "credentials.json"))); print("JOBKEY", c["AccessKeyId"], hashlib.sha256(c["SessionToken"].encode()).hexdigest())'
$TEST_BIN/tools/in-job.sh $S3_PORT ${ORDER[*]} $HAZARD
JOB
)
check "sbatch --aws-role=demo accepted (job $J)" test -n "$J"
st=$(slurm_job_wait "$J" 900)
check_eq "the tools job completed" COMPLETED "$st"
o=$(job_out "$J")
read -r _ AKID TOKEN_SHA < <(grep '^JOBKEY ' <<<"$o")
check "the job read its own access key" test -n "${AKID:-}"

# signed BUCKET: "<requests> <signed with the job's session> <signed with the node's role>"
signed() {
  "$VENV/bin/python3" "$REPO/tests/harness/sigv4-log-proxy.py" count --log "$WORK/requests.log" \
    --prefix "/$1/" --akid "$AKID" --token "$TOKEN_SHA"
}
moto_out() { "$VENV/bin/python3" "$REPO/tests/harness/s3-fixture.py" get "$S3_MOTO" "t-$1" out.csv; }

TABLE="| tool | version | credentials from | list, read, write | requests signed by the job | IMDS contacts |"$'\n'"|---|---|---|---|---|---|"
for t in "${ORDER[@]}" "$HAZARD"; do
  line=$(grep "^TOOL $t | " <<<"$o")
  IFS='|' read -r _ version mech res imds _ <<<"$line"
  version=$(xargs <<<"$version") mech=$(xargs <<<"$mech") res=$(xargs <<<"$res")
  imds=${imds//[!0-9]/}
  read -r n job node < <(signed "t-$t")
  TABLE+=$'\n'"| $t | $version | $mech | $res | $job of $n | ${imds:-?} |"
  if [ "$t" = "$HAZARD" ]; then
    check "$t (as it is): the suite sees its IMDS fall-back (${imds:-?} contacts)" test "${imds:-0}" -gt 0
    check "$t (as it is): ... and its requests signed with the node's role ($node of $n)" test "$node" -gt 0
    check_contains "$t (as it is): ... which the table names as its source" IMDS "$mech"
    continue
  fi
  check_eq "$t: lists, reads and writes" "list=ok read=ok write=ok" "$res"
  [ "$res" = "list=ok read=ok write=ok" ] || grep "^ERR $t: " <<<"$o" | head -20 | sed 's/^/#   /'
  check_contains "$t: the object it wrote is in S3" "3,4" "$(moto_out "$t")"
  check "$t: its $n requests were all signed with the job's key and session token ($job)" \
    test "$n" -gt 0 -a "$job" = "$n"
  check_eq "$t: it never contacted IMDS" 0 "${imds:-?}"
  check_eq "$t: its credentials came from ${MECH[$t]}" "${MECH[$t]}" "$mech"
done
check_contains "the plain container holds no /run/aws-role" "container-boto3 INSIDE: ls: cannot access '/run/aws-role'" "$o"
check_contains "... and no credential helper" "container-boto3 INSIDE: ls: cannot access '/usr/libexec/aws-role/aws-role-credentials'" "$o"

# The same container with the same variables after the job ended: nothing.
mapfile -t kept <"$OUT/endpoint-env"
after=$(cd / && runuser -u alice -- env -i PATH=/usr/bin:/bin HOME=/home/alice "${kept[@]}" \
  "$TEST_BIN/tools/in-job.sh" $S3_PORT container-boto3 container-polars 2>&1)
rm -f "$OUT/endpoint-env" "$OUT/endpoint-token"
for t in container-boto3 container-polars; do
  check_contains "$t after the job ended: gets nothing" "list=FAIL read=FAIL write=FAIL" "$(grep "^TOOL $t " <<<"$after")"
  check_contains "$t after the job ended: ... as the endpoint says (404, the job has ended)" "has ended" "$(grep "^ERR $t: " <<<"$after")"
  check_contains "$t after the job ended: ... and it did not turn to IMDS" "| imds=0 |" "$(grep "^TOOL $t " <<<"$after")"
done
# moto cannot list its state once S3 objects were replaced; the run's last check lists the
# main emulator's (tests/secret-scan.sh), so no object of this suite may be there.
check "the main emulator's state still lists (tests/secret-scan.sh reads it)" curl -sf -o /dev/null "$STS/moto-api/data.json"
printf '# %s\n' "${TABLE//$'\n'/$'\n'# }"
[ -n "${AWS_ROLE_TOOL_TABLE:-}" ] && printf '%s\n' "$TABLE" >"$AWS_ROLE_TOOL_TABLE"
finish
