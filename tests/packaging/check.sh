#!/usr/bin/env bash
# The aws-role .deb and .rpm, checked without installing them and without the cluster:
# builds them with packaging/build.sh (or, with --reuse, takes the ones it last built),
# then checks every file's path, mode and owner, the conffiles and %config flags, the
# version and the Slurm Breaks/Conflicts (including with rpm's real resolver, in a scratch
# database), lintian (no errors), the maintainer scripts on a machine without systemd as
# PID 1 (with stubbed systemctl and friends), the plugin (size, no tokio), and that the
# packaged role map loads with zero roles. Ends with "N passed, N failed".
#
#     bash tests/packaging/check.sh [--reuse]
#
# For another Slurm release than the host's, name its headers as for build.sh:
#
#     SLURM_INCLUDE_DIR=/var/lib/aws-role-test/trixie/usr/include bash tests/packaging/check.sh
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
WORK=$(mktemp -d /tmp/aws-role-pkg-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
MAX_SO_BYTES=$((1536 * 1024))

# What they must say: the workspace version and the Slurm release of the headers used.
VERSION=$(awk -F'"' '/^\[workspace.package\]/ {w = 1} w && $1 ~ /^version *= */ {print $2; exit}' "$REPO/Cargo.toml")
hex=$(awk '$1 == "#define" && $2 == "SLURM_VERSION_NUMBER" {print $3; exit}' \
  "${SLURM_INCLUDE_DIR:-/usr/include}/slurm/slurm_version.h")
MAJOR=$(((hex >> 16) & 0xff))
MINOR=$(((hex >> 8) & 0xff))
SLURM=$(printf '%d.%02d' "$MAJOR" "$MINOR")      # 22.05
NEXT=$(printf '%d.%02d' "$MAJOR" $((MINOR + 1))) # 22.06
REVISION=1+slurm$SLURM
# Where build.sh puts them: another Slurm release than the host's under slurm-MM.NN/.
include_dir=$(cd "${SLURM_INCLUDE_DIR:-/usr/include}" 2>/dev/null && pwd)
PKG_TARGET=$CARGO_TARGET_DIR
[ "$include_dir" = /usr/include ] || PKG_TARGET=$CARGO_TARGET_DIR/slurm-$SLURM
echo "# Slurm $SLURM (${SLURM_INCLUDE_DIR:-/usr/include}): packages under $PKG_TARGET"

# ------------------------------------------------------------------------------ build
outputs=$PKG_TARGET/release/aws-role-package/outputs
if [ "${1:-}" != --reuse ]; then
  if ! bash "$REPO/packaging/build.sh" >/dev/null 2>"$WORK/build.log"; then
    tail -n 40 "$WORK/build.log"
    not_ok "packaging/build.sh"
    finish
    exit 1
  fi
fi
DEB=$(sed -n 1p "$outputs" 2>/dev/null)
RPM=$(sed -n 2p "$outputs" 2>/dev/null)
if [ ! -f "$DEB" ] || [ ! -f "$RPM" ]; then
  not_ok "packaging/build.sh produced a .deb and an .rpm ($outputs: '$DEB' '$RPM')"
  finish
  exit 1
fi
ok "packaging/build.sh produced $DEB and $RPM"


# ------------------------------------------------------------------------ the file lists
# TYPE-AND-PERMS PATH, for both packages (D = the distribution's plugin directory, C = a
# conffile / %config(noreplace), d = %doc in the RPM).
FILES=(
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-prolog"
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-epilog"
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-credentials"
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-refresher"
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-endpoint"
  "-rw-r--r-- C etc/slurm/plugstack.conf.d/aws-role.conf"
  "-rw-r--r-- C etc/aws-role/role-map.toml"
  "-rw-r--r-- C etc/profile.d/aws-role.sh"
  "-rw-r--r-- usr/lib/tmpfiles.d/aws-role.conf"
  "-rw-r--r-- usr/lib/systemd/system/aws-role-refresher.service"
  "-rw-r--r-- usr/lib/systemd/system/aws-role-endpoint.service"
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-tmpfs"
  "-rw-r--r-- usr/lib/systemd/system/aws-role-tmpfs.service"
  "-rwxr-xr-x usr/libexec/aws-role/aws-role-imds-lockdown"
  "-rw-r--r-- usr/lib/systemd/system/aws-role-imds-lockdown.service"
  "-rw-r--r-- usr/share/aws-role/pbs/aws_role_launch_hook.py"
  "-rw-r--r-- d usr/share/man/man8/aws-role-prolog.8.gz"
  "-rw-r--r-- d usr/share/man/man8/aws-role-epilog.8.gz"
  "-rw-r--r-- d usr/share/man/man8/aws-role-refresher.8.gz"
  "-rw-r--r-- d usr/share/man/man8/aws-role-endpoint.8.gz"
  "-rw-r--r-- d usr/share/man/man1/aws-role-credentials.1.gz"
  "-rw-r--r-- d usr/share/man/man5/aws-role-map.5.gz"
  "-rw-r--r-- d usr/share/man/man8/aws_role.so.8.gz"
  "-rw-r--r-- d usr/share/doc/aws-role/README.md"
  "-rw-r--r-- d usr/share/doc/aws-role/README.packaging.md"
  "-rw-r--r-- d usr/share/doc/aws-role/admin-guide.md"
  "-rw-r--r-- d usr/share/doc/aws-role/troubleshooting.md"
  "-rw-r--r-- d usr/share/doc/aws-role/tools.md"
  "-rw-r--r-- d usr/share/doc/aws-role/architecture.md"
  "-rw-r--r-- d usr/share/doc/aws-role/role-map.example.toml"
  "-rw-r--r-- d usr/share/doc/aws-role/copyright"
)
DEB_PLUGIN="-rw-r--r-- usr/lib/x86_64-linux-gnu/slurm-wlm/aws_role.so"
RPM_PLUGIN="-rwxr-xr-x usr/lib64/slurm/aws_role.so"
CONFFILES=(/etc/slurm/plugstack.conf.d/aws-role.conf /etc/aws-role/role-map.toml /etc/profile.d/aws-role.sh)

# expected_for deb|rpm: "PERMS OWNER PATH [FLAGS]" lines, sorted.
expected_for() {
  local kind=$1 entry perms path flag
  {
    for entry in "${FILES[@]}" "$([ "$kind" = deb ] && echo "$DEB_PLUGIN" || echo "$RPM_PLUGIN")"; do
      read -r perms flag path <<<"$entry"
      [ -n "$path" ] || { path=$flag; flag=; }
      if [ "$kind" = deb ]; then
        echo "$perms 0/0 ./$path"
      else
        case $flag in C) flag=cn ;; d) flag=d ;; *) flag=- ;; esac
        echo "$perms root:root /$path $flag"
      fi
    done
    [ "$kind" = deb ] && echo "-rw-r--r-- 0/0 ./usr/share/doc/aws-role/changelog.Debian.gz"
  } | sort
}

