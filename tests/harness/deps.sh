#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build aws-role and run its
# test suite: Slurm + munge from Debian, the Slurm headers, a Python venv with the STS
# emulator (moto) and the AWS clients (awscli, boto3) that jobs use, and what building and
# checking the packages needs (packaging/build.sh, tests/packaging/check.sh): lintian,
# rpm (rpmbuild, rpm2cpio), help2man, cargo-deb and cargo-generate-rpm at pinned
# versions, and cargo-fuzz (pinned) for tests/fuzz/run.sh. Idempotent: a second run only
# checks.
set -euo pipefail

VENV=${AWS_ROLE_TEST_VENV:-/opt/aws-role-test/venv}
# nftables, iptables, curl: tests/integration/imds.sh (the IMDS lock-down, both backends).
# socat: the multi-node cluster's nodes reach the STS emulator through a loopback
# forwarder (aws-role takes plain http to loopback only). acl: getfacl, to read back the ACL that lets a job's user read its (root-owned) files.
# lintian, rpm, rpm2cpio, cpio, help2man, dpkg-dev, binutils: packaging/build.sh and
# tests/packaging/check.sh. g++: libfuzzer-sys compiles libFuzzer (tests/fuzz/run.sh).
# The shellcheck package: tests/shellcheck.sh. go-md2man: the man pages written in docs/man/.
# awscli (v2), rclone, s3cmd, gdal-bin, python3-gdal: the tool table (tests/e2e/tools.sh,
# with the rest of its tools from tests/harness/tools.sh). podman, uidmap (newuidmap for
# rootless Podman), runc (crun refuses this machine's hybrid cgroup hierarchy):
# tests/e2e/podman.sh. tinyproxy: the real proxy of tests/integration/proxy.sh.
APT_PACKAGES=(slurm-wlm munge libslurm-dev python3-venv ca-certificates iproute2 procps psmisc
  nftables iptables curl acl socat lintian rpm rpm2cpio cpio help2man dpkg-dev binutils g++
  shellcheck go-md2man awscli rclone s3cmd gdal-bin python3-gdal podman uidmap runc tinyproxy)
# `cargo install --locked` only when missing or at another version. A fresh install of
# cargo-deb and cargo-generate-rpm takes several minutes (see packaging/README.md),
# cargo-fuzz about 4 more. cargo-fuzz builds with nightly's flags: tests/fuzz/run.sh uses
# the nightly toolchain when rustup has one, else stable with RUSTC_BOOTSTRAP=1, so no
# nightly is installed here (rustup's toolchain downloads are not reachable from CI).
CARGO_TOOLS=("cargo-deb 3.8.0" "cargo-generate-rpm 0.21.1" "cargo-fuzz 0.13.2")

# --demo: only what tests/demo.sh needs (Slurm, the STS emulator and the AWS CLI, and what
# builds and installs the .deb); no fuzzing, RPM, lintian, firewall or checking tools. A
# later run without it adds the rest.
if [ "${1:-}" = --demo ]; then
  APT_PACKAGES=(slurm-wlm munge libslurm-dev python3-venv ca-certificates iproute2 procps psmisc
    curl acl help2man go-md2man dpkg-dev binutils)
  CARGO_TOOLS=("cargo-deb 3.8.0")
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # dpkg on these machines has failed once transiently ("cannot stat pathname ... .deb");
  # an identical retry succeeded, so retry a few times.
  for attempt in 1 2 3; do
    if apt-get install -y -qq "${missing[@]}" >/tmp/aws-role-apt.log 2>&1; then break; fi
    [ "$attempt" = 3 ] && { cat /tmp/aws-role-apt.log; exit 1; }
    sleep 2
  done
fi

# The venv must be usable by the unprivileged users jobs run as: build it from
# Debian's /usr/bin/python3 (root's default python lives under /root, mode 0700)
# in a world-readable directory.
if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/aws" ]; then
  mkdir -p "$(dirname "$VENV")"
  chmod 0755 "$(dirname "$VENV")"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.*' 'awscli' 'boto3'
  chmod -R a+rX "$(dirname "$VENV")"
fi
for tool in "${CARGO_TOOLS[@]}"; do
  read -r name version <<<"$tool"
  if [ "$("$name" --version 2>/dev/null)" != "$name $version" ]; then
    echo "installing $name $version (cargo install --locked)"
    # Not into the project's CARGO_TARGET_DIR: cargo's own temporary directory.
    env -u CARGO_TARGET_DIR cargo install --quiet --locked --force --version "$version" "$name" \
      >/tmp/aws-role-cargo-install.log 2>&1 || { cat /tmp/aws-role-cargo-install.log; exit 1; }
  fi
done
[ "${1:-}" = --demo ] || bash "$(dirname "$0")/tools.sh" install
echo "deps ok: $(dpkg-query -W -f='${Version}' slurm-wlm) slurm-wlm, venv $VENV, ${CARGO_TOOLS[*]}"
