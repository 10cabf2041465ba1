#!/usr/bin/env bash
# The job's network namespace (made by in-job.sh): a stand-in IMDS, the two bridges, then
# each named tool lists, reads and writes objects of its own bucket t-<tool> through the S3
# emulator's request log, with exactly the environment the job was given. One line per
# tool on stdout:
#
#   TOOL <name> | <version> | <mechanism> | list=ok read=ok write=ok | imds=0 | <first error>
#
# where the mechanism is what the tool's credentials came from: the job's credential_process
# (the helper ran), the endpoint (a connection to it), IMDS (the stand-in was contacted), or
# none of these (a static-key file).
#
#   in-ns.sh DIR EP_PORT S3_PORT TOOL...
set -uo pipefail
W=$1 EP_PORT=$2 S3_PORT=$3
shift 3
S3=http://127.0.0.1:$S3_PORT
TOOLS=${AWS_ROLE_TEST_TOOLS:-/opt/aws-role-test/tools}
VENV=${AWS_ROLE_TEST_VENV:-/opt/aws-role-test/venv}
NODE_MODULES=${AWS_ROLE_TEST_NODE:-/opt/aws-role-test/node}/node_modules
TEST_BIN=${AWS_ROLE_TEST_BIN:-/usr/local/libexec/aws-role-test}
CONTAINER_ROOT=${AWS_ROLE_CONTAINER_ROOT:-/var/lib/aws-role-test/container}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=results.sh
. "$HERE/results.sh"
export AWS_ROLE_TEST_HELPER_LOG=$W/helper.log
: >"$AWS_ROLE_TEST_HELPER_LOG"

ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip -6 addr add fd00:ec2::254/128 dev lo nodad 2>/dev/null && V6=1 || V6=0
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null' EXIT
binds=(--bind 169.254.169.254)
[ "$V6" = 1 ] && binds+=(--bind fd00:ec2::254)
/usr/bin/python3 "$HERE/imds-emulator.py" "${binds[@]}" --log "$W/imds.log" 2>>"$W/imds.err" &
PIDS+=($!)
: >"$W/imds.log"
socat -d -d "TCP-LISTEN:$EP_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$W/$EP_PORT.sock" 2>>"$W/ep.log" &
PIDS+=($!)
socat "TCP-LISTEN:$S3_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$W/$S3_PORT.sock" 2>>"$W/s3.err" &
PIDS+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$EP_PORT") 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/"$S3_PORT") 2>/dev/null &&
    (exec 3<>/dev/tcp/169.254.169.254/80) 2>/dev/null && break
  sleep 0.1
done
# The readiness probe above is not a tool's: wait until the emulator noted it, then forget it.
for _ in $(seq 50); do grep -q connection "$W/imds.log" && break; sleep 0.1; done
: >"$W/imds.log"

py() { "$TOOLS/bin/python3" -c "$@"; }
CSV_OUT='x,y
3,4'

