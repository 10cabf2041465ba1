#!/usr/bin/env bash
# Rootless Podman in a real Slurm job: boto3 and polars in a container (--network=host, an
# image imported in the job from a Debian root made here, holding nothing of aws-role) get
# the job's role from the node's credentials endpoint, and lose it when the job ends.
#
# The job runs on a node of the multi-node cluster (tests/harness/multinode.sh, one node):
# a slurmd in a network namespace this suite's harness made, with its own credentials
# endpoint. Rootless Podman's --network=host is that namespace, so the container's
# 169.254.169.254 and [fd00:ec2::254] are a stand-in IMDS run there (a "node role") and
# nothing of this machine's network is reachable: the suite first proves the namespace has
# no route to either address. S3 is a moto of the suite's own behind the request log
# (tests/harness/sigv4-log-proxy.py) on the cluster's bridge.
#
# Proves, per container tool: list/read/write worked, the object is in S3, every request
# was signed with the job's session, the endpoint answered this job while it ran, IMDS was
# never contacted, and the container held neither /run/aws-role nor the helper; after the
# job ended, the same container with the same variables gets nothing (404, the job has
# ended) and still does not turn to IMDS. Brings its cluster up and down itself.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

H=$REPO/tests/harness
MNH=$H/multinode.sh
OUT=/home/alice/aws-role-podman
TEST_BIN=/usr/local/libexec/aws-role-test
IMAGE=localhost/aws-role-test/debian:12
TOOLS=(podman-boto3 podman-polars)
S3_PORT=5063      # the request log, on the bridge
S3_MOTO_PORT=5064 # the suite's moto, on loopback
S3_MOTO=http://127.0.0.1:$S3_MOTO_PORT
WORK=$(mktemp -d /tmp/aws-role-podman.XXXXXX)
PIDS=()

for c in podman newuidmap runc socat nsenter; do
  command -v "$c" >/dev/null || { not_ok "tool missing: $c (tests/harness/deps.sh)"; finish; exit; }
done

# One multi-node suite at a time on this machine: the cluster's names and ports are fixed.
exec 9>/run/aws-role-mn.lock
if ! flock -w 900 9; then
  not_ok "another multi-node suite holds /run/aws-role-mn.lock"
  finish
  exit 1
fi

# as_alice_on_node CMD...: CMD as alice in node n1's network and mount namespaces, with
# the Podman settings of the job (below) and nothing else of root's environment.
as_alice_on_node() {
  nsenter -t "$NODE_PID" -m -n -- runuser -u alice -- env -i PATH=/usr/bin:/bin HOME=/home/alice \
    XDG_RUNTIME_DIR="$OUT/xdg" CONTAINERS_CONF="$OUT/containers.conf" CONTAINERS_STORAGE_CONF="$OUT/storage.conf" "$@"
}
DOWN_DONE=0
teardown() {
  [ "$DOWN_DONE" = 1 ] && return 0
  DOWN_DONE=1
  kill "${PIDS[@]}" 2>/dev/null
  if [ -n "${NODE_PID:-}" ] && [ -d "$OUT" ]; then
    # alice's images and containers, and the pause process rootless Podman keeps to hold
    # its user namespace (it outlives the podman that started it).
    (cd / && as_alice_on_node podman system reset --force >/dev/null 2>&1)
    pause=$(cat "$OUT/xdg/libpod/tmp/pause.pid" 2>/dev/null)
    [ -n "$pause" ] && kill "$pause" 2>/dev/null
  fi
  bash "$MNH" down >/dev/null
  rm -rf "$OUT" "$WORK"
}
trap teardown EXIT
trap 'exit 143' INT TERM

bash "$MNH" down >/dev/null 2>&1 # whatever an aborted run left
if ! up=$(AWS_ROLE_MN_SLURM=22.05 bash "$MNH" up 1); then
  not_ok "the 1-node cluster comes up"
  finish
  exit 1
fi
echo "# $up"
eval "$(bash "$MNH" env)"
export SLURM_CONF=$MN_CONF
sl() { timeout "$SLURM_CLIENT_TIMEOUT" bash "$MNH" client "$@"; }
NODE_PID=$(bash "$MNH" pid n1)
NS=/run/netns/${MN_PREFIX}-n1
ENDPOINT_LOG=$MN_LOG/endpoint-n1.log

# --- the node's network: nothing but the test's ---------------------------------------------
# Before any address is added: the node reaches neither IMDS address, so what answers there
# below can only be the stand-in.
if ip -n "${MN_PREFIX}-n1" route get 169.254.169.254 >/dev/null 2>&1 ||
  ip -n "${MN_PREFIX}-n1" -6 route get fd00:ec2::254 >/dev/null 2>&1; then
  not_ok "node n1's network namespace has a route to an IMDS address; refusing to go on"
  finish
  exit 1
