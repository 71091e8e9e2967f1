#!/bin/sh
# dorismanager: the service's user and data dir, trust in the key the
# packaged role plugins are signed with, and the service started (first
# install) or restarted (upgrade) where systemd runs.
set -e

case "$1" in
configure) [ -z "$2" ] && first=1 || first=0 ;; # deb; $2: the version configured before
1) first=1 ;;                                    # rpm install
2) first=0 ;;                                    # rpm upgrade
*) exit 0 ;;
esac

if ! getent group dorismanager >/dev/null; then
	groupadd --system dorismanager
fi
if ! getent passwd dorismanager >/dev/null; then
	useradd --system --gid dorismanager --home-dir /var/lib/dorismanager --no-create-home \
		--shell /usr/sbin/nologin --comment "Doris Manager" dorismanager
fi
install -d -o dorismanager -g dorismanager -m 0750 /var/lib/dorismanager

for key in /usr/share/dorismanager/plugin-keys/*.pub; do
	[ -f "$key" ] || continue
	/usr/bin/dorismanager plugins --data-dir /var/lib/dorismanager trust "$key" >/dev/null
done

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ "$first" = 1 ]; then
		systemctl enable dorismanager.service || true
		systemctl start dorismanager.service || true
	else
		systemctl try-restart dorismanager.service || true
	fi
fi
exit 0
