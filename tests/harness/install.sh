#!/usr/bin/env bash
# Installs aws-role on this test node the way an administrator does: from its own .deb.
#
#   1. bash packaging/build.sh   builds the plugin and binaries and the .deb (and .rpm)
#   2. dpkg -i <the .deb>        binaries in /usr/libexec/aws-role/, aws_role.so in Debian's
#                                PluginDir, the conffiles, the refresher's unit
#   3. the plugstack fragment    the packaged one says `optional aws_role.so`; the test
#                                cluster needs `required` (the e2e suites check that a refused
#                                --aws-role is never queued), the edit the admin guide tells
#                                administrators to make once their map has roles
#   4. restarts slurmd, which decides whether to run the SPANK job_prolog/job_epilog from
#      the plugin stack it loaded at start.
#
# The role map (/etc/aws-role/role-map.toml, a conffile) is then rewritten by the suites
# (tests/harness/site.sh). A reinstall keeps both edited conffiles (--force-confold).
# dpkg replaces every file by renaming a new copy over it, so a running slurmd or
# slurmstepd that has the plugin mapped is never disturbed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

PLUGSTACK_CONF=/etc/slurm/plugstack.conf.d/aws-role.conf
MAP=${AWS_ROLE_MAP:-/etc/aws-role/role-map.toml}

require_root
t0=$(now_ms)
cd "$REPO"

log "building the packages (packaging/build.sh)"
outputs=$(bash packaging/build.sh)
deb=$(grep '\.deb$' <<<"$outputs" | head -n1)
[ -f "$deb" ] || die "packaging/build.sh reported no .deb: $outputs"

log "dpkg -i $deb"
DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$deb" >&2
# What aws-role-tmpfs.service does at boot (no systemd as PID 1 here): /run/aws-role on a
# size-limited tmpfs of its own.
/usr/libexec/aws-role/aws-role-tmpfs mount >&2

printf 'required aws_role.so config=%s\n' "$MAP" >"$PLUGSTACK_CONF.new"
chmod 0644 "$PLUGSTACK_CONF.new"
mv -f "$PLUGSTACK_CONF.new" "$PLUGSTACK_CONF"

bash "$HERE/cluster.sh" restart-slurmd >&2

echo "installed in $(elapsed_s "$t0"): $(dpkg-query -W -f='${Package} ${Version}' aws-role); $PLUGSTACK_CONF:"
cat "$PLUGSTACK_CONF"
