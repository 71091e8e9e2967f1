// Package ops runs the day-2 operations of a cluster (stop, start,
// restart, scale-in, upgrade, config change, destroy). Each operation is a
// process of its own (store.KindOperation) whose tasks the runner executes
// like the wizard's, so currentTasks, task info and log, retry and skip
// work for them unchanged. One operation at a time per cluster, and none
// while a wizard process of the cluster runs a task.
package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// Operations (Process.ProcessType and Task.ProcessType).
const (
	OpStop    = "STOP_CLUSTER"
	OpStart   = "START_CLUSTER"
	OpRestart = "RESTART"
	OpScaleIn = "SCALE_IN"
	OpUpgrade = "UPGRADE"
	OpConfig  = "CONFIG"
	OpDestroy = "DESTROY"
)

// Task types of operations. Every task but DESTROY_CLUSTER acts on one
// role of one host.
const (
	TaskStop        = "STOP_NODE"
	TaskStart       = "START_NODE"
	TaskRestart     = "RESTART_NODE"
	TaskScaleIn     = "SCALE_IN_NODE"
	TaskUpgrade     = "UPGRADE_NODE"
	TaskReconfigure = "RECONFIGURE_NODE"
	TaskRemove      = "REMOVE_NODE"
	TaskRemoveAgent = "REMOVE_AGENT"
	TaskDestroy     = "DESTROY_CLUSTER"
)

// Process statuses of an operation.
const (
	StatusRunning = "RUNNING"
	StatusSuccess = "SUCCESS"
)

// Input is Task.Input of an operation task.
type Input struct {
	ClusterID int64  `json:"clusterId"`
	Host      string `json:"host,omitempty"`
	Role      string `json:"role,omitempty"`
	// Order is the role's rank when its agent restores it after a reboot
	// (the FE master 0, other FEs 1, the rest 2).
	Order int `json:"order"`
	// Rolling (RESTART_NODE): wait until the cluster reports the node alive
	// before the task ends, so the next node waits for it.
	Rolling bool `json:"rolling,omitempty"`
	Force   bool `json:"force,omitempty"` // SCALE_IN_NODE: Unregister(Force)
	Purge   bool `json:"purge,omitempty"` // SCALE_IN_NODE, REMOVE_NODE: Remove(Purge)
	// PackageURL and its checksums (process.PackageSums): UPGRADE_NODE's
	// new version.
	PackageURL        string `json:"packageUrl,omitempty"`
	PackageSHA256     string `json:"packageSha256,omitempty"`
	PackageSHA512     string `json:"packageSha512,omitempty"`
	PackageSumFrom    string `json:"packageSumFrom,omitempty"`
	PackageUnverified string `json:"packageUnverified,omitempty"`
	Conf              string `json:"conf,omitempty"`   // RECONFIGURE_NODE: the whole new config text
	DryRun            bool   `json:"dryRun,omitempty"` // RECONFIGURE_NODE: report only
	// IfRestartNeeded (RESTART_NODE of a config change): the node restarts
	// only if the RECONFIGURE_NODE task of the same node and process
	// reported sdk.FactRestartNeeded.
	IfRestartNeeded bool `json:"ifRestartNeeded,omitempty"`
}

// Node names one role on one host of a cluster.
type Node struct {
	Host string `json:"host"`
	Role string `json:"role"`
}

func (n Node) String() string { return n.Role + " on " + n.Host }

// Config wires an Engine.
type Config struct {
	Store *store.Store
	// Catalogue returns what each role's plugin can do for a cluster.
	Catalogue func(ctx context.Context, clusterID int64) (map[string]sdk.Info, error)
	// Master returns the cluster's master FE host as last seen by the
	// status cache; ok is false when it is not known.
	Master func(clusterID int64) (host string, ok bool)
	// Notify wakes the runner after tasks were committed.
	Notify func()
	Logger hclog.Logger
	// Checksums looks up the checksum published beside an upgrade's
	// package when the request gives none (core/pkgsum.Fetcher); nil looks
	// nothing up.
	Checksums process.Checksums
	// Sealer seals the password of an upgrade's package URL before it is
	// stored (core/secret.Box); nil refuses package URLs with a password.
	Sealer secret.Sealer
}

// Engine validates operation requests and records their process and
// tasks. Like the wizard's engine it keeps no state: the store is the truth.
type Engine struct {
	st        *store.Store
	catalogue func(ctx context.Context, clusterID int64) (map[string]sdk.Info, error)
	master    func(int64) (string, bool)
	notify    func()
	log       hclog.Logger
	sums      process.Checksums
	sealer    secret.Sealer
}

// New returns an Engine.
func New(cfg Config) *Engine {
	e := &Engine{st: cfg.Store, catalogue: cfg.Catalogue, master: cfg.Master, notify: cfg.Notify, log: cfg.Logger, sums: cfg.Checksums,
		sealer: cfg.Sealer}
	if e.notify == nil {
		e.notify = func() {}
	}
	if e.master == nil {
		e.master = func(int64) (string, bool) { return "", false }
	}
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	return e
}

