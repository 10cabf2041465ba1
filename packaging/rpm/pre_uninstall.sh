# shellcheck shell=sh
# aws-role %preun. $1: 0 when the package is being removed, 1 or more on an upgrade.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload disable aws-role-refresher.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop aws-role-refresher.service >/dev/null 2>&1 || :
    fi
fi
exit 0