# compare_lists WHAT EXPECTED_FILE ACTUAL_FILE: one check per expected line, one for extras.
compare_lists() {
  local what=$1 line extra
  while IFS= read -r line; do
    if grep -qxF -- "$line" "$3"; then
      ok "$what: $line"
    else
      not_ok "$what: $line (found: $(grep -F -- "${line##* }" "$3" | head -n1))"
    fi
  done <"$2"
  extra=$(comm -13 "$2" "$3" | tr '\n' ';')
  check_eq "$what: nothing else" "" "$extra"
}

# ------------------------------------------------------------------------------- .deb
echo "# .deb: $DEB"
dpkg-deb -c "$DEB" | awk '{print $1, $2, $6}' | sort >"$WORK/deb.all"
grep -v '^d' "$WORK/deb.all" >"$WORK/deb.files"
expected_for deb >"$WORK/deb.expected"
compare_lists ".deb file" "$WORK/deb.expected" "$WORK/deb.files"
bad_dirs=$(grep '^d' "$WORK/deb.all" | grep -v '^drwxr-xr-x 0/0 ' | tr '\n' ';')
check_eq ".deb: every directory is drwxr-xr-x root" "" "$bad_dirs"
check ".deb: nothing under /run (tmpfiles.d creates /run/aws-role)" \
  bash -c "! grep -q ' ./run/' '$WORK/deb.all'"

dpkg-deb -e "$DEB" "$WORK/control"
check_eq ".deb conffiles" "$(printf '%s\n' "${CONFFILES[@]}" | sort)" "$(sort "$WORK/control/conffiles" 2>/dev/null)"
field() { dpkg-deb -f "$DEB" "$1"; }
check_eq ".deb Package" aws-role "$(field Package)"
check_eq ".deb Version" "$VERSION-$REVISION" "$(field Version)"
check_eq ".deb Breaks (Slurm $SLURM only)" \
  "slurm-client (<< $SLURM~), slurm-client (>= $NEXT~), slurmd (<< $SLURM~), slurmd (>= $NEXT~)" "$(field Breaks)"
check_not_contains ".deb: no dependency on Slurm (PBS-only nodes)" slurm "$(field Depends) $(field Pre-Depends) $(field Recommends)"
check_contains ".deb Description names the Slurm release" "Built for Slurm $SLURM" "$(field Description)"

# broken_by VERSION: the .deb's Breaks clause that slurm-client VERSION matches, if any.
broken_by() {
  local clause op ver
  IFS=',' read -ra clauses <<<"$(field Breaks)"
  for clause in "${clauses[@]}"; do
    [[ $clause =~ ^\ *slurm-client\ \((<<|<=|=|>=|>>)\ ([^\)]+)\)$ ]] || continue
    case ${BASH_REMATCH[1]} in '<<') op=lt ;; '<=') op=le ;; '=') op=eq ;; '>=') op=ge ;; '>>') op=gt ;; esac
    ver=${BASH_REMATCH[2]}
    if dpkg --compare-versions "$1" "$op" "$ver"; then echo "$clause"; return; fi
  done
}
# (The installed slurm-client only if it is this release: the host's is 22.05.)
installed=$(dpkg-query -W -f='${Version}' slurm-client 2>/dev/null || true)
[[ $installed == "$SLURM".* ]] || installed=
for v in $installed "$SLURM.0-1" "$SLURM.0~rc1-1" "$SLURM.99-9+deb99u9"; do
  check_eq ".deb does not break slurm-client $v" "" "$(broken_by "$v")"
