package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
)

// Diagnose describes the sandbox for a test that failed or ran out of
// time: the tail of the manager's log and what runs on every host.
func (s *Sandbox) Diagnose() string {
	var b strings.Builder
	if log, err := os.ReadFile(s.ManagerLog()); err == nil {
		fmt.Fprintf(&b, "manager log %s (last 60 lines):\n%s\n", s.ManagerLog(), lastLines(string(log), 60))
	} else {
		fmt.Fprintf(&b, "manager log: %v\n", err)
	}
	b.WriteString(s.HostProcesses())
	return b.String()
}

// HostProcesses lists every host's processes (pid, state, command line).
// PIDs are shared between the hosts' namespaces, so a host's processes are
// those of its network namespace.
func (s *Sandbox) HostProcesses() string {
	if s.Hosts == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, h := range s.Hosts.Hosts {
		pids, err := h.Pids(ctx)
		if err != nil {
			fmt.Fprintf(&b, "processes of %s (%s): %v\n", h.Name, h.Addr, err)
			continue
		}
		fmt.Fprintf(&b, "processes of %s (%s):\n", h.Name, h.Addr)
		for _, p := range pids {
			fmt.Fprintf(&b, "  %7d %s %s\n", p, procState(p), procCmdline(p))
		}
	}
	return b.String()
}

func procState(pid int) string {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "?"
	}
	if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) {
		return string(st[i+2])
	}
	return "?"
}

func procCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "(gone)"
	}
	return clipLine(strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))), 200)
}

func clipLine(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	for i, seen := len(s)-1, 0; i >= 0; i-- {
		if s[i] == '\n' {
			if seen++; seen == n {
				return s[i+1:]
			}
		}
	}
	return s
}

// waitedErr says what a wait that ran out of time was waiting for, how
// long it waited, and the tasks as last seen.
func waitedErr(ctx context.Context, what string, since time.Time, ts []Task) error {
	scale, _ := deadline.Scale()
	return fmt.Errorf("%s: gave up after %s (%w; %s=%g scales every test deadline); the tasks as last seen:%s",
		what, time.Since(since).Round(100*time.Millisecond), ctx.Err(), deadline.Env, scale, Describe(ts))
}