# Each tool_<name> BUCKET prints its version on the first line, then does list, read and
# write, printing LIST:/READ:/WROTE markers on success.
tool_cli-v1() {
  "$VENV/bin/aws" --version 2>&1 | cut -d' ' -f1
  "$VENV/bin/aws" --endpoint-url "$S3" s3 ls "s3://$1/" | sed 's/^/LIST: /'
  "$VENV/bin/aws" --endpoint-url "$S3" s3 cp "s3://$1/in.csv" - | sed 's/^/READ: /'
  printf '%s\n' "$CSV_OUT" | "$VENV/bin/aws" --endpoint-url "$S3" s3 cp - "s3://$1/out.csv" && echo WROTE
}
tool_cli-v2() {
  /usr/bin/aws --version 2>&1 | cut -d' ' -f1
  /usr/bin/aws --endpoint-url "$S3" s3 ls "s3://$1/" | sed 's/^/LIST: /'
  /usr/bin/aws --endpoint-url "$S3" s3 cp "s3://$1/in.csv" - | sed 's/^/READ: /'
  printf '%s\n' "$CSV_OUT" | /usr/bin/aws --endpoint-url "$S3" s3 cp - "s3://$1/out.csv" && echo WROTE
}
# The same boto3 and polars programs run on the node and in the containers.
BOTO3_PY=$(cat "$HERE/s3-boto3.py")
POLARS_PY=$(cat "$HERE/s3-polars.py")
tool_boto3() { py "$BOTO3_PY" "$1" "$S3"; }
tool_s3fs-pandas() {
  py '
import sys, s3fs, pandas as pd
b, s3url = sys.argv[1:]
print("s3fs/%s pandas/%s" % (s3fs.__version__, pd.__version__))
opts = {"client_kwargs": {"endpoint_url": s3url}}
for k in s3fs.S3FileSystem(**opts).ls(b): print("LIST:", k)
df = pd.read_csv("s3://%s/in.csv" % b, storage_options=opts); print("READ:", df.to_csv(index=False))
pd.DataFrame({"x": [3], "y": [4]}).to_csv("s3://%s/out.csv" % b, index=False, storage_options=opts); print("WROTE")
' "$1" "$S3"
}
tool_pyarrow() {
  py '
import sys, pyarrow, pyarrow.fs as fs, pyarrow.csv as csv
b, port = sys.argv[1:]
print("pyarrow/" + pyarrow.__version__)
s3 = fs.S3FileSystem(endpoint_override="127.0.0.1:" + port, scheme="http", region="us-east-1")
for i in s3.get_file_info(fs.FileSelector(b)): print("LIST:", i.path)
with s3.open_input_stream(b + "/in.csv") as f: print("READ:", f.read().decode())
with s3.open_output_stream(b + "/out.csv") as f: f.write(b"x,y\n3,4\n")
print("WROTE")
' "$1" "$S3_PORT"
}
# polars: with its default credential provider (boto3's chain, boto3 being installed), and
# with credential_provider=None (its own object_store chain, as without boto3).
polars_tool() { py "$POLARS_PY" "$1" "$S3" "$2"; }
tool_polars() { polars_tool "$1" auto; }
tool_polars-no-boto3() { polars_tool "$1" none; }
tool_obstore() {
  py '
import sys, obstore
from obstore.store import S3Store
b, s3url = sys.argv[1:]
print("obstore/" + obstore.__version__)
st = S3Store(b, endpoint=s3url, client_options={"allow_http": True})
for batch in obstore.list(st):
    for o in batch: print("LIST:", o["path"])
print("READ:", bytes(obstore.get(st, "in.csv").bytes()).decode())
obstore.put(st, "out.csv", b"x,y\n3,4\n"); print("WROTE")
' "$1" "$S3"
}
tool_duckdb() {
  py '
import sys, os, duckdb, duckdb_ext
b, port = sys.argv[1:]
print("duckdb/" + duckdb.__version__)
ext = os.path.join(list(duckdb_ext.__path__)[0], "extensions")
con = duckdb.connect(config={"extension_directory": ext, "autoinstall_known_extensions": False})
con.execute("LOAD httpfs; LOAD aws")
con.execute("CREATE SECRET job (TYPE s3, PROVIDER credential_chain, REFRESH auto, ENDPOINT %r, URL_STYLE %r, USE_SSL false)" % ("127.0.0.1:" + port, "path"))
for (f,) in con.execute("SELECT file FROM glob(?)", ["s3://%s/*" % b]).fetchall(): print("LIST:", f)
print("READ:", con.execute("SELECT * FROM read_csv(?)", ["s3://%s/in.csv" % b]).fetchall())
con.execute("COPY (SELECT 3 AS x, 4 AS y) TO %r (FORMAT csv)" % ("s3://%s/out.csv" % b)); print("WROTE")
' "$1" "$S3_PORT"
}
tool_gdal() {
  AWS_S3_ENDPOINT=127.0.0.1:$S3_PORT AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE /usr/bin/python3 -c '
import sys
from osgeo import gdal
b = sys.argv[1]
gdal.UseExceptions()
print("gdal/" + gdal.__version__)
for f in gdal.ReadDir("/vsis3/%s/" % b) or []: print("LIST:", f)
f = gdal.VSIFOpenL("/vsis3/%s/in.csv" % b, "rb"); print("READ:", gdal.VSIFReadL(1, 1000, f).decode()); gdal.VSIFCloseL(f)
f = gdal.VSIFOpenL("/vsis3/%s/out.csv" % b, "wb"); gdal.VSIFWriteL(b"x,y\n3,4\n", 1, 8, f); gdal.VSIFCloseL(f); print("WROTE")
' "$1"
}
tool_rclone() {
  export RCLONE_CONFIG_JOB_TYPE=s3 RCLONE_CONFIG_JOB_PROVIDER=Other RCLONE_CONFIG_JOB_ENV_AUTH=true RCLONE_CONFIG_JOB_ENDPOINT=$S3 \
    RCLONE_CONFIG_JOB_FORCE_PATH_STYLE=true
  rclone --version | head -1 | tr ' ' /
  rclone --config /dev/null lsf "job:$1" | sed 's/^/LIST: /'
  rclone --config /dev/null cat "job:$1/in.csv" | sed 's/^/READ: /'
  printf '%s\n' "$CSV_OUT" | rclone --config /dev/null rcat "job:$1/out.csv" && echo WROTE
}
tool_s5cmd() {
  local s5=$TOOLS/bin/s5cmd
  echo "s5cmd/$("$s5" version 2>&1 | head -1)"
  "$s5" --endpoint-url "$S3" ls "s3://$1/*" | sed 's/^/LIST: /'
  "$s5" --endpoint-url "$S3" cat "s3://$1/in.csv" | sed 's/^/READ: /'
  printf '%s\n' "$CSV_OUT" >"$W/s5.csv"
  "$s5" --endpoint-url "$S3" cp "$W/s5.csv" "s3://$1/out.csv" >/dev/null && echo WROTE
}
s3cmd_tool() {
  local s=(s3cmd --host="127.0.0.1:$S3_PORT" --host-bucket="127.0.0.1:$S3_PORT" --no-ssl)
  s3cmd --version | sed 's| version |/|'
  "${s[@]}" ls "s3://$1/" | sed 's/^/LIST: /'
  "${s[@]}" get "s3://$1/in.csv" - 2>/dev/null | sed 's/^/READ: /'
  printf '%s\n' "$CSV_OUT" >"$W/s3cmd.csv"
  "${s[@]}" put "$W/s3cmd.csv" "s3://$1/out.csv" >/dev/null && echo WROTE
}
# As it is, s3cmd finds no keys (it reads neither the config file's credential_process nor
# the endpoint) and asks IMDS for a role; where IMDS answers, it signs with the node's role.
# Pointed at the job's static-key file (AWS_CREDENTIAL_FILE) it still asks IMDS at every
# start, and takes its role over the file's keys.
tool_s3cmd() { s3cmd_tool "$1"; }
# With the job's keys in its environment it never asks IMDS: the one line it needs.
tool_s3cmd-env() {
  (
    eval "$(/usr/bin/aws configure export-credentials --format env)"
    s3cmd_tool "$1"
  )
}
tool_node-sdk-v3() {
  NODE_PATH=$NODE_MODULES node -e '
const { S3Client, ListObjectsV2Command, GetObjectCommand, PutObjectCommand } = require("@aws-sdk/client-s3");
const [b, url] = process.argv.slice(1);
(async () => {
  console.log("@aws-sdk/client-s3/" + require("@aws-sdk/client-s3/package.json").version);
  const s3 = new S3Client({ endpoint: url, forcePathStyle: true });
  for (const o of (await s3.send(new ListObjectsV2Command({ Bucket: b }))).Contents || []) console.log("LIST:", o.Key);
  console.log("READ:", await (await s3.send(new GetObjectCommand({ Bucket: b, Key: "in.csv" }))).Body.transformToString());
  await s3.send(new PutObjectCommand({ Bucket: b, Key: "out.csv", Body: "x,y\n3,4\n" })); console.log("WROTE");
})().catch((e) => { console.error(String(e)); process.exit(1); });
' "$1" "$S3"
}
# A plain container: the Debian root of tests/harness/container-root.sh, chrooted into in
# a mount and PID namespace of its own (its own /proc, /run and /tmp, the node's /dev),
# sharing the job's network and given the job's environment, as Apptainer does. Neither
# /run/aws-role nor the helper is inside. With --token-file the job's token file alone is
# bound in, at /run/secrets/aws-role-token (what tools on object_store need); otherwise only
# the variables pass in.
# in_container [--token-file] CMD...
in_container() {
  local bind=0
  [ "$1" = --token-file ] && { bind=1; shift; }
  unshare --mount --pid --fork -- bash -c '
    root=$1 bind=$2; shift 2
    mount -t proc proc "$root/proc" && mount -t tmpfs -o mode=0755 run "$root/run" &&
      mount -t tmpfs -o mode=1777 tmp "$root/tmp" && mount --rbind /dev "$root/dev" || exit 1
    if [ "$bind" = 1 ]; then
      mkdir -p "$root/run/secrets" && touch "$root/run/secrets/aws-role-token" &&
        mount --bind "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" "$root/run/secrets/aws-role-token" || exit 1
      export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/secrets/aws-role-token
    else
      unset AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
    fi
    exec /usr/sbin/chroot "$root" /usr/bin/env HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin "$@"' _ "$CONTAINER_ROOT" "$bind" "$@"
}
# In the container: what it holds of aws-role, then the test.
tool_container-boto3() {
  in_container sh -c 'ls -d /run/aws-role /usr/libexec/aws-role/aws-role-credentials 2>&1 | sed "s/^/INSIDE: /"; exec "$@"' _ \
    python3 -c "$BOTO3_PY" "$1" "$S3" "(Debian 12, in a chroot container)"
}
tool_container-polars() {
  in_container --token-file python3 -c "$POLARS_PY" "$1" "$S3" auto "(in a chroot container)"
}
tool_aws-sdk-rust() {
  "$TEST_BIN/aws-role-sdk-s3" "$S3" "$1"
}

