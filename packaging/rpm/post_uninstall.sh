# shellcheck shell=sh
# aws-role %postun. $1: 0 when the package was removed, 1 or more after an upgrade, when
# the refresher and the endpoint are restarted on the new binary (it keeps no state: restarting is safe).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart aws-role-refresher.service aws-role-endpoint.service >/dev/null 2>&1 || :
    fi
fi
# cargo-generate-rpm cannot make the package own its directories, so rpm leaves them
# behind: remove the ones that are only ours, if empty (a kept .rpmsave keeps /etc/aws-role).
if [ "$1" -eq 0 ]; then
    # The node's own record (accounts.rs), and the tmpfs aws-role-tmpfs.service mounted,
    # when no job is left in it (only where systemd runs, which mounted it).
    rm -f /run/aws-role/.slurm-accounts.json
    if [ -d /run/systemd/system ] && mountpoint -q /run/aws-role 2>/dev/null &&
        [ -z "$(ls -A /run/aws-role 2>/dev/null)" ]; then
        umount /run/aws-role 2>/dev/null || :
    fi
    rmdir /usr/libexec/aws-role /usr/share/aws-role/pbs /usr/share/aws-role \
        /usr/share/doc/aws-role /etc/aws-role >/dev/null 2>&1 || :
fi
exit 0