done
for v in "$NEXT.0~rc1-1" "$NEXT.0-1" "$((MAJOR + 1)).02.1-1" "$MAJOR.$(printf %02d $((MINOR - 1))).9-1" "21.08.8-2"; do
  check ".deb breaks slurm-client $v" test -n "$(broken_by "$v")"
done

# lintian: errors fail, the rest is shown (packaging/README.md says which are kept and why).
if command -v lintian >/dev/null; then
  lintian -I --pedantic --tag-display-limit 0 "$DEB" >"$WORK/lintian" 2>&1
  lintian_rc=$?
  grep -E '^[EWIPXO]: ' "$WORK/lintian" | sed 's/^/#   lintian: /'
  check_eq ".deb: lintian errors" 0 "$(grep -c '^E: ' "$WORK/lintian")"
  check_eq ".deb: lintian exit status (0: ran, no errors)" 0 "$lintian_rc"
  [ "$lintian_rc" = 0 ] || grep -vE '^[EWIPXON]: ' "$WORK/lintian" | head -n 20
else
  not_ok "lintian is not installed (tests/harness/deps.sh installs it)"
fi

# Maintainer scripts on this machine's kind (CI: no systemd as PID 1), with every
# systemd tool stubbed so that nothing on the machine is touched.
stub=$WORK/stub
mkdir -p "$stub"
for tool in systemctl deb-systemd-helper deb-systemd-invoke systemd-tmpfiles rmdir; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\nexit 0\n' "$tool" "$WORK" >"$stub/$tool"
  chmod 0755 "$stub/$tool"
