# shellcheck shell=sh
# aws-role %post. $1: 1 on a first install, 2 or more on an upgrade.
# Never fails, and never starts anything unless systemd is PID 1 (containers, image builds
# and CI have no systemd): /run/aws-role is then created (root, 0711) by the first prolog.
if [ -d /run/systemd/system ] && command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create aws-role.conf >/dev/null 2>&1 || :
fi
if command -v systemctl >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || :
    fi
    if [ "$1" -eq 1 ]; then
        # Enabled on a first install only: an administrator's later `disable` survives
        # upgrades. (systemctl enable works without a running systemd.)
        systemctl --no-reload enable aws-role-tmpfs.service >/dev/null 2>&1 || :
        systemctl --no-reload enable aws-role-refresher.service >/dev/null 2>&1 || :
        systemctl --no-reload enable aws-role-endpoint.service >/dev/null 2>&1 || :
        if [ -d /run/systemd/system ]; then
            # The tmpfs first: it refuses to mount over job directories.
            systemctl start aws-role-tmpfs.service >/dev/null 2>&1 || :
            systemctl start aws-role-refresher.service >/dev/null 2>&1 || :
            systemctl start aws-role-endpoint.service >/dev/null 2>&1 || :
        fi
    fi
fi
exit 0
