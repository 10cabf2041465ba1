# shellcheck shell=sh
# aws-role %preun. $1: 0 when the package is being removed, 1 or more on an upgrade.
# The IMDS lock-down is opt-in: it is only disabled (and stopped, which removes its rule)
# here if an administrator enabled it, since its script goes away with the package.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
    # aws-role-tmpfs is disabled but not stopped: it never unmounts under running jobs.
    systemctl --no-reload disable aws-role-tmpfs.service >/dev/null 2>&1 || :
    for unit in aws-role-refresher.service aws-role-endpoint.service aws-role-imds-lockdown.service; do
        systemctl --no-reload disable "$unit" >/dev/null 2>&1 || :
        if [ -d /run/systemd/system ]; then
            systemctl stop "$unit" >/dev/null 2>&1 || :
        fi
    done
fi
exit 0
