package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dorismanager/dorismanager/test/testhosts"
)

// OnHost maps an absolute path inside a host's /opt to the real path in
// the root namespace (each host has its own /opt).
func OnHost(h *testhosts.Host, path string) (string, error) {
	rel, ok := strings.CutPrefix(path, "/opt/")
	if !ok {
		return "", fmt.Errorf("%s is not below /opt, the only private tree of a test host", path)
	}
	return filepath.Join(h.Root, rel), nil
}

// AgentHome is where sshboot installs the agent below InstallDir.
const AgentHome = InstallDir + "/agent"

// AgentPid finds the doris-agent process of h: the pid its pid file names,
// checked to be a live process in h's network namespace whose command line
// is the agent with h's config.
func AgentPid(ctx context.Context, h *testhosts.Host) (int, error) {
	pidFile, err := OnHost(h, AgentHome+"/data/agent.pid")
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("agent pid file on %s: %w", h.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("agent pid file on %s: %q", h.Name, b)
	}
	pids, err := h.Pids(ctx)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(pids, pid) || !testhosts.PidAlive(pid) {
		return 0, fmt.Errorf("the agent on %s (pid %d from its pid file) is not running", h.Name, pid)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, err
	}
	args := strings.Join(strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00"), " ")
	if !strings.Contains(args, "doris-agent") || !strings.Contains(args, AgentHome+"/conf/agent.json") {
		return 0, fmt.Errorf("pid %d on %s is not the agent: %s", pid, h.Name, args)
	}
	return pid, nil
}

// KillAgent SIGKILLs the agent of h and waits until it is gone; it
// returns the pid it killed.
func KillAgent(ctx context.Context, h *testhosts.Host) (int, error) {
	pid, err := AgentPid(ctx, h)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("kill agent %d on %s: %w", pid, h.Name, err)
	}
	for testhosts.PidAlive(pid) {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("agent %d on %s still alive after SIGKILL: %w", pid, h.Name, ctx.Err())
		case <-time.After(5 * time.Millisecond): // a SIGKILLed process dies promptly
		}
	}
	return pid, nil
}

// StartAgent starts the agent installed on h again, the way an operator
// would on a host without systemd (and the way sshboot starts it): its own
// session, its installed binary and config, output appended to its log.
func StartAgent(ctx context.Context, h *testhosts.Host) error {
	_, err := h.Exec(ctx, "bash", "-c",
		// Only the agent goes to the background, with its own output, so
		// no shell stays behind holding Exec's pipe.
		`cd "$1" || exit 1; setsid nohup "$1/bin/doris-agent" -config "$1/conf/agent.json" >>"$1/log/agent.out" 2>&1 </dev/null &`,
		"start-agent", AgentHome)
	return err
}