# Run under timeout(1), each in a bash of its own.
export S3 S3_PORT TOOLS VENV NODE_MODULES TEST_BIN CSV_OUT W CONTAINER_ROOT BOTO3_PY POLARS_PY
# shellcheck disable=SC2046 # the names are single words
export -f py polars_tool s3cmd_tool in_container $(compgen -A function tool_)
for t in "$@"; do
  before_ep=$(grep -c 'accepting connection' "$W/ep.log" 2>/dev/null)
  before_h=$(wc -l <"$AWS_ROLE_TEST_HELPER_LOG")
  out=$(cd "$W" && timeout 120 bash -c '"tool_$1" "t-$1"' _ "$t" 2>"$W/$t.err")
  rc=$?
  ep=$(($(grep -c 'accepting connection' "$W/ep.log" 2>/dev/null) - before_ep))
  helper=$(($(wc -l <"$AWS_ROLE_TEST_HELPER_LOG") - before_h))
  mech=()
  [ "$helper" -gt 0 ] && mech+=("credential_process")
  [ "$ep" -gt 0 ] && mech+=("endpoint")
  imds=$(grep -c . "$W/imds.log")
  [ "$imds" -gt 0 ] && mech+=("IMDS")
  [ ${#mech[@]} = 0 ] && mech=("static-key file")
  report_tool "$t" "$out" "$rc" "${mech[*]}" "$imds" "$W/$t.err" "$W/imds.log"
  : >"$W/imds.log"
done
