package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is held (flock) by the one manager serving a data dir whose
// SQLite database it uses.
const lockFile = "serve.lock"

// lockDataDir makes this process the only manager serving dir's SQLite
// database, until release. The kernel drops the lock when the process
// ends, however it ends, so a killed manager leaves nothing to clean up.
// Holding it is what lets the runner take over the tasks left RUNNING at
// start without waiting for their leases (runner.Config.Alone).
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the data dir's lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another dorismanager serve uses the data dir %s: its SQLite database takes one manager (several managers share a PostgreSQL database, --db)", dir)
		}
		return nil, fmt.Errorf("lock the data dir %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
