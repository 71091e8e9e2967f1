package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ManagerPID is the pid of the running manager (0 when none runs). The
// manager leads its own process group, its plugins included, so it goes
// on running when the program that started it exits.
func (s *Sandbox) ManagerPID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manager == nil || s.manager.Process == nil {
		return 0
	}
	return s.manager.Process.Pid
}

// StopDetachedManager stops a manager that another process started (see
// ManagerPID): SIGTERM to its process group, a wait of up to grace for it to
// exit, then SIGKILL to whatever of the group is left. binary is the path it
// was started from; a pid that now belongs to another program is left alone.
// A pid that no longer exists is not an error.
func StopDetachedManager(pid int, binary string, grace time.Duration) error {
	if pid <= 1 {
		return fmt.Errorf("refusing to stop pid %d", pid)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("manager pid %d: %w", pid, err)
	}
	want, _ := filepath.Abs(binary)
	if exe != want && exe != want+" (deleted)" {
		return fmt.Errorf("pid %d runs %s, not %s: left alone", pid, exe, want)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of the manager %d: %w", pid, err)
	}
	defer unix.Close(fd)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	// The pidfd becomes readable when the process exits, reaped or not:
	// a wait without polling on a process that is not our child.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(grace)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n > 0 {
			break
		}
	}
	// Plugins that outlived their parent, or a manager that ignored SIGTERM.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return nil
}
