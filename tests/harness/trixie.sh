#!/usr/bin/env bash
# A Debian 13 (trixie) root with Slurm 24.11, for running the multi-node cluster on a newer
# Slurm than the host's 22.05 (AWS_ROLE_MN_SLURM=24.11 tests/harness/multinode.sh up).
#
#   trixie.sh ensure   create it if missing (debootstrap + apt, ~2 min, ~800 MB), then
#                      make its users match the host's (alice, bob and their groups, by id)
#   trixie.sh path     print its directory
#
# Nothing is mounted here: whoever runs something in the root mounts /proc, /dev, ... in a
# mount namespace of its own (multinode.sh chroot-exec), so no mount is left on the host.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"

ROOT=${AWS_ROLE_TRIXIE_ROOT:-/var/lib/aws-role-test/trixie}
MIRROR=${AWS_ROLE_TRIXIE_MIRROR:-http://deb.debian.org/debian}
# Slurm and munge; the headers to build the plugin against; the AWS clients the test jobs
# run (the host's venv is built on the host's Python and does not run in here).
PACKAGES=(slurm-wlm munge libslurm-dev python3-boto3 awscli)
READY=$ROOT/.aws-role-ready

# in_root DIR CMD...: CMD chrooted into DIR, with /proc there, in a mount namespace of its own.
in_root() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  unshare --mount --propagation private -- bash -c 'mount -t proc proc "$1/proc" && exec chroot "$@"' _ "$@"
}

create() {
  local t0 new=$ROOT.new
  t0=$(now_ms)
  debootstrap_into trixie "$new" "$MIRROR" /tmp/aws-role-debootstrap.log
  # No daemon may start from a package's postinst.
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
  chmod 0755 "$new/usr/sbin/policy-rc.d"
  # minbase has no /etc/hosts (munged warns on every start without one).
  cp /etc/resolv.conf /etc/hosts "$new/etc/"
  log "apt-get install ${PACKAGES[*]}"
  in_root "$new" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]}" \
    >/tmp/aws-role-trixie-apt.log 2>&1 || { tail -n 20 /tmp/aws-role-trixie-apt.log >&2; die "apt-get in the trixie root failed"; }
  in_root "$new" apt-get clean
  printf '%s\n' "${PACKAGES[@]}" >"$new/.aws-role-ready"
  rm -rf "$ROOT"
  mv "$new" "$ROOT"
  log "trixie root ready in $(elapsed_s "$t0"): $(chroot "$ROOT" slurmd -V)"
}

# The same users and groups, with the same ids, as on the host: jobs write to the host's
# /home (bound into the root), and file owners must mean the same on both sides.
sync_users() {
  local g u gid uid ugid groups
  for g in ml analysts alice bob; do
    gid=$(getent group "$g" | cut -d: -f3) || die "host group $g missing (run multinode.sh up)"
    chroot "$ROOT" getent group "$g" >/dev/null || chroot "$ROOT" groupadd -g "$gid" "$g"
  done
  for u in alice bob; do
    uid=$(id -u "$u") ugid=$(id -g "$u")
    groups=$(id -nG "$u" | tr ' ' '\n' | grep -vx "$u" | paste -sd, -)
    chroot "$ROOT" id -u "$u" >/dev/null 2>&1 ||
      chroot "$ROOT" useradd -M -d "/home/$u" -s /bin/bash -u "$uid" -g "$ugid" ${groups:+-G "$groups"} "$u"
  done
}

cmd_ensure() {
  require_root
  if [ ! -e "$READY" ] || [ "$(cat "$READY")" != "$(printf '%s\n' "${PACKAGES[@]}")" ]; then
    create
  fi
  sync_users
  echo "$ROOT"
}

case ${1:-} in
  ensure) cmd_ensure ;;
  path) echo "$ROOT" ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac
