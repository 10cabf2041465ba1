#!/usr/bin/env bash
# The last check of tests/run.sh: every secret key the STS emulator issued during the whole
# run (moto lists them all in /moto-api/data.json) must be in no log and no job output:
# Slurm's logs, aws-role's and the harness's logs, syslog, and the test users' homes.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

STS=$(bash "$REPO/tests/harness/sts.sh" url)
secrets=$(mktemp)
trap 'rm -f "$secrets"' EXIT
curl -sf "$STS/moto-api/data.json" | "$VENV/bin/python3" -c '
import json, sys
d = json.load(sys.stdin)
for k in d.get("iam", {}).get("AccessKey", []):
    if k.get("secret_access_key"):
        print(k["secret_access_key"])
' >"$secrets"
n=$(wc -l <"$secrets")
check "the emulator issued secret keys during this run ($n)" test "$n" -gt 0
places=(/var/log/slurm "$LOG_DIR" /var/log/syslog /var/log/messages /home/alice /home/bob)
existing=()
for p in "${places[@]}"; do [ -e "$p" ] && existing+=("$p"); done
hits=$(grep -rlF -f "$secrets" "${existing[@]}" 2>/dev/null)
check_eq "none of the $n secret keys is in ${existing[*]}" "" "$hits"
finish
