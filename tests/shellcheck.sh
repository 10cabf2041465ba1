#!/usr/bin/env bash
# Runs shellcheck over every shell script in the repository: the *.sh files and the
# extensionless ones whose first line names sh or bash (.ci/run, the package scripts, the
# IMDS and tmpfs helpers). Warnings and errors fail; style notes (quoting a '$' on
# purpose, files sourced at run time) do not.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "shellcheck is not installed (tests/harness/deps.sh installs it)" >&2; exit 1; }
scripts=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  case $f in
    *.sh) scripts+=("$f") ;;
    *) head -n1 "$f" 2>/dev/null | grep -qE '^#!.*\b(ba)?sh\b' && scripts+=("$f") ;;
  esac
done < <(git ls-files)
shellcheck --external-sources --severity=warning "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
