#!/usr/bin/env bash
# The test site's aws-role configuration, shared by the demo and the end-to-end suites:
#
#   site.sh write [ENDPOINT]   node credentials (root 0600) and /etc/aws-role/role-map.toml
#                              with STS at ENDPOINT (default: the emulator's URL)
#
# With AWS_ROLE_SITE_FAST_REFRESH=1, role demo gets 60-s sessions (the map's min_session,
# allowed only for a loopback emulator) refreshed 30 s before expiry, so that a job sees
# several refreshes in two minutes. With AWS_ROLE_SITE_SCONTROL=1, a Prolog= without the
# plugin asks scontrol for the job's end time ([slurm] end_time_from_scontrol). With
# AWS_ROLE_SITE_PROXY=URL, STS is called through that proxy ([sts] proxy).
#
# Roles: demo (alice), analytics (group analysts: bob), shared (no allow list: the
# default role of partition gpu).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

MAP=${AWS_ROLE_MAP:-/etc/aws-role/role-map.toml}
BIN_DIR=${AWS_ROLE_BIN_DIR:-/usr/libexec/aws-role}

cmd_write() {
  local endpoint=${1:-$(bash "$HERE/sts.sh" url)}
  local sts_extra='' refresh='' demo_extra='' slurm=''
  if [ "${AWS_ROLE_SITE_SCONTROL:-}" = 1 ]; then
    slurm=$'[slurm]\nend_time_from_scontrol = true\n'
  fi
  if [ -n "${AWS_ROLE_SITE_PROXY:-}" ]; then
    sts_extra="proxy = \"$AWS_ROLE_SITE_PROXY\""
  fi
  if [ "${AWS_ROLE_SITE_FAST_REFRESH:-}" = 1 ]; then
    sts_extra+=$'\nmin_session = "20s"'
    refresh=$'[refresh]\nlead = "30s"\njitter = "2s"\nscan_interval = "2s"\n'
    demo_extra='max_session = "60s"'
  fi
  require_root
  install -d -m 0755 "$(dirname "$MAP")"
  # The node's own keys: root-only, never in any environment.
  if [ ! -s /etc/aws-role/node-credentials ]; then
    install -m 0600 /dev/null /etc/aws-role/node-credentials
    printf '[default]\naws_access_key_id = AKIDNODE000000000000\naws_secret_access_key = nodesecret-test\n' \
      >/etc/aws-role/node-credentials
  fi
  # Written to a temporary name and renamed: a prolog never reads half a map.
  cat >"$MAP.new" <<TOML
# Test site map, written by tests/harness/site.sh.
[sts]
region = "us-east-1"
endpoint = "$endpoint"
credentials_file = "/etc/aws-role/node-credentials"
# Nothing listens here: --check-node probes this, never the real 169.254.169.254.
imds_endpoint = "http://127.0.0.1:9"
timeout = "5s"
$sts_extra

[node]
credential_helper = "$BIN_DIR/aws-role-credentials"

$refresh
$slurm
[roles.demo]
arn = "arn:aws:iam::123456789012:role/demo"
allow_users = ["alice"]
$demo_extra

[roles.analytics]
arn = "arn:aws:iam::123456789012:role/analytics"
allow_groups = ["analysts"]

[roles.shared]
arn = "arn:aws:iam::123456789012:role/shared"

[partitions.gpu]
default_role = "shared"
TOML
  chmod 0644 "$MAP.new"
  mv -f "$MAP.new" "$MAP"
}

case ${1:-} in
  write) shift; cmd_write "$@" ;;
  *) echo "usage: $0 write [ENDPOINT]" >&2; exit 2 ;;
esac