func invalid(format string, args ...any) error {
	return &process.Error{Kind: process.KindInvalid, Msg: fmt.Sprintf(format, args...)}
}
func notFound(format string, args ...any) error {
	return &process.Error{Kind: process.KindNotFound, Msg: fmt.Sprintf(format, args...)}
}
func conflict(format string, args ...any) error {
	return &process.Error{Kind: process.KindConflict, Msg: fmt.Sprintf(format, args...)}
}

// plan is what an operation's validation produced: the tasks to record
// and the package URL (its password sealed) of an upgrade.
type plan struct {
	tasks      []store.Task
	packageURL string
}

// create checks that the cluster can take an operation now, lets build
// validate the request against the cluster and plan its tasks, and records
// the process and its tasks in one transaction.
func (e *Engine) create(ctx context.Context, userID, clusterID int64, op string, build func(c cluster) (plan, error)) (int64, error) {
	if clusterID <= 0 {
		return 0, invalid("clusterId %d in the path must be a positive number", clusterID)
	}
	c, err := e.load(ctx, clusterID)
	if err != nil {
		return 0, err
	}
	if err := e.CheckIdle(ctx, clusterID); err != nil {
		return 0, err
	}
	pl, err := build(c)
	if err != nil {
		return 0, err
	}
	if len(pl.tasks) == 0 {
		return 0, invalid("the request leaves nothing to do")
	}
	var id int64
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		p := store.Process{ClusterID: clusterID, UserID: userID, Kind: store.KindOperation, ProcessType: op,
			Status: StatusRunning, PackageURL: pl.packageURL}
		if err := tx.CreateProcess(ctx, &p); err != nil {
			if store.IsDuplicate(err) {
				return conflict("cluster %d got another operation at the same time: wait for it to end", clusterID)
			}
			return fmt.Errorf("record %s of cluster %d: %w", op, clusterID, err)
		}
		id = p.ID
		for i := range pl.tasks {
			pl.tasks[i].ProcessID, pl.tasks[i].ProcessType = p.ID, op
			pl.tasks[i].Status = store.StatusSubmitted
		}
		return tx.CreateTasks(ctx, pl.tasks)
	})
	if err != nil {
		return 0, err
	}
	e.log.Info("operation created", "process", id, "cluster", clusterID, "operation", op, "tasks", len(pl.tasks))
	e.notify()
	return id, nil
}

