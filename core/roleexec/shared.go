package roleexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sync"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/sdk"
)

// What the day-2 operations (core/ops) and the status cache share with the
// wizard's role tasks: the cluster as plugins see it, the agent-backed
// sdk.Host, and the desired state of roles the agents restore after a reboot.

// Host is the sdk.Host of one host for one run of a task.
type Host interface {
	sdk.Host
	// HostLogPath is the task's own log file on the host ("" before an Exec).
	HostLogPath() string
	// RawLog is the task log for lines that carry their own times (a
	// plugin's hclog output).
	RawLog() io.Writer
	// CheckPackage makes downloads of the package at url check sums
	// (where the plugin passes none) and logs how it is checked.
	CheckPackage(url string, sums process.PackageSums)
}

// RawLog implements Host.
func (h *agentHost) RawLog() io.Writer { return h.rawLogWriter() }

// ClusterView is the cluster as plugins see it: every role instance, with
// those whose tasks were skipped in process processID (0: none) marked.
func (e *Executor) ClusterView(ctx context.Context, clusterID, processID int64) (sdk.Cluster, error) {
	return e.clusterView(ctx, clusterID, processID)
}

// NodeHost is the sdk.Host for one host of a cluster; prefix makes the
// agent request ids of the run unique (the same prefix for a resumed run,
// so the agent answers repeated calls from its records).
func (e *Executor) NodeHost(ctx context.Context, taskID int64, prefix string, log io.Writer, clusterID int64, host string, cl sdk.Cluster) (Host, error) {
	return e.host(ctx, taskID, prefix, log, clusterID, host, cl)
}

// HostWith is NodeHost over an agent client the caller keeps (the status
// cache, which asks every node every few seconds, reuses its connections).
func (e *Executor) HostWith(client *agentclient.Client, taskID int64, prefix string, log io.Writer, cl sdk.Cluster) Host {
	allowed := map[string]bool{}
	for _, n := range cl.Nodes {
		allowed[n.Host] = true
	}
	clusterID := cl.ID
	return &agentHost{client: client, taskID: itoa(taskID), taskNum: taskID, relay: e.relay, prefix: prefix, log: log, logMu: &sync.Mutex{},
		allowed: allowed, sql: e.sql, http: e.http,
		account: func(ctx context.Context) (Account, error) { return e.account(ctx, clusterID) }}
}

// AgentClient returns a client for the agent of (cluster, host).
func (e *Executor) AgentClient(ctx context.Context, clusterID int64, host string) (*agentclient.Client, error) {
	c, err := e.agents.Client(ctx, clusterID, host)
	if err != nil {
		return nil, fmt.Errorf("agent on %s: %w", host, err)
	}
	return c, nil
}

// RestoreOrder is a role's rank when an agent restores the roles of its
// host after a reboot: the master FE first, then other FEs, then the rest.
func RestoreOrder(role string, isMaster bool) int {
	switch {
	case role == process.RoleFE && isMaster:
		return 0
	case role == process.RoleFE:
		return 1
	}
	return 2
}

// Desired is a role's desired state for its agent to keep.
type Desired struct {
	ClusterID int64
	Host      string
	Role      string
	State     string       // wire.DesiredRunning, DesiredStopped or DesiredAbsent
	Order     int          // RestoreOrder
	Start     *sdk.Command // the role's detached start command; nil keeps the recorded one
	PidFile   string       // absolute; "" keeps the recorded one
}

// RecordDesired tells the agent of d.Host the state d.Role should be in:
// a role recorded as running is started by the agent when it starts (after
// a reboot), with the command that last started it.
func (e *Executor) RecordDesired(ctx context.Context, d Desired) error {
	c, err := e.AgentClient(ctx, d.ClusterID, d.Host)
	if err != nil {
		return err
	}
	w := wire.DesiredRole{Role: d.Role, State: d.State, Order: d.Order, PidFile: d.PidFile}
	if s := d.Start; s != nil {
		w.Start = &wire.StartCommand{Argv: s.Argv, Env: s.Env, Dir: s.Dir, NoFile: s.NoFile}
	}
	if err := c.SetDesired(ctx, w); err != nil {
		var se *agentclient.StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			return fmt.Errorf("%w (%s): reinstall it with installAgent", ErrNoDesiredState, d.Host)
		}
		return fmt.Errorf("record on %s that %s should be %s: %w", d.Host, d.Role, d.State, err)
	}
	return nil
}

// ErrNoDesiredState: the agent predates desired role states; it cannot
// restore roles after a reboot until it is reinstalled.
var ErrNoDesiredState = errors.New("the agent is too old to keep desired role states")

// PidFile is a role's pid file on its host: its home joined with the
// plugin's Info.PidFile ("" when either is unknown).
func PidFile(home, infoPidFile string) string {
	if home == "" || infoPidFile == "" {
		return ""
	}
	return path.Join(home, infoPidFile)
}

// StartCapture is an sdk.Host that remembers the last detached command
// that started successfully through it: a role's start command, which
// the agent keeps to start the role again after a reboot.
type StartCapture struct {
	sdk.Host
	mu  sync.Mutex
	cmd *sdk.Command
}

// CaptureStarts wraps h.
func CaptureStarts(h sdk.Host) *StartCapture { return &StartCapture{Host: h} }

// Exec implements sdk.Host.
func (c *StartCapture) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	res, err := c.Host.Exec(ctx, cmd)
	if err == nil && cmd.Detach && res.ExitCode == 0 {
		kept := cmd
		kept.Stdin, kept.Timeout = nil, 0
		c.mu.Lock()
		c.cmd = &kept
		c.mu.Unlock()
	}
	return res, err
}

// Command is the captured start command, nil when none ran.
func (c *StartCapture) Command() *sdk.Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd
}

// ProbeHost is the sdk.Host for read-only calls (Status) repeated every
// few seconds: its commands run as agent probes, neither recorded nor
// written to a task log, and it refuses to write files, download or start
// anything.
func (e *Executor) ProbeHost(client *agentclient.Client, cl sdk.Cluster) sdk.Host {
	return probeHost{e.HostWith(client, 0, "probe", io.Discard, cl).(*agentHost)}
}

type probeHost struct{ *agentHost }

// errProbe is what a probe answers a call that would change the host.
var errProbe = errors.New("a status probe changes nothing on the host")

func (p probeHost) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	if cmd.Detach {
		return sdk.ExecResult{}, errProbe
	}
	return p.client.Exec(ctx, agentclient.ExecRequest{RequestID: p.nextID("exec"), TaskID: "probe", Command: cmd, Probe: true}, io.Discard)
}

func (p probeHost) WriteFile(context.Context, string, []byte, uint32) error { return errProbe }

func (p probeHost) Download(context.Context, sdk.Download) (sdk.DownloadResult, error) {
	return sdk.DownloadResult{}, errProbe
}

// pidFile is where the node's role keeps its pid (its plugin's
// Info.PidFile under the node's home), "" when the plugin does not say.
func (e *Executor) pidFile(ctx context.Context, role sdk.Remote, n sdk.Node) string {
	info, err := role.Info(ctx)
	if err != nil {
		return ""
	}
	return PidFile(n.Home, info.PidFile)
}
