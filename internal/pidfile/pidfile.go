// Package pidfile records the pid of a running manager in its data dir, so
// that admin commands run beside it can signal it.
package pidfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Name is the pid file's name in the data dir.
const Name = "dorismanager.pid"

// Write records this process's pid in dir/Name and returns the function
// that removes the file again (only while it still holds this pid).
func Write(dir string) (func(), error) {
	path := filepath.Join(dir, Name)
	pid := os.Getpid()
	tmp, err := os.CreateTemp(dir, "."+Name+"-*")
	if err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", pid); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return func() {
		if got, err := Read(dir); err == nil && got == pid {
			_ = os.Remove(path)
		}
	}, nil
}

// Read returns the pid recorded in dir/Name; os.ErrNotExist (wrapped) when
// there is none.
func Read(dir string) (int, error) {
	raw, err := os.ReadFile(filepath.Join(dir, Name))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s holds %q, not a pid", filepath.Join(dir, Name), strings.TrimSpace(string(raw)))
	}
	return pid, nil
}

// ErrNotRunning: no live manager is recorded in the data dir.
var ErrNotRunning = errors.New("no running manager")

// Running returns the pid recorded in dir when that process is alive and
// is "dorismanager serve" (a stale file whose pid was reused by another
// program is not taken for the manager); ErrNotRunning otherwise.
func Running(dir string) (int, error) {
	pid, err := Read(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w: no %s in %s", ErrNotRunning, Name, dir)
	}
	if err != nil {
		return 0, err
	}
	if !isManager(pid) {
		return 0, fmt.Errorf("%w: pid %d from %s is not a running dorismanager serve", ErrNotRunning, pid, filepath.Join(dir, Name))
	}
	return pid, nil
}

// Hangup sends SIGHUP to the manager recorded in dir (see Running) and
// returns its pid.
func Hangup(dir string) (int, error) {
	pid, err := Running(dir)
	if err != nil {
		return 0, err
	}
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Signal(syscall.SIGHUP)
	}
	if err != nil {
		return 0, fmt.Errorf("signal the manager (pid %d): %w", pid, err)
	}
	return pid, nil
}
