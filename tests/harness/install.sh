#!/usr/bin/env bash
# Builds aws-role (release) and installs it on this test node, as root:
#
#   binaries  -> $AWS_ROLE_BIN_DIR (default /usr/local/libexec/aws-role/)
#                aws-role-prolog, aws-role-epilog, aws-role-credentials, aws-role-refresher
#   plugin    -> $AWS_ROLE_PLUGIN_DIR/aws_role.so (default /usr/local/lib/slurm/)
#   plugstack -> /etc/slurm/plugstack.conf.d/aws-role.conf
#
# then restarts slurmd, which decides whether to run the SPANK job_prolog/job_epilog from
# the plugin stack it loaded at start. The role map ($AWS_ROLE_MAP, default
# /etc/aws-role/role-map.toml) is written by the test suites, not here.
#
# Files a running daemon may have mapped (the .so in slurmd/slurmstepd, a binary being
# executed) are never overwritten in place: each is copied to a temporary name in the
# same directory and renamed over the old one.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

BIN_DIR=${AWS_ROLE_BIN_DIR:-/usr/local/libexec/aws-role}
PLUGIN_DIR=${AWS_ROLE_PLUGIN_DIR:-/usr/local/lib/slurm}
MAP=${AWS_ROLE_MAP:-/etc/aws-role/role-map.toml}
PLUGSTACK_CONF=/etc/slurm/plugstack.conf.d/aws-role.conf
TARGET=${CARGO_TARGET_DIR:-$REPO/target}/release
BINARIES=(aws-role-prolog aws-role-epilog aws-role-credentials aws-role-refresher)
# The plugin must stay small and free of tokio/TLS/AWS SDK (it runs inside slurmstepd).
MAX_SO_BYTES=$((1536 * 1024))

require_root
t0=$(now_ms)
cd "$REPO"

# The plugin gets its own cargo invocation: built together with the binaries, cargo would
# unify core's `sts` feature (tokio, AWS SDK) into it.
log "building the SPANK plugin"
cargo build --release -p aws-role-spank
log "building the binaries"
cargo build --release -p aws-role-prolog -p aws-role-epilog -p aws-role-credentials -p aws-role-refresher

so=$TARGET/libaws_role_spank.so
[ -f "$so" ] || die "$so not built"
size=$(stat -c %s "$so")
((size <= MAX_SO_BYTES)) || die "$so is $size bytes (limit $MAX_SO_BYTES): did the sts feature leak into the plugin?"
if grep -qa 'tokio' "$so"; then
  die "$so contains tokio: the plugin must be built without core's sts feature"
fi

# put SRC DEST MODE: copy to a temporary name next to DEST, then rename over it.
put() {
  local src=$1 dest=$2 mode=$3 tmp
  tmp="$(dirname "$dest")/.$(basename "$dest").new.$$"
  install -m "$mode" -o root -g root "$src" "$tmp"
  mv -f "$tmp" "$dest"
}

install -d -m 0755 -o root -g root "$BIN_DIR" "$PLUGIN_DIR" "$(dirname "$PLUGSTACK_CONF")"
for b in "${BINARIES[@]}"; do
  [ -f "$TARGET/$b" ] || die "$TARGET/$b not built"
  put "$TARGET/$b" "$BIN_DIR/$b" 0755
done
put "$so" "$PLUGIN_DIR/aws_role.so" 0755

conf_tmp=$(mktemp)
printf 'required %s config=%s prolog=%s epilog=%s\n' \
  "$PLUGIN_DIR/aws_role.so" "$MAP" "$BIN_DIR/aws-role-prolog" "$BIN_DIR/aws-role-epilog" >"$conf_tmp"
put "$conf_tmp" "$PLUGSTACK_CONF" 0644
rm -f "$conf_tmp"

bash "$HERE/cluster.sh" restart-slurmd >&2

echo "installed in $(elapsed_s "$t0"): $PLUGIN_DIR/aws_role.so ($size bytes), ${BINARIES[*]} in $BIN_DIR; $PLUGSTACK_CONF:"
cat "$PLUGSTACK_CONF"