done
# As on a machine where the package was never installed: deb-systemd-helper knows no unit
# (`debian-installed` fails) and `was-enabled` defaults to true, as the real one does.
printf '#!/bin/sh\necho "deb-systemd-helper $*" >>"%s/calls"\n[ "$1" = debian-installed ] && exit 1\nexit 0\n' \
  "$WORK" >"$stub/deb-systemd-helper"
# run_script WHAT SCRIPT ARGS...: runs it as dpkg or rpm would (sh, root), with the stubs.
run_script() {
  local what=$1 script=$2 rc
  shift 2
  : >"$WORK/calls"
  env -i PATH="$stub:/usr/sbin:/usr/bin:/sbin:/bin" DPKG_ROOT="$WORK/root" \
    sh "$script" "$@" >"$WORK/script.out" 2>&1
  rc=$?
  check_eq "$what exits 0" 0 "$rc"
  [ "$rc" = 0 ] || cat "$WORK/script.out"
  if [ ! -d /run/systemd/system ]; then
    # Only enabling/disabling (symlinks, fine without systemd) may happen.
    check_eq "$what: without systemd as PID 1, starts, stops and reloads nothing" "" \
      "$(grep -E '^(systemctl|deb-systemd-invoke|systemd-tmpfiles) ' "$WORK/calls" |
        grep -vE '^systemctl --no-reload (enable|disable) ' | tr '\n' ';')"
  fi
}
for s in postinst prerm postrm; do
  check ".deb $s is valid sh" sh -n "$WORK/control/$s"
  check_not_contains ".deb $s: every #DEBHELPER# token replaced" "#DEBHELPER#" "$(cat "$WORK/control/$s")"
done
run_script ".deb postinst configure (first install)" "$WORK/control/postinst" configure
check_contains ".deb postinst enables the refresher on install" \
  "deb-systemd-helper enable aws-role-refresher.service" "$(cat "$WORK/calls")"
check_contains ".deb postinst enables the credentials endpoint on install" \
  "deb-systemd-helper enable aws-role-endpoint.service" "$(cat "$WORK/calls")"
check_contains ".deb postinst enables the tmpfs of /run/aws-role on install" \
  "deb-systemd-helper enable aws-role-tmpfs.service" "$(cat "$WORK/calls")"
check_not_contains ".deb postinst never enables the opt-in IMDS lock-down" \
  "enable aws-role-imds-lockdown" "$(cat "$WORK/calls")"
run_script ".deb postinst configure (upgrade)" "$WORK/control/postinst" configure 0.0.9-1
run_script ".deb prerm remove" "$WORK/control/prerm" remove
run_script ".deb postrm remove" "$WORK/control/postrm" remove
host_tmpfs=$(mountpoint -q /run/aws-role && echo mounted)
run_script ".deb postrm purge" "$WORK/control/postrm" purge
check_eq ".deb postrm purge under DPKG_ROOT leaves the host's /run/aws-role as it was" \
  "$host_tmpfs" "$(mountpoint -q /run/aws-role && echo mounted)"

# The installed tree, from the .deb (extracted into a temporary directory only).
ROOT=$WORK/deb-root
dpkg-deb -x "$DEB" "$ROOT"
so=$ROOT/usr/lib/x86_64-linux-gnu/slurm-wlm/aws_role.so
size=$(stat -c %s "$so" 2>/dev/null || echo 0)
check "plugin: $size bytes, under 1.5 MiB" test "$size" -gt 0 -a "$size" -le "$MAX_SO_BYTES"
check "plugin: no tokio in it" bash -c "! grep -qa tokio '$so'"
check_contains "plugin: exports the SPANK plugin symbols" "plugin_version" "$(nm -D --defined-only "$so" 2>&1)"
check "plugin: not linked against libslurm (resolved from the host's Slurm at load)" \
  bash -c "! objdump -p '$so' | grep -q 'NEEDED.*slurm'"
