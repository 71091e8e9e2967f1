#!/bin/sh
# dorismanager: stop the service before its files go (not on upgrade).
set -e
case "$1" in
remove | 0) ;; # deb remove; rpm erase
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl disable --now dorismanager.service || true
fi
exit 0