fi
ok "node n1's network namespace has no route to 169.254.169.254 or [fd00:ec2::254]"
rm -rf "$OUT"
install -d -m 0755 -o alice -g alice "$OUT"
install -d -m 0700 -o alice -g alice "$OUT/xdg"
: >"$OUT/imds.log"
ip -n "${MN_PREFIX}-n1" addr add 169.254.169.254/32 dev lo
binds=(--bind 169.254.169.254)
ip -n "${MN_PREFIX}-n1" -6 addr add fd00:ec2::254/128 dev lo nodad 2>/dev/null && binds+=(--bind fd00:ec2::254)
nsenter --net="$NS" /usr/bin/python3 "$H/imds-emulator.py" "${binds[@]}" --log "$OUT/imds.log" 2>>"$WORK/imds.err" &
PIDS+=($!)
imds_up() { nsenter --net="$NS" bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && grep -q connection "$OUT/imds.log"; }
check "the stand-in IMDS answers in node n1's namespace" wait_for 10 imds_up
: >"$OUT/imds.log"
endpoint_up() { nsenter --net="$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/941' 2>/dev/null; }
check "node n1's credentials endpoint listens on 127.0.0.1:941 there" wait_for 10 endpoint_up

# --- S3, the image, Podman's settings -------------------------------------------------------
"$VENV/bin/moto_server" -H 127.0.0.1 -p $S3_MOTO_PORT >"$WORK/s3-moto.log" 2>&1 &
PIDS+=($!)
wait_for 30 curl -sf -o /dev/null "$S3_MOTO/moto-api/" || not_ok "the suite's moto answers"
: >"$WORK/requests.log"
"$VENV/bin/python3" "$H/sigv4-log-proxy.py" serve --listen "$MN_STS_IP" --port $S3_PORT --upstream "$S3_MOTO" \
  --log "$WORK/requests.log" 2>>"$WORK/proxy.err" &
PIDS+=($!)
S3=http://$MN_STS_IP:$S3_PORT
wait_for 10 nsenter --net="$NS" bash -c "exec 3<>/dev/tcp/$MN_STS_IP/$S3_PORT" 2>/dev/null ||
  not_ok "the request log answers on the bridge"
"$VENV/bin/python3" "$H/s3-fixture.py" buckets "$S3_MOTO" "${TOOLS[@]}" || not_ok "make the buckets"

bash "$H/container-root.sh" ensure || not_ok "make the container root"
tar -C "$(bash "$H/container-root.sh" path)" --exclude=./proc --exclude=./sys --exclude=./dev -cf "$OUT/image.tar" . ||
  not_ok "pack the container root"
chmod 0644 "$OUT/image.tar"
# The job's user needs subordinate ids for rootless Podman (useradd gives them on Debian 12).
grep -q '^alice:' /etc/subuid || usermod --add-subuids 200000-265535 alice
grep -q '^alice:' /etc/subgid || usermod --add-subgids 200000-265535 alice
# This machine's cgroups are a v1+v2 hybrid (crun refuses those) and a job has no systemd
# user session: what a site with such nodes puts in containers.conf.
cat >"$OUT/containers.conf" <<'EOF'
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
# Overlay (the kernel's, rootless): Podman would otherwise pick vfs, a full copy per container.
printf '[storage]\ndriver = "overlay"\n' >"$OUT/storage.conf"
chmod 0644 "$OUT/containers.conf" "$OUT/storage.conf"
# Nothing of an earlier run in alice's Podman storage.
(cd / && as_alice_on_node podman system reset --force >/dev/null 2>&1)
install -d -m 0755 "$TEST_BIN/tools"
install -m 0755 "$REPO/tests/e2e/tools/in-podman.sh" "$REPO/tests/e2e/tools/results.sh" \
  "$REPO/tests/e2e/tools/"s3-*.py "$TEST_BIN/tools/"

# --- the job -----------------------------------------------------------------------------------
# It imports the image as its user, prints its access key and the SHA-256 of its session
# token (never the token), runs the containers, and keeps its endpoint variables (the token
# too, in its user's own file) for the run after it ended.
as_alice() { bash "$MNH" client runuser -l alice -c "SLURM_CONF=$MN_CONF $1"; }
J=$(as_alice "sbatch --parsable -w n1 --aws-role=demo --time=10 -o $OUT/%j.out" <<JOB 2>"$WORK/sbatch.err" | tail -n1
#!/bin/bash
export XDG_RUNTIME_DIR=$OUT/xdg CONTAINERS_CONF=$OUT/containers.conf CONTAINERS_STORAGE_CONF=$OUT/storage.conf
(umask 077; env | grep -E '^AWS_(CONTAINER|REGION|DEFAULT_REGION)' | sed "s|^\(AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=\).*|\1$OUT/endpoint-token|" >$OUT/endpoint-env
  cp \$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE $OUT/endpoint-token)
$MN_PYTHON -c 'import json, os, hashlib; c = json.load(open(os.path.join(os.path.dirname(os.environ["AWS_CONFIG_FILE"]), "credentials.json"))); print("JOBKEY", c["AccessKeyId"], hashlib.sha256(c["SessionToken"].encode()).hexdigest())'
podman import -q $OUT/image.tar $IMAGE >/dev/null && echo IMPORTED
bash $TEST_BIN/tools/in-podman.sh $S3 $OUT/imds.log $ENDPOINT_LOG ${TOOLS[*]}
JOB
)
check "sbatch -w n1 --aws-role=demo accepted (job $J)" test -n "$J"
[ -n "$J" ] || sed 's/^/#   /' "$WORK/sbatch.err"
st=$(slurm_job_wait "$J" 300)
check_eq "the Podman job completed" COMPLETED "$st"
o=$(cat "$OUT/$J.out" 2>/dev/null)
check_contains "the job imported the image as its user" IMPORTED "$o"
read -r _ AKID TOKEN_SHA < <(grep '^JOBKEY ' <<<"$o")
check "the job read its own access key" test -n "${AKID:-}"

SIGNED=0 # requests the job signed, over all tools
TABLE="| tool | version | credentials from | list, read, write | requests signed by the job | IMDS contacts |"$'\n'"|---|---|---|---|---|---|"
for t in "${TOOLS[@]}"; do
  line=$(grep "^TOOL $t | " <<<"$o")
  IFS='|' read -r _ version mech res imds _ <<<"$line"
  version=$(xargs <<<"$version") mech=$(xargs <<<"$mech") res=$(xargs <<<"$res")
  imds=${imds//[!0-9]/}
  read -r n job _ < <("$VENV/bin/python3" "$H/sigv4-log-proxy.py" count --log "$WORK/requests.log" \
    --prefix "/t-$t/" --akid "${AKID:-none}" --token "${TOKEN_SHA:-none}")
  TABLE+=$'\n'"| $t | $version | $mech | $res | $job of $n | ${imds:-?} |"
  SIGNED=$((SIGNED + ${job:-0}))
  check_eq "$t: lists, reads and writes" "list=ok read=ok write=ok" "$res"
  [ "$res" = "list=ok read=ok write=ok" ] || grep "^ERR $t: " <<<"$o" | head -20 | sed 's/^/#   /'
  check_contains "$t: the object it wrote is in S3" "3,4" "$("$VENV/bin/python3" "$H/s3-fixture.py" get "$S3_MOTO" "t-$t" out.csv)"
  check "$t: its $n requests were all signed with the job's key and session token ($job)" \
    test "$n" -gt 0 -a "$job" = "$n"
  check_eq "$t: it never contacted IMDS" 0 "${imds:-?}"
  check_eq "$t: its credentials came from the node's endpoint" endpoint "$mech"
done
check_contains "the container holds no /run/aws-role" "podman-boto3 INSIDE: ls: cannot access '/run/aws-role'" "$o"
check_contains "... and no credential helper" "podman-boto3 INSIDE: ls: cannot access '/usr/libexec/aws-role/aws-role-credentials'" "$o"
token=$(cat "$OUT/endpoint-token" 2>/dev/null)
check "the endpoint's log holds no token" test -n "$token" -a "$(grep -cF -- "${token:-none}" "$ENDPOINT_LOG")" = 0
empty() { [ -z "$(nsenter -t "$NODE_PID" -m -- ls -A "$MN_NODE_BASE")" ]; }
check "after the job, node n1's /run/aws-role is empty" wait_for 10 empty

# The same containers with the same variables after the job ended: nothing.
mapfile -t kept <"$OUT/endpoint-env"
after=$(cd / && as_alice_on_node "${kept[@]}" bash "$TEST_BIN/tools/in-podman.sh" "$S3" "$OUT/imds.log" "$ENDPOINT_LOG" "${TOOLS[@]}" 2>&1)
for t in "${TOOLS[@]}"; do
  check_contains "$t after the job ended: gets nothing" "list=FAIL read=FAIL write=FAIL" "$(grep "^TOOL $t " <<<"$after")"
  check_contains "$t after the job ended: ... as the endpoint says (404, the job has ended)" "has ended" "$(grep "^ERR $t: " <<<"$after")"
  check_contains "$t after the job ended: ... and it did not turn to IMDS" "| imds=0 |" "$(grep "^TOOL $t " <<<"$after")"
done
check_eq "the run after the job sent no request: the log holds only the job's $SIGNED" \
  "$SIGNED" "$(grep -c . "$WORK/requests.log")"
printf '# %s\n' "${TABLE//$'\n'/$'\n'# }"
[ -n "${AWS_ROLE_TOOL_TABLE:-}" ] && printf '%s\n' "$TABLE" >>"$AWS_ROLE_TOOL_TABLE"
finish
