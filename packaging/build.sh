#!/usr/bin/env bash
# Builds the aws-role packages, one .deb and one .rpm, for the Slurm release whose headers
# are installed (SLURM_INCLUDE_DIR, default /usr/include, holds slurm/slurm_version.h, as
# for spank-plugin/build.rs):
#
#     bash packaging/build.sh
#
# 1. cargo build --release: the SPANK plugin in its own invocation (built together with the
#    binaries, cargo would unify core's `sts` feature, i.e. tokio and the AWS SDK, into it),
#    then the four binaries; the plugin is refused if it is over 1.5 MiB or contains tokio.
# 2. Copies them to $PKG_TARGET/release/aws-role-package/, strips them, and writes the
#    man pages there from each binary's --help (help2man).
# 3. cargo deb and cargo generate-rpm (metadata: packaging/Cargo.toml), with the variant
#    and the version suffix (+slurmMM.NN) of that Slurm release.
#
# Prints the two package paths on stdout (progress goes to stderr), and records them in
# $PKG_TARGET/release/aws-role-package/outputs. Needs: cargo-deb, cargo-generate-rpm,
# help2man, go-md2man, binutils (tests/harness/deps.sh installs them). Installs nothing.
# AWS_ROLE_PACKAGES=deb builds the .deb alone (the demo: no cargo-generate-rpm needed).
#
# PKG_TARGET, where the plugin is built and the packages are staged and written, is
# $CARGO_TARGET_DIR for the host's headers (/usr/include), else $CARGO_TARGET_DIR/slurm-MM.NN:
# another Slurm release's plugin and packages never overwrite the host's, and the plugin is
# not rebuilt each time the headers switch. The binaries do not depend on Slurm and are
# always built in $CARGO_TARGET_DIR. E.g. the Slurm 24.11 packages, from a trixie root
# (tests/harness/trixie.sh), in target/slurm-24.11/{debian,generate-rpm}/:
#
#     SLURM_INCLUDE_DIR=/var/lib/aws-role-test/trixie/usr/include bash packaging/build.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BINARIES=(aws-role-prolog aws-role-epilog aws-role-credentials aws-role-refresher aws-role-endpoint)
MAX_SO_BYTES=$((1536 * 1024))

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PACKAGES=${AWS_ROLE_PACKAGES:-deb rpm}
case $PACKAGES in "deb rpm" | deb) ;; *) die "AWS_ROLE_PACKAGES is '$PACKAGES': 'deb' or unset (both)" ;; esac
tools=(cargo-deb help2man go-md2man strip gzip)
[ "$PACKAGES" = deb ] || tools+=(cargo-generate-rpm)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool not found (bash tests/harness/deps.sh installs it)"
done
# The Debian plugin path (/usr/lib/x86_64-linux-gnu/slurm-wlm) and the RPM's are amd64's.
[ "$(uname -m)" = x86_64 ] || die "only x86_64 packages are described in packaging/Cargo.toml"
cd "$REPO"

# ------------------------------------------------------------------ which Slurm release
# The same header spank-plugin/build.rs reads for the plugin's plugin_version.
# (Not exported when unset: the plugin's build script reruns when it changes, and
# tests/harness/install.sh builds without it.)
version_h=${SLURM_INCLUDE_DIR:-/usr/include}/slurm/slurm_version.h
[ -r "$version_h" ] || die "cannot read $version_h (install libslurm-dev, or set SLURM_INCLUDE_DIR)"
hex=$(awk '$1 == "#define" && $2 == "SLURM_VERSION_NUMBER" {print $3; exit}' "$version_h")
[[ $hex =~ ^0[xX][0-9a-fA-F]+$ ]] || die "no '#define SLURM_VERSION_NUMBER 0x...' in $version_h"
major=$(((hex >> 16) & 0xff))
minor=$(((hex >> 8) & 0xff))
SLURM_MM=$(printf '%d.%02d' "$major" "$minor")  # 22.05
VARIANT=$(printf 'slurm%d-%02d' "$major" "$minor")  # slurm22-05
REVISION="1+slurm$SLURM_MM"
for tool in deb generate-rpm; do
  grep -q "^\[package.metadata.$tool.variants.$VARIANT\]" packaging/Cargo.toml ||
    die "packaging/Cargo.toml has no $tool variant $VARIANT for Slurm $SLURM_MM ($version_h): add one (see the comment above the variants there)"
done
include_dir=$(cd "$(dirname "$version_h")/.." && pwd)
if [ "$include_dir" = /usr/include ]; then
  PKG_TARGET=$CARGO_TARGET_DIR
else
  PKG_TARGET=$CARGO_TARGET_DIR/slurm-$SLURM_MM
fi
STAGE=$PKG_TARGET/release/aws-role-package
log "Slurm $SLURM_MM from $version_h: variant $VARIANT, revision $REVISION, output under $PKG_TARGET"

# Reproducible: file dates, the packages' build dates and the man pages' date. Only given
# to the packaging steps, so that the cargo builds stay the same as install.sh's.
sde=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}