# plugin_version (a uint32_t) is what Slurm compares with its own major.minor at load.
# plugin_version_of SO: its value, read from the file (objdump at the symbol's address).
plugin_version_of() {
  local addr
  addr=$(nm -D --defined-only "$1" 2>/dev/null | awk '$3 == "plugin_version" {print $1; exit}')
  [ -n "$addr" ] || return 0
  objdump -s --start-address=$((16#$addr)) --stop-address=$((16#$addr + 4)) "$1" |
    awk '/^ [0-9a-f]+ / {b = $2; printf "0x%s%s%s%s\n", substr(b, 7, 2), substr(b, 5, 2), substr(b, 3, 2), substr(b, 1, 2); exit}'
}
pv=$(plugin_version_of "$so")
check_eq "plugin: plugin_version is Slurm $SLURM's major.minor ($pv)" "$SLURM" \
  "$([ -n "$pv" ] && printf '%d.%02d' $(((pv >> 16) & 0xff)) $(((pv >> 8) & 0xff)))"

map_out=$("$ROOT/usr/libexec/aws-role/aws-role-prolog" --check-config "$ROOT/etc/aws-role/role-map.toml" 2>&1)
map_rc=$?
check_eq "packaged role map: aws-role-prolog --check-config accepts it" 0 "$map_rc"
check_contains "packaged role map: zero roles" "roles (0):" "$map_out"
check_contains "packaged role map: no partition default" $'partition defaults:\n  (none)' "$map_out"
check_contains "packaged role map: no PBS queue default" "any other or unknown queue -> no role" "$map_out"
check_eq "plugstack fragment: its one line" "optional aws_role.so" \
  "$(grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/etc/slurm/plugstack.conf.d/aws-role.conf")"
check_eq "tmpfiles.d: /run/aws-role as the store wants it (root, 0711)" "d /run/aws-role 0711 root root -" \
  "$(grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/usr/lib/tmpfiles.d/aws-role.conf")"
for unit in aws-role-refresher aws-role-endpoint; do
  exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$ROOT/usr/lib/systemd/system/$unit.service")
  check "systemd unit $unit: ExecStart ($exec_start) is in the package" test -x "$ROOT$exec_start"
done
# The IMDS lock-down follows every firewall service it lists both ways: their stop and
# restart (PartOf=), reload (ReloadPropagatedFrom=) and start (WantedBy=: PartOf= does not
# propagate a start, so `systemctl stop nftables; systemctl start nftables` used to leave
# IMDS open). Without systemd as PID 1 here, `systemctl --root` shows what enabling wires
# up, and systemd-analyze checks the unit; the start itself cannot run.
lockdown=$ROOT/usr/lib/systemd/system/aws-role-imds-lockdown.service
unit_list() { sed -n "s/^$1=//p" "$lockdown" | tr ' ' '\n' | grep . | sort -u; }
for fw in $(unit_list PartOf); do
  check_contains "IMDS lock-down: a start of $fw starts it (WantedBy)" "$fw" "$(unit_list WantedBy)"
  check_contains "IMDS lock-down: ... and it runs after $fw (After)" "$fw" "$(unit_list After)"
  check_contains "IMDS lock-down: ... a reload of $fw re-applies it" "$fw" "$(unit_list ReloadPropagatedFrom)"
done
check_contains "IMDS lock-down follows nftables" nftables.service "$(unit_list PartOf)"
sysroot=$WORK/systemd-root
mkdir -p "$sysroot/usr/lib/systemd/system" "$sysroot/etc/systemd/system"
cp "$lockdown" "$sysroot/usr/lib/systemd/system/"
systemctl --root="$sysroot" enable aws-role-imds-lockdown.service >/dev/null 2>&1
check "IMDS lock-down: once enabled, nftables.service wants it" \
  test -L "$sysroot/etc/systemd/system/nftables.service.wants/aws-role-imds-lockdown.service"
check_eq "IMDS lock-down: systemd-analyze verify finds nothing but the binary's absence" "" \
  "$(systemd-analyze verify --man=no "$lockdown" 2>&1 | grep -v 'is not executable' | sort -u)"

