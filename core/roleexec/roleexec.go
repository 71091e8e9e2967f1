// Package roleexec runs the wizard's role tasks (INSTALL_FE, DEPLOY_BE_CONFIG,
// START_BROKER, ADD_BACKEND ...) by calling the cluster's pinned role plugin
// with an sdk.Host backed by the agent on the task's host. It is the only
// place where the core's tasks meet the plugin contract.
package roleexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// Plugins calls a cluster's role plugin (core/pluginhost.Manager).
type Plugins interface {
	Call(ctx context.Context, clusterID int64, role, method string, h sdk.Host, taskLog io.Writer, req sdk.Request) (sdk.Result, error)
}

// Agents finds the agent client for a host (core/agents.Registry).
type Agents interface {
	Client(ctx context.Context, clusterID int64, host string) (*agentclient.Client, error)
}

// Config wires an Executor.
type Config struct {
	Store   *store.Store
	Plugins Plugins
	Agents  Agents
	Logger  hclog.Logger
	// FEUser and FEPassword are the cluster admin account used for SQL;
	// a fresh Doris cluster has root with an empty password.
	FEUser     string
	FEPassword string
}

// Executor holds what role tasks share: the store, the plugins, the agent
// clients and one SQL pool per FE.
type Executor struct {
	st      *store.Store
	plugins Plugins
	agents  Agents
	log     hclog.Logger
	sql     *sqlPool
	http    *http.Client
}

// New returns an Executor.
func New(cfg Config) *Executor {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.FEUser == "" {
		cfg.FEUser = "root"
	}
	return &Executor{st: cfg.Store, plugins: cfg.Plugins, agents: cfg.Agents, log: cfg.Logger.Named("roleexec"),
		sql: newSQLPool(cfg.FEUser, cfg.FEPassword, cfg.Logger.Named("mysql")), http: &http.Client{Timeout: 10 * time.Second}}
}

// Close releases the SQL pools.
func (e *Executor) Close() { e.sql.close() }

// Actions returns the runner actions for every role task type.
func (e *Executor) Actions() runner.Actions {
	acts := runner.Actions{}
	for _, role := range []string{process.RoleFE, process.RoleBE, process.RoleBroker} {
		acts[process.InstallTask(role)] = action{e, opInstall}
		acts[process.DeployTask(role)] = action{e, opConfigure}
		acts[process.StartTask(role)] = action{e, opStart}
		acts[process.AddTask(role)] = action{e, opRegister}
	}
	return acts
}

type op int

const (
	opInstall op = iota
	opConfigure
	opStart
	opRegister
)

type action struct {
	e  *Executor
	op op
}

// Every role operation is written to be safe to run again (the plugin
// contract demands it), so an interrupted one is simply resumed.
func (action) Idempotent() bool { return true }

// input is the part of Task.Input a role task reads (core/process writes it).
type input struct {
	ClusterID     int64             `json:"clusterId"`
	Host          string            `json:"host"`
	Role          string            `json:"role"`
	FENodeType    string            `json:"feNodeType"`
	Master        bool              `json:"master"`
	PackageURL    string            `json:"packageUrl"`
	PackageSHA256 string            `json:"packageSha256"`
	BaseDir       string            `json:"baseDir"`
	AutoFix       bool              `json:"autoFix"`
	Conf          string            `json:"conf"`
	Params        map[string]string `json:"params"`
}

func (a action) Run(ctx context.Context, job runner.Job) (runner.Outcome, error) {
	var in input
	if err := json.Unmarshal([]byte(job.Task.Input), &in); err != nil {
		return runner.Outcome{}, fmt.Errorf("task %d has unreadable input: %w", job.Task.ID, err)
	}
	if in.Role == "" {
		in.Role = job.Task.TaskRole
	}
	e := a.e
	req, err := e.request(ctx, job.Task, in)
	if err != nil {
		return runner.Outcome{}, err
	}
	h, err := e.host(ctx, job.Task.ID, fmt.Sprintf("t%d-a%d", job.Task.ID, job.Task.Attempt), job.Log, in.ClusterID, in.Host, req.Cluster)
	if err != nil {
		return runner.Outcome{}, err
	}
	// Failures keep the host's task log path too: that is where an
	// operator looks first.
	fail := func(err error) (runner.Outcome, error) { return runner.Outcome{LogPath: h.HostLogPath()}, err }
	call := func(method string) (sdk.Result, error) {
		res, err := e.plugins.Call(ctx, in.ClusterID, in.Role, method, h, h.rawLogWriter(), req)
		if err != nil {
			return res, fmt.Errorf("%s %s on %s: %w", strings.ToLower(method), in.Role, in.Host, err)
		}
		return res, nil
	}
	var res sdk.Result
	switch a.op {
	case opInstall:
		pre, err := call("Precheck")
		if err != nil {
			return fail(err)
		}
		if res, err = call("Install"); err != nil {
			return fail(err)
		}
		res.Facts = merge(pre.Facts, res.Facts)
		if pre.Detail != "" {
			res.Detail = strings.TrimSpace(pre.Detail + "\n" + res.Detail)
		}
	case opConfigure:
		if res, err = call("Configure"); err != nil {
			return fail(err)
		}
		if err := e.recordPorts(ctx, in, res.Facts); err != nil {
			return fail(err)
		}
	case opStart:
		// The agent keeps the start command to start the role again after
		// a reboot (core/ops records stops and starts the same way).
		capture := CaptureStarts(h)
		if res, err = e.plugins.Call(ctx, in.ClusterID, in.Role, "Start", capture, h.rawLogWriter(), req); err != nil {
			return fail(fmt.Errorf("start %s on %s: %w", in.Role, in.Host, err))
		}
		if err := e.RecordDesired(ctx, Desired{ClusterID: in.ClusterID, Host: in.Host, Role: in.Role, State: wire.DesiredRunning,
			Order: RestoreOrder(in.Role, in.Master), Start: capture.Command()}); err != nil {
			h.Logf("warning: %v: the agent will not start it after a reboot", err)
		}
	case opRegister:
		if res, err = call("Register"); err != nil {
			return fail(err)
		}
		if err := e.st.DB().WithContext(ctx).Model(&store.AgentRole{}).
			Where("cluster_id = ? AND host = ? AND role = ?", in.ClusterID, in.Host, in.Role).
			Update("register", true).Error; err != nil {
			return fail(fmt.Errorf("record registration of %s on %s: %w", in.Role, in.Host, err))
		}
	}
	resp := res.Summary
	if res.Detail != "" {
		h.Logf("%s", res.Detail)
	}
	return runner.Outcome{Response: resp, Result: res.Facts, LogPath: h.HostLogPath()}, nil
}