// CheckIdle refuses (409, naming the process) while the cluster has an
// unfinished operation or a wizard process with a task running or waiting
// to run. An operation whose tasks are all done is settled first.
func (e *Engine) CheckIdle(ctx context.Context, clusterID int64) error {
	p, err := e.st.OpenOperationOfCluster(ctx, clusterID)
	switch {
	case err == nil:
		if done, err := e.Settle(ctx, p.ID); err != nil {
			return err
		} else if !done {
			return conflict("cluster %d is busy with operation %d (%s): wait for it to end, or retry or skip its failed task, or end it with POST /api/process/installComplete/%d",
				clusterID, p.ID, p.ProcessType, p.ID)
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("look for a running operation of cluster %d: %w", clusterID, err)
	}
	t, err := e.st.ActiveWizardTask(ctx, clusterID)
	switch {
	case err == nil:
		return conflict("cluster %d is busy with wizard process %d: its task %d (%s on %s) is %s; wait for it to end",
			clusterID, t.ProcessID, t.ID, t.TaskType, t.Host, t.Status)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("look for a running wizard task of cluster %d: %w", clusterID, err)
	}
	return nil
}

// CheckNoOperation refuses (409, naming it) while the cluster has an
// unfinished operation: the wizard's guard, so a scale-out does not run
// into an upgrade.
func (e *Engine) CheckNoOperation(ctx context.Context, clusterID int64) error {
	p, err := e.st.OpenOperationOfCluster(ctx, clusterID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for a running operation of cluster %d: %w", clusterID, err)
	}
	if done, err := e.Settle(ctx, p.ID); err != nil || done {
		return err
	}
	return conflict("cluster %d is busy with operation %d (%s): wait for it to end, or end it with POST /api/process/installComplete/%d",
		clusterID, p.ID, p.ProcessType, p.ID)
}

// Settle finishes an operation whose tasks are all SUCCESS or skipped and
// reports whether it is finished.
func (e *Engine) Settle(ctx context.Context, processID int64) (bool, error) {
	p, err := e.st.GetProcess(ctx, processID)
	if err != nil {
		return false, fmt.Errorf("load process %d: %w", processID, err)
	}
	if p.Finish {
		return true, nil
	}
	if p.Kind != store.KindOperation {
		return false, nil
	}
	tasks, err := e.st.TasksOfProcess(ctx, processID)
	if err != nil {
		return false, fmt.Errorf("tasks of process %d: %w", processID, err)
	}
	for _, t := range tasks {
		if !t.Skip && t.Status != store.StatusSuccess {
			return false, nil
		}
	}
	if _, err := e.st.FinishProcess(ctx, processID, StatusSuccess); err != nil {
		return false, err
	}
	e.log.Info("operation finished", "process", processID, "operation", p.ProcessType)
	return true, nil
}

// TaskEnded settles the operation of a task that just ended; it is the
// runner's OnTaskEnd. It returns the cluster of that operation (0 for
// tasks of the wizard).
func (e *Engine) TaskEnded(ctx context.Context, taskID int64) int64 {
	t, err := e.st.GetTask(ctx, taskID)
	if err != nil {
		e.log.Warn("settle operation", "task", taskID, "error", err)
		return 0
	}
	p, err := e.st.GetProcess(ctx, t.ProcessID)
	if err != nil || p.Kind != store.KindOperation {
		return 0
	}
	if _, err := e.Settle(ctx, p.ID); err != nil {
		e.log.Warn("settle operation", "process", p.ID, "error", err)
	}
	return p.ClusterID
}

// cluster is what validation needs to know of a cluster.
type cluster struct {
	store.Cluster
	roles  []store.AgentRole
	agents []store.Agent
	master string // the master FE host: as last seen, else as recorded
}

func (c cluster) role(n Node) (store.AgentRole, bool) {
	for _, r := range c.roles {
		if r.Host == n.Host && r.Role == n.Role {
			return r, true
		}
	}
	return store.AgentRole{}, false
}

func (e *Engine) load(ctx context.Context, id int64) (cluster, error) {
	c, err := e.st.GetCluster(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return cluster{}, notFound("cluster %d does not exist", id)
	}
	if err != nil {
		return cluster{}, fmt.Errorf("load cluster %d: %w", id, err)
	}
	if c.DestroyedAt != nil {
		return cluster{}, conflict("cluster %d (%s) was destroyed", id, c.Name)
	}
	out := cluster{Cluster: c}
	if out.roles, err = e.st.ListRoles(ctx, id); err != nil {
		return cluster{}, fmt.Errorf("roles of cluster %d: %w", id, err)
	}
	if out.agents, err = e.st.ListAgents(ctx, id); err != nil {
		return cluster{}, fmt.Errorf("agents of cluster %d: %w", id, err)
	}
	if h, ok := e.master(id); ok {
		out.master = h
	} else {
		for _, r := range out.roles {
			if r.Role == process.RoleFE && r.Master {
				out.master = r.Host
			}
		}
	}
	return out, nil
}

// nodes validates a request's nodes against the cluster: known, distinct,
// with roles in upper case. None means every node of the cluster.
func (c cluster) nodes(field string, in []Node) ([]store.AgentRole, error) {
	if len(in) == 0 {
		if len(c.roles) == 0 {
			return nil, invalid("cluster %d has no role installed", c.ID)
		}
		return c.roles, nil
	}
	if len(in) > process.MaxHosts {
		return nil, invalid("%s: at most %d entries", field, process.MaxHosts)
	}
	seen := map[Node]bool{}
	out := make([]store.AgentRole, 0, len(in))
	for i, n := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		n.Role = strings.ToUpper(strings.TrimSpace(n.Role))
		switch {
		case n.Host == "":
			return nil, invalid("%s.host is required", f)
		case n.Role == "":
			return nil, invalid("%s.role is required (FE, BE, BROKER...)", f)
		case seen[n]:
			return nil, invalid("%s: %s is listed twice", f, n)
		}
		seen[n] = true
		r, ok := c.role(n)
		if !ok {
			return nil, invalid("%s: cluster %d has no %s (see roleList)", f, c.ID, n)
		}
		out = append(out, r)
	}
	return out, nil
}

// capable checks that the plugin of every role in rs announces capability.
func (e *Engine) capable(ctx context.Context, clusterID int64, rs []store.AgentRole, capability, what string) error {
	if e.catalogue == nil {
		return fmt.Errorf("no role catalogue is configured: cannot tell which roles can %s", what)
	}
	cat, err := e.catalogue(ctx, clusterID)
	if err != nil {
		return fmt.Errorf("role plugins of cluster %d: %w", clusterID, err)
	}
	for _, r := range rs {
		info, ok := cat[r.Role]
		if !ok {
			return invalid("no plugin is loaded for role %s: install it (dorismanager plugins install) and rescan", r.Role)
		}
		if !hasCapability(info, capability) {
			return invalid("the %s plugin (%s %s) cannot %s: leave %s out of the request", r.Role, info.Name, info.Version, what, r.Host)
		}
	}
	return nil
}

func hasCapability(info sdk.Info, c string) bool {
	for _, x := range info.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}
