#!/bin/sh
# dorismanager: systemd forgets the removed unit. The data dir
# (/var/lib/dorismanager: database, CA, secret key) and the user stay, also
# on purge: remove them by hand when the data is no longer wanted.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
