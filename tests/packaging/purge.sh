#!/usr/bin/env bash
# dpkg --purge aws-role on the test node, after every suite ran against the installed
# package: the purge must leave none of the package's files, none of its conffiles and no
# plugstack line behind, and Slurm must run on without the plugin. What may stay is what
# Debian policy leaves: directories holding files the package does not own (the test
# suites' node credentials in /etc/aws-role) and the runtime directory /run/aws-role
# (tmpfs on a real node; empty once every job's epilog ran).
#
# Runs last in tests/run.sh: afterwards aws-role is no longer installed.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
H=$REPO/tests/harness

if ! dpkg-query -W -f='${Status}' aws-role 2>/dev/null | grep -q 'install ok installed'; then
  not_ok "aws-role is installed before the purge"
  finish
  exit 1
fi
mapfile -t files < <(dpkg -L aws-role | while read -r f; do [ -d "$f" ] || echo "$f"; done)
mapfile -t conffiles < <(dpkg-query -W -f='${Conffiles}\n' aws-role | awk 'NF {print $1}')
check "the package owns files (${#files[@]}) and conffiles (${#conffiles[@]})" test "${#files[@]}" -gt 10 -a "${#conffiles[@]}" -ge 3

check "dpkg --purge aws-role succeeds" env DEBIAN_FRONTEND=noninteractive dpkg --purge aws-role
check_eq "dpkg no longer knows the package" "" "$(dpkg-query -W -f='${Status}' aws-role 2>/dev/null | grep -o installed)"

left=()
for f in "${files[@]}" "${conffiles[@]}"; do
  [ -e "$f" ] || [ -L "$f" ] && left+=("$f")
done
check_eq "no file or conffile of the package is left" "" "${left[*]}"
check "no .dpkg-old/.dpkg-dist copies of the conffiles are left" \
  bash -c '! ls /etc/aws-role/*.dpkg-* /etc/slurm/plugstack.conf.d/*.dpkg-* 2>/dev/null | grep -q .'
check_eq "no plugstack line loads aws_role.so" "" "$(grep -rls aws_role /etc/slurm/plugstack.conf /etc/slurm/plugstack.conf.d/ 2>/dev/null)"
check_eq "no aws-role unit is left enabled" "" "$(find /etc/systemd/system -name 'aws-role*' 2>/dev/null)"
extra=$(find /etc/aws-role -mindepth 1 ! -name node-credentials 2>/dev/null)
check_eq "/etc/aws-role holds only the suites' own node credentials (not the package's)" "" "$extra"
check_eq "/run/aws-role holds no job" "" "$(ls -A /run/aws-role 2>/dev/null)"
check "the purge unmounted the empty tmpfs of /run/aws-role" bash -c '! mountpoint -q /run/aws-role'

# Slurm without the plugin: slurmd restarts, a job runs, nothing drains.
check "slurmd restarts without the plugin" bash "$H/cluster.sh" restart-slurmd
out=$(runuser -l alice -c 'srun -Q printenv AWS_CONFIG_FILE; echo rc=$?' 2>&1)
check_contains "a job runs after the purge (and has no AWS config)" "rc=1" "$out"
check_contains "--aws-role is gone from sbatch" "unrecognized option" "$(runuser -l alice -c 'sbatch --aws-role=demo --wrap true' 2>&1)"
check "the node is healthy" bash "$H/cluster.sh" assert-healthy
finish