# ------------------------------------------------------------------------------- build
log "building the SPANK plugin (alone)"
if [ "$PKG_TARGET" = "$CARGO_TARGET_DIR" ]; then
  cargo build --release --locked -p aws-role-spank >&2
else
  # As tests/harness/multinode.sh builds it for 24.11 (same directory: built once).
  SLURM_INCLUDE_DIR=$include_dir CARGO_TARGET_DIR=$PKG_TARGET cargo build --release --locked -p aws-role-spank >&2
fi
log "building the binaries"
cargo build --release --locked -p aws-role-prolog -p aws-role-epilog -p aws-role-credentials -p aws-role-refresher -p aws-role-endpoint >&2

rm -rf "$STAGE"
mkdir -p "$STAGE/man"
for b in "${BINARIES[@]}"; do
  install -m 0755 "$CARGO_TARGET_DIR/release/$b" "$STAGE/$b"
done
install -m 0644 "$PKG_TARGET/release/libaws_role_spank.so" "$STAGE/aws_role.so"
# As dh_strip does (cargo's `strip = true` leaves .comment and .note).
for f in "${BINARIES[@]}" aws_role.so; do
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/$f"
done

so_size=$(stat -c %s "$STAGE/aws_role.so")
((so_size <= MAX_SO_BYTES)) || die "the plugin is $so_size bytes (limit $MAX_SO_BYTES): did the sts feature leak into it?"
if grep -qa tokio "$STAGE/aws_role.so"; then
  die "the plugin contains tokio: it must be built without core's sts feature"
fi

# ---------------------------------------------------------------------------- man pages
version=$("$STAGE/aws-role-prolog" --version | awk '{print $2}')
[ -n "$version" ] || die "cannot read the version from aws-role-prolog --version"
# manpage NAME SECTION "one-line description"
manpage() {
  local name=$1 section=$2 what=$3 out=$STAGE/man/$1.$2
  SOURCE_DATE_EPOCH=$sde help2man --no-info --section "$section" --name "$what" --source "aws-role $version" \
    --manual "aws-role" --version-string "$version" --output "$out" "$STAGE/$name" ||
    die "help2man $name failed"
  # help2man knows FILES, ENVIRONMENT and EXAMPLES; make these two real sections too.
  sed -i -e 's/^\.SS "Exit status:"$/.SH "EXIT STATUS"/' -e 's/^\.SS "See also:"$/.SH "SEE ALSO"/' "$out"
  gzip -9n "$out"
}
log "writing the man pages"
manpage aws-role-prolog 8 "give a batch job its AWS IAM role on this node (Slurm Prolog, PBS prologue)"
manpage aws-role-epilog 8 "remove a batch job's AWS credentials from this node (Slurm Epilog, PBS epilogue)"
manpage aws-role-refresher 8 "renew the AWS credentials of a node's running batch jobs before they expire"
manpage aws-role-endpoint 8 "serve a node's running batch jobs their AWS credentials over loopback HTTP"
manpage aws-role-credentials 1 "print a batch job's current AWS credentials for the AWS SDKs (credential_process)"
# The role map's and the plugin's pages are written (docs/man/*.md), not generated from a
# --help: go-md2man turns them into roff.
for page in aws-role-map.5 aws_role.so.8; do
  go-md2man -in "docs/man/$page.md" -out "$STAGE/man/$page" || die "go-md2man $page failed"
  gzip -9n "$STAGE/man/$page"
done

# ----------------------------------------------------------------------------- packages
log "cargo deb ($VARIANT)"
mkdir -p "$PKG_TARGET/debian" "$PKG_TARGET/generate-rpm"
# (Both resolve the assets' target/release/ as $CARGO_TARGET_DIR/release/: the stage.)
deb=$(SOURCE_DATE_EPOCH=$sde CARGO_TARGET_DIR=$PKG_TARGET cargo deb --locked -p aws-role-packaging --no-build \
  --variant "$VARIANT" --deb-revision "$REVISION" --output "$PKG_TARGET/debian/" | tail -n1)
[ -f "$deb" ] || die "cargo deb did not report a package (got '$deb')"

if [ "$PACKAGES" = deb ]; then
  printf '%s\n' "$deb" | tee "$STAGE/outputs"
  exit 0
fi

log "cargo generate-rpm ($VARIANT)"
rpm_name=aws-role-$version-$REVISION.x86_64.rpm
SOURCE_DATE_EPOCH=$sde CARGO_TARGET_DIR=$PKG_TARGET cargo generate-rpm -p packaging --variant "$VARIANT" \
  -s "release = \"$REVISION\"" --target-dir "$PKG_TARGET" --output "$PKG_TARGET/generate-rpm/$rpm_name" >&2
rpm=$PKG_TARGET/generate-rpm/$rpm_name
[ -f "$rpm" ] || die "cargo generate-rpm did not write $rpm"

printf '%s\n%s\n' "$deb" "$rpm" | tee "$STAGE/outputs"