// recordPorts keeps the effective ports Configure reported, for later
// steps (a follower needs the master's edit_log_port) and for roleList.
func (e *Executor) recordPorts(ctx context.Context, in input, facts map[string]string) error {
	ports := map[string]int{}
	for k, v := range facts {
		if name, ok := strings.CutPrefix(k, "port."); ok {
			var p int
			if _, err := fmt.Sscan(v, &p); err == nil && p > 0 && p < 65536 {
				ports[name] = p
			}
		}
	}
	b, _ := json.Marshal(ports)
	err := e.st.DB().WithContext(ctx).Model(&store.AgentRole{}).
		Where("cluster_id = ? AND host = ? AND role = ?", in.ClusterID, in.Host, in.Role).
		Update("ports", string(b)).Error
	if err != nil {
		return fmt.Errorf("record ports of %s on %s: %w", in.Role, in.Host, err)
	}
	return nil
}

// request builds the plugin request: this node and the cluster as the
// manager knows it now.
func (e *Executor) request(ctx context.Context, t store.Task, in input) (sdk.Request, error) {
	cl, err := e.clusterView(ctx, in.ClusterID, t.ProcessID)
	if err != nil {
		return sdk.Request{}, err
	}
	req := sdk.Request{TaskID: t.ID, Cluster: cl, PackageURL: in.PackageURL, PackageSHA256: in.PackageSHA256,
		Conf: in.Conf, AutoFix: in.AutoFix, Params: in.Params}
	found := false
	for _, n := range cl.Nodes {
		if n.Host == in.Host && n.Role == in.Role {
			req.Node, found = n, true
		}
	}
	if !found {
		return sdk.Request{}, fmt.Errorf("no %s is recorded on %s in cluster %d: run installService for it first", in.Role, in.Host, in.ClusterID)
	}
	if req.Node.InstallDir == "" {
		req.Node.InstallDir = in.BaseDir
	}
	req.Targets = []sdk.Node{req.Node}
	return req, nil
}

// clusterView lists every role instance of the cluster; nodes whose tasks
// were skipped in the given process are marked Skipped.
func (e *Executor) clusterView(ctx context.Context, clusterID, processID int64) (sdk.Cluster, error) {
	c, err := e.st.GetCluster(ctx, clusterID)
	if err != nil {
		return sdk.Cluster{}, fmt.Errorf("cluster %d: %w", clusterID, err)
	}
	roles, err := e.st.ListRoles(ctx, clusterID)
	if err != nil {
		return sdk.Cluster{}, fmt.Errorf("roles of cluster %d: %w", clusterID, err)
	}
	var skipped []store.Task
	if err := e.st.DB().WithContext(ctx).Where("process_id = ? AND skip = ?", processID, true).Find(&skipped).Error; err != nil {
		return sdk.Cluster{}, fmt.Errorf("skipped tasks of process %d: %w", processID, err)
	}
	skip := map[string]bool{}
	for _, t := range skipped {
		skip[t.Host+"/"+t.TaskRole] = true // TaskRole "" marks the agent: the whole host
	}
	out := sdk.Cluster{ID: c.ID, Name: c.Name}
	for _, r := range roles {
		n := sdk.Node{Host: r.Host, Role: r.Role, Labels: labels(r),
			InstallDir: baseDir(r.InstallDir, r.Role), Home: r.InstallDir, Skipped: skip[r.Host+"/"] || skip[r.Host+"/"+r.Role]}
		if r.Ports != "" {
			_ = json.Unmarshal([]byte(r.Ports), &n.Ports)
		}
		out.Nodes = append(out.Nodes, n)
	}
	sort.SliceStable(out.Nodes, func(i, j int) bool { return r0(out.Nodes[i]) && !r0(out.Nodes[j]) })
	return out, nil
}