for sh in sh bash; do
  out=$(env -i PATH=/usr/bin:/bin HOME=/nonexistent "$sh" -euc ". '$ROOT/etc/profile.d/aws-role.sh'; env" 2>&1)
  rc=$?
  check_eq "profile.d snippet outside a PBS job ($sh -eu): exits 0" 0 "$rc"
  check_not_contains "profile.d snippet outside a PBS job ($sh -eu): sets nothing, prints nothing" "AWS" "$out"
done
for page in man8/aws-role-prolog.8 man8/aws-role-epilog.8 man8/aws-role-refresher.8 man8/aws-role-endpoint.8 man1/aws-role-credentials.1; do
  text=$(zcat "$ROOT/usr/share/man/$page.gz" 2>/dev/null)
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS FILES '"EXIT STATUS"' EXAMPLES '"SEE ALSO"'; do
    check_contains "man page $page: section $section" ".SH $section" "$text"
  done
done
# The pages written in docs/man/ (go-md2man), not generated from a --help.
for page in man5/aws-role-map.5 man8/aws_role.so.8; do
  text=$(zcat "$ROOT/usr/share/man/$page.gz" 2>/dev/null)
  check_contains "man page $page: its title" ".TH $(basename "$page" | sed 's/\.[0-9]$//' | tr '[:lower:]' '[:upper:]') ${page##*.}" "$text"
  for section in NAME SYNOPSIS DESCRIPTION FILES 'SEE ALSO'; do
    check_contains "man page $page: section $section" ".SH $section" "$text"
  done
done

# -------------------------------------------------------------------------------- .rpm
echo "# .rpm: $RPM"
rpm -qp --queryformat '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" 2>/dev/null |
  sed 's/ $/ -/' | sort >"$WORK/rpm.files"
expected_for rpm >"$WORK/rpm.expected"
compare_lists ".rpm file" "$WORK/rpm.expected" "$WORK/rpm.files"
check_eq ".rpm Name Version Release" "aws-role $VERSION $REVISION" \
  "$(rpm -qp --queryformat '%{NAME} %{VERSION} %{RELEASE}' "$RPM" 2>/dev/null)"
check_eq ".rpm Conflicts (Slurm $SLURM only)" \
  "$(printf 'slurm < %s~\nslurm >= %s~\nslurm-slurmd < %s~\nslurm-slurmd >= %s~' "$SLURM" "$NEXT" "$SLURM" "$NEXT")" \
  "$(rpm -qp --conflicts "$RPM" 2>/dev/null | sort)"
check_eq ".rpm: no dependency on Slurm (PBS-only nodes)" "" "$(rpm -qp --requires "$RPM" 2>/dev/null | grep -i '^slurm')"
check_contains ".rpm Summary names the Slurm release" "Slurm $SLURM" "$(rpm -qp --queryformat '%{SUMMARY}' "$RPM" 2>/dev/null)"
# --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
rpm -qp --dump "$RPM" 2>/dev/null | awk '{print $1, $5, $8}' | sort >"$WORK/rpm.dump"
check_eq ".rpm --dump: config flag on exactly the conffiles" \
  "$(printf '%s\n' "${CONFFILES[@]}" | sort)" "$(awk '$3 == 1 {print $1}' "$WORK/rpm.dump")"

# rpm's own resolver, in a scratch database: fake Slurm packages of several releases.
if command -v rpmbuild >/dev/null; then
  printf 'Name: %%{pkg}\nVersion: %%{ver}\nRelease: 1\nSummary: fake\nLicense: none\nBuildArch: noarch\n%%description\nfake\n%%files\n' \
    >"$WORK/fake.spec"
  for v in "$SLURM.8" "$SLURM.0" "$NEXT.0" "$((MAJOR + 1)).02.1" "21.08.8"; do
    rpmbuild -bb --quiet --define "_topdir $WORK/rpmtop" --define "pkg slurm" --define "ver $v" "$WORK/fake.spec" >/dev/null 2>&1
    rm -rf "$WORK/rpmdb"
    mkdir -p "$WORK/rpmdb"
    rpm --dbpath "$WORK/rpmdb" --initdb 2>/dev/null
    rpm --dbpath "$WORK/rpmdb" -i --justdb --nodeps --noscripts "$WORK/rpmtop/RPMS/noarch/slurm-$v-1.noarch.rpm" 2>/dev/null
    conflicts=$(rpm --dbpath "$WORK/rpmdb" -i --test "$RPM" 2>&1 | grep 'conflicts with')
    case $v in
      "$SLURM".*) check_eq ".rpm installs beside slurm $v (rpm -i --test, scratch db)" "" "$conflicts" ;;
      *) check_contains ".rpm conflicts with slurm $v (rpm -i --test, scratch db)" "conflicts with aws-role" "$conflicts" ;;
    esac
  done
