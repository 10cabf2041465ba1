#!/usr/bin/env bash
# Inside a Slurm job on a node of the multi-node cluster (tests/e2e/podman.sh), as the job's
# user: boto3 and polars in a rootless Podman container that shares the node's network
# (--network=host), built from a Debian root that holds nothing of aws-role. Into the
# container pass only what docs/tools.md tells researchers to pass: the endpoint's URL, its
# token and the region, and for tools on object_store the token file, bound read-only. The
# node's network namespace is the test's: its 169.254.169.254 and [fd00:ec2::254] are a
# stand-in IMDS (IMDS_LOG notes each connection), and it has no route anywhere else.
# One line per tool on stdout, as tools/in-ns.sh prints them:
#
#   TOOL <name> | <version> | <mechanism> | list=ok read=ok write=ok | imds=0 | <first error>
#
# where the mechanism is "endpoint" when the node's endpoint answered this job while the
# tool ran (ENDPOINT_LOG, the daemon's log), "IMDS" when the stand-in was contacted.
#
#   in-podman.sh S3_URL IMDS_LOG ENDPOINT_LOG TOOL...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=results.sh
. "$HERE/results.sh"
S3=$1 IMDS_LOG=$2 ENDPOINT_LOG=$3
shift 3
IMAGE=${AWS_ROLE_TEST_IMAGE:-localhost/aws-role-test/debian:12}
BOTO3_PY=$(cat "$HERE/s3-boto3.py")
POLARS_PY=$(cat "$HERE/s3-polars.py")
W=$(mktemp -d "${TMPDIR:-/tmp}/aws-role-podman.XXXXXX")
trap 'rm -rf "$W"' EXIT

# What a researcher adds to `podman run` (docs/tools.md): the endpoint's variables and the
# region; for tools on object_store, the token file too, bound read-only.
prun() {
  podman run --rm --network=host -e AWS_CONTAINER_CREDENTIALS_FULL_URI -e AWS_CONTAINER_AUTHORIZATION_TOKEN \
    -e AWS_REGION -e AWS_DEFAULT_REGION "$@"
}
tool_podman-boto3() {
  prun "$IMAGE" sh -c 'ls -d /run/aws-role /usr/libexec/aws-role/aws-role-credentials 2>&1 | sed "s/^/INSIDE: /"; exec "$@"' _ \
    python3 -c "$BOTO3_PY" "$1" "$S3" "(Debian 12, rootless Podman)"
}
tool_podman-polars() {
  prun -v "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:/run/secrets/aws-role-token:ro" \
    -e AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/secrets/aws-role-token \
    "$IMAGE" python3 -c "$POLARS_PY" "$1" "$S3" auto "(rootless Podman)"
}

# Run under timeout(1), each in a bash of its own.
export S3 IMAGE BOTO3_PY POLARS_PY
export -f prun tool_podman-boto3 tool_podman-polars
answers() { grep -c "job \"${SLURM_JOB_ID:-?}\": credentials to uid $(id -u) " "$ENDPOINT_LOG" 2>/dev/null; }
for t in "$@"; do
  declare -F "tool_$t" >/dev/null || { echo "TOOL $t | ? | ? | no such tool | imds=? | in-podman.sh knows no $t"; continue; }
  before_ep=$(answers)
  before_imds=$(grep -c . "$IMDS_LOG")
  out=$(cd "$W" && timeout 120 bash -c '"tool_$1" "t-$1"' _ "$t" 2>"$W/$t.err")
  rc=$?
  ep=$(($(answers) - before_ep))
  imds=$(($(grep -c . "$IMDS_LOG") - before_imds))
  mech=()
  [ "$ep" -gt 0 ] && mech+=("endpoint")
  [ "$imds" -gt 0 ] && mech+=("IMDS")
  [ ${#mech[@]} = 0 ] && mech=("none")
  report_tool "$t" "$out" "$rc" "${mech[*]}" "$imds" "$W/$t.err"
done
