package sandbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/dorismanager/dorismanager/test/testhosts"
)

// PowerCut SIGKILLs every process of h but its init and sshd (which a
// rebooted host would start again on its own): the agent and every role.
// It returns the command names it killed, once they are all gone.
func PowerCut(ctx context.Context, h *testhosts.Host) ([]string, error) {
	pids, err := h.Pids(ctx)
	if err != nil {
		return nil, err
	}
	var killed []string
	var wait []int
	for _, p := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err != nil {
			continue // gone meanwhile
		}
		name := strings.TrimSpace(string(comm))
		if name == "tini" || name == "sshd" || name == "sshd-session" {
			continue
		}
		if err := syscall.Kill(p, syscall.SIGKILL); err == nil {
			killed = append(killed, name)
			wait = append(wait, p)
		}
	}
	for _, p := range wait {
		for testhosts.PidAlive(p) {
			select {
			case <-ctx.Done():
				return killed, fmt.Errorf("pid %d on %s survived SIGKILL: %w", p, h.Name, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return killed, nil
}