// labels are the API's FE placement fields as the node labels Doris role
// plugins read.
func labels(r store.AgentRole) map[string]string {
	l := map[string]string{}
	if r.FENodeType != "" {
		l["feNodeType"] = r.FENodeType
	}
	if r.Master {
		l["master"] = "true"
	}
	if len(l) == 0 {
		return nil
	}
	return l
}

// r0 marks the designated master FE, listed first.
func r0(n sdk.Node) bool { return n.Labels["master"] == "true" }

// baseDir turns a role home (/opt/doris/fe) back into the operator's base.
func baseDir(home, role string) string {
	return strings.TrimSuffix(home, "/"+process.RoleDir(role))
}

// host builds the sdk.Host for one run; prefix makes its agent request ids
// unique to that run.
func (e *Executor) host(ctx context.Context, taskID int64, prefix string, log io.Writer, clusterID int64, host string, cl sdk.Cluster) (*agentHost, error) {
	client, err := e.AgentClient(ctx, clusterID, host)
	if err != nil {
		return nil, err
	}
	return e.HostWith(client, taskID, prefix, log, cl).(*agentHost), nil
}

// StopStarted stops every role a START_SERVICE task started (for back).
// Roles on hosts whose agent is gone are reported, not ignored.
func (e *Executor) StopStarted(ctx context.Context, tasks []store.Task) error {
	var errs []error
	for _, t := range tasks {
		if t.Status != store.StatusSuccess && t.Status != store.StatusFailure && t.Status != store.StatusRunning {
			continue
		}
		var in input
		if err := json.Unmarshal([]byte(t.Input), &in); err != nil {
			errs = append(errs, fmt.Errorf("task %d: unreadable input: %w", t.ID, err))
			continue
		}
		if in.Role == "" {
			in.Role = t.TaskRole
		}
		req, err := e.request(ctx, t, in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		prefix := fmt.Sprintf("t%d-a%d-stop-%d", t.ID, t.Attempt, time.Now().UnixNano())
		h, err := e.host(ctx, t.ID, prefix, io.Discard, in.ClusterID, in.Host, req.Cluster)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Recorded first, so the agent does not start it again at its next start.
		if err := e.RecordDesired(ctx, Desired{ClusterID: in.ClusterID, Host: in.Host, Role: in.Role, State: wire.DesiredStopped,
			Order: RestoreOrder(in.Role, in.Master)}); err != nil && !errors.Is(err, ErrNoDesiredState) {
			errs = append(errs, err)
			continue
		}
		if _, err := e.plugins.Call(ctx, in.ClusterID, in.Role, "Stop", h, io.Discard, req); err != nil {
			errs = append(errs, fmt.Errorf("stop %s on %s: %w", in.Role, in.Host, err))
		}
	}
	return errors.Join(errs...)
}

func merge(a, b map[string]string) map[string]string {
	if len(a) == 0 {
		return b
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// refreshBudget bounds how long roleList waits for the cluster's word.
const refreshBudget = 5 * time.Second

// RefreshRegistration asks each role's plugin for its Status, which
// carries the cluster's own view of membership ("registered"), and records
// it, so roleList shows what the cluster reports rather than what the
// manager once did. Roles whose host or cluster cannot be asked keep their
// recorded value.
func (e *Executor) RefreshRegistration(ctx context.Context, clusterID int64) error {
	ctx, cancel := context.WithTimeout(ctx, refreshBudget)
	defer cancel()
	cl, err := e.clusterView(ctx, clusterID, 0)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, n := range cl.Nodes {
		wg.Add(1)
		go func(n sdk.Node) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := e.refreshOne(ctx, cl, n); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *Executor) refreshOne(ctx context.Context, cl sdk.Cluster, n sdk.Node) error {
	prefix := fmt.Sprintf("status-%s-%s-%d", n.Host, n.Role, time.Now().UnixNano())
	h, err := e.host(ctx, 0, prefix, io.Discard, cl.ID, n.Host, cl)
	if err != nil {
		return err
	}
	req := sdk.Request{Node: n, Cluster: cl, Targets: []sdk.Node{n}}
	res, err := e.plugins.Call(ctx, cl.ID, n.Role, "Status", h, io.Discard, req)
	if err != nil {
		return fmt.Errorf("status of %s on %s: %w", n.Role, n.Host, err)
	}
	reg, ok := res.Facts["registered"]
	if !ok {
		return nil
	}
	return e.st.DB().WithContext(ctx).Model(&store.AgentRole{}).
		Where("cluster_id = ? AND host = ? AND role = ?", cl.ID, n.Host, n.Role).
		Update("register", reg == "YES").Error
}
