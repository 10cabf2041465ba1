#!/usr/bin/env bash
# A small Debian 12 root for the container tests (tests/e2e/tools.sh chroots into it,
# tests/e2e/podman.sh imports it as an image): python3 with Debian's boto3, and polars
# (PyPI, pinned) — and nothing of aws-role: no /run/aws-role, no
# helper, no AWS config. Made once, kept under /var/lib/aws-role-test like the trixie root.
#
#   container-root.sh ensure   create it if missing (debootstrap + apt + pip, ~2 min)
#   container-root.sh path     print its directory
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
ROOT=${AWS_ROLE_CONTAINER_ROOT:-/var/lib/aws-role-test/container}
MIRROR=${AWS_ROLE_CONTAINER_MIRROR:-http://deb.debian.org/debian}
TOOLS=${AWS_ROLE_TEST_TOOLS:-/opt/aws-role-test/tools}
PACKAGES=(python3 python3-boto3 ca-certificates)
PY_PACKAGES=(polars==2.1.0 polars-runtime-32==2.1.0)
READY=$ROOT/.aws-role-ready

create() {
  local t0 new=$ROOT.new
  t0=$(now_ms)
  debootstrap_into bookworm "$new" "$MIRROR" /tmp/aws-role-container-root.log \
    --include="$(IFS=,; echo "${PACKAGES[*]}")"
  chroot "$new" apt-get clean
  # The root's python3 is 3.11, as the host's: the same wheels fit.
  "$TOOLS/bin/pip" install -q --disable-pip-version-check --no-deps \
    --target "$new/usr/local/lib/python3.11/dist-packages" "${PY_PACKAGES[@]}"
  printf '%s\n' "${PACKAGES[@]}" "${PY_PACKAGES[@]}" >"$new/.aws-role-ready"
  rm -rf "$ROOT"
  mv "$new" "$ROOT"
  log "container root ready in $(elapsed_s "$t0")"
}

case ${1:-} in
  ensure) [ -f "$READY" ] || create ;;
  path) echo "$ROOT" ;;
  *) echo "usage: $0 ensure|path" >&2; exit 2 ;;
esac
