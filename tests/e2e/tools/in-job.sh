#!/usr/bin/env bash
# Inside a Slurm job, as its user: runs tools/in-ns.sh in a network namespace of the job's
# own (unshare --user --net), where 169.254.169.254 and [fd00:ec2::254] are a stand-in IMDS
# that logs every connection, and where only two ports of the node are reachable: the
# credentials endpoint (the port of AWS_CONTAINER_CREDENTIALS_FULL_URI) and the S3
# emulator's request log (S3_PORT), each bridged through a Unix socket by socat running
# as the job's user outside. Whatever a tool does, it cannot reach this machine's own
# network, IMDS included.
#
#   in-job.sh S3_PORT TOOL...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S3_PORT=$1
shift
EP_PORT=${AWS_CONTAINER_CREDENTIALS_FULL_URI#http://127.0.0.1:}
EP_PORT=${EP_PORT%%/*}
W=$(mktemp -d "${TMPDIR:-/tmp}/aws-role-tools.XXXXXX")
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$W"' EXIT
for p in "$EP_PORT" "$S3_PORT"; do
  socat "UNIX-LISTEN:$W/$p.sock,fork,mode=0600" "TCP:127.0.0.1:$p" 2>>"$W/socat.err" &
  PIDS+=($!)
done
for _ in $(seq 50); do [ -S "$W/$EP_PORT.sock" ] && [ -S "$W/$S3_PORT.sock" ] && break; sleep 0.1; done
unshare --user --map-root-user --net --mount -- bash "$HERE/in-ns.sh" "$W" "$EP_PORT" "$S3_PORT" "$@"
