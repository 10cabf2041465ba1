#!/usr/bin/env bash
# Every shell command of the README's "Quick start" section and of the administrator guide
# (docs/admin-guide.md; the lines of their ```sh blocks) is exercised: run here, or by the
# suite or step named below, or listed as impossible on this machine with the reason. A
# command added to either without an entry here fails this suite. Runs after install.sh
# (the package is installed).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
README=$REPO/README.md
ADMIN_GUIDE=$REPO/docs/admin-guide.md
OUTPUTS=${CARGO_TARGET_DIR:-$REPO/target}/release/aws-role-package/outputs

# commands FILE [SECTION-HEADING NEXT-HEADING]: the sh-block lines of FILE (between the
# two headings when given), comments and blank lines dropped.
commands() {
  awk -v from="${2:-}" -v to="${3:-}" '
    BEGIN {on = (from == "")}
    from != "" && $0 == from {on = 1; next}
    to != "" && $0 == to {on = 0}
    on && /^[ \t]*```/ {if (fence) {fence = 0} else {fence = 1; sh = ($0 ~ /^[ \t]*```sh$/)}; next}
    on && fence && sh {sub(/[ \t]+#.*$/, ""); sub(/^[ \t]+/, ""); if ($0 ~ /[^ \t]/) print}
  ' "$1"
}

# covered_by FILE NEEDLE WHAT: FILE (a suite or harness script) contains NEEDLE.
covered_by() {
  if grep -qF -- "$2" "$REPO/$1"; then ok "README: $3 (by $1)"; else not_ok "README: $3: '$2' not in $1"; fi
}

mapfile -t cmds < <(commands "$README" "## Quick start" "## For researchers"; commands "$ADMIN_GUIDE")
check "the README's quick start and the admin guide have shell commands (${#cmds[@]})" test "${#cmds[@]}" -ge 10

for c in "${cmds[@]}"; do
  case $c in
    "bash tests/demo.sh") covered_by tests/run.sh "bash tests/demo.sh" "the demo runs in CI" ;;
    "bash tests/run.sh") covered_by .ci/run "tests/run.sh" "CI runs the test command" ;;
    "bash tests/harness/deps.sh") covered_by tests/run.sh 'bash $H/deps.sh' "deps.sh" ;;
    "bash packaging/build.sh") covered_by tests/harness/install.sh "bash packaging/build.sh" "build.sh" ;;
    "dpkg -i target/debian/"*)
      built=$(grep '\.deb$' "$OUTPUTS" 2>/dev/null | head -n1)
      check_eq "README: dpkg -i names the .deb build.sh makes" "${built##*/}" "${c##*/}"
      covered_by tests/harness/install.sh "dpkg --force-confold -i" "dpkg -i (installs the suites' package)" ;;
    "dnf install ./target/generate-rpm/"*)
      built=$(grep '\.rpm$' "$OUTPUTS" 2>/dev/null | head -n1)
      check_eq "README: dnf install names the .rpm build.sh makes" "${built##*/}" "${c##*/}"
      ok "README: dnf install: no dnf on Debian; tests/packaging/check.sh checks the .rpm's files, modes, %config and Conflicts with rpm" ;;
    "aws-role-prolog --check-config /etc/aws-role/role-map.toml")
      out=$(PATH=$BIN:$PATH aws-role-prolog --check-config /etc/aws-role/role-map.toml 2>&1)
      check_eq "README: $c exits 0 on the suites' map" 0 "$?"
      check_contains "README: ... and lists its roles" "demo" "$out" ;;
    "systemctl enable --now aws-role-imds-lockdown")
      ok "README: $c: no systemd as PID 1 here; the unit's ExecStart/ExecStop (apply/remove) run in tests/integration/imds.sh" ;;
    "/usr/libexec/aws-role/aws-role-imds-lockdown status")
      covered_by tests/integration/imds.sh "lockdown status" "imds-lockdown status (the installed script)" ;;
    "aws-role-prolog --check-node") covered_by tests/integration/imds.sh "--check-node" "--check-node" ;;
    'install -o root -g root -m 0500 /usr/libexec/aws-role/aws-role-'*)
      pbs_home=$(mktemp -d)
      mkdir -p "$pbs_home/mom_priv"
      (PBS_HOME=$pbs_home eval "$c")
      f=$pbs_home/mom_priv/$(awk '{print $NF}' <<<"$c" | sed 's#.*/##; s/"//g')
      check_eq "README: $c gives a root 0500 copy" "500 root:root" "$(stat -c '%a %U:%G' "$f" 2>/dev/null)"
      check "README: ... which runs (--help)" bash -c '"$1" --help >/dev/null' _ "$f"
      rm -rf "$pbs_home" ;;
    qmgr\ *|"echo '{\"base_dir\": \"/run/aws-role\"}' > aws_role_launch.json")
      ok "README: $c: no PBS server can be installed here; the hook runs against a stand-in pbs module (tests/pbs)" ;;
    *) not_ok "README command exercised by nothing: $c" ;;
  esac
done
finish