else
  not_ok "rpmbuild is not installed (Debian's rpm package has it)"
fi

# The scriptlets as the .rpm carries them (cargo-generate-rpm takes a script's text when
# the path exists, else the path itself as the script).
for tag in POSTIN PREUN POSTUN; do
  rpm -qp --queryformat "%{$tag}" "$RPM" >"$WORK/rpm.$tag" 2>/dev/null
done
for pair in POSTIN:post_install PREUN:pre_uninstall POSTUN:post_uninstall; do
  check_eq ".rpm %${pair%%:*} is packaging/rpm/${pair#*:}.sh" "$(cat "$REPO/packaging/rpm/${pair#*:}.sh")" \
    "$(cat "$WORK/rpm.${pair%%:*}")"
  check ".rpm %${pair%%:*} is valid sh" sh -n "$WORK/rpm.${pair%%:*}"
done
run_script ".rpm %post (first install)" "$WORK/rpm.POSTIN" 1
check_contains ".rpm %post enables the refresher on install" \
  "systemctl --no-reload enable aws-role-refresher.service" "$(cat "$WORK/calls")"
check_contains ".rpm %post enables the credentials endpoint on install" \
  "systemctl --no-reload enable aws-role-endpoint.service" "$(cat "$WORK/calls")"
check_contains ".rpm %post enables the tmpfs of /run/aws-role on install" \
  "systemctl --no-reload enable aws-role-tmpfs.service" "$(cat "$WORK/calls")"
check_not_contains ".rpm %post never enables the opt-in IMDS lock-down" \
  "enable aws-role-imds-lockdown" "$(cat "$WORK/calls")"
run_script ".rpm %post (upgrade)" "$WORK/rpm.POSTIN" 2
run_script ".rpm %preun (erase)" "$WORK/rpm.PREUN" 0
check_contains ".rpm %preun disables the refresher on erase" \
  "systemctl --no-reload disable aws-role-refresher.service" "$(cat "$WORK/calls")"
check_contains ".rpm %preun disables the IMDS lock-down too on erase (its script goes)" \
  "systemctl --no-reload disable aws-role-imds-lockdown.service" "$(cat "$WORK/calls")"
run_script ".rpm %preun (upgrade)" "$WORK/rpm.PREUN" 1
run_script ".rpm %postun (upgrade)" "$WORK/rpm.POSTUN" 1
run_script ".rpm %postun (erase)" "$WORK/rpm.POSTUN" 0

# Both packages carry the same files (same staging), whatever their place.
mkdir -p "$WORK/rpm-root"
(cd "$WORK/rpm-root" && rpm2cpio "$RPM" | cpio -idm --quiet 2>/dev/null)
same=1
for f in usr/libexec/aws-role/aws-role-prolog usr/libexec/aws-role/aws-role-refresher etc/aws-role/role-map.toml \
  etc/slurm/plugstack.conf.d/aws-role.conf usr/share/man/man8/aws-role-prolog.8.gz; do
  cmp -s "$ROOT/$f" "$WORK/rpm-root/$f" || { same=0; echo "# differs: $f"; }
done
cmp -s "$so" "$WORK/rpm-root/usr/lib64/slurm/aws_role.so" || { same=0; echo "# differs: aws_role.so"; }
check_eq ".deb and .rpm carry the same binaries, plugin, conffiles and man pages" 1 "$same"

finish
