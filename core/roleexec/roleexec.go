// Package roleexec runs the wizard's role tasks (INSTALL_<ROLE>,
// DEPLOY_<ROLE>_CONFIG, START_<ROLE>, ADD_<ROLE>, for any role with a
// plugin) by calling the cluster's role plugin with an sdk.Host backed by
// the agent on the task's host. It is the only place where the core's
// tasks meet the plugin contract.
package roleexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/pkgrelay"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/sdk"
)

// Roles hands out the plugin a cluster uses for a role
// (core/pluginhost.Manager); the plugin's log lines during a call go to
// taskLog too.
type Roles interface {
	Role(ctx context.Context, clusterID int64, role string, taskLog io.Writer) (sdk.Remote, error)
}

// Agents finds the agent client for a host (core/agents.Registry).
type Agents interface {
	Client(ctx context.Context, clusterID int64, host string) (*agentclient.Client, error)
}

// Account is a cluster's admin account for SQL. It is a secret: never
// logged, never in an error.
type Account struct {
	User     string
	Password string
}

// DefaultAccount is a fresh Doris cluster's admin: root, empty password.
var DefaultAccount = Account{User: "root"}

// Accounts gives each cluster's admin account as recorded now
// (core/clusteradmin.Keeper); it is asked before every SQL call, so a
// changed account is used at once.
type Accounts interface {
	Account(ctx context.Context, clusterID int64) (Account, error)
}

// Config wires an Executor.
type Config struct {
	Store  *store.Store
	Roles  Roles
	Agents Agents
	Logger hclog.Logger
	// Accounts gives the admin account of each cluster; nil uses
	// DefaultAccount for every cluster.
	Accounts Accounts
	// Relay, if set, fetches each task's package once on the manager and
	// has the agents download it from there (serve --package-relay).
	Relay Relay
	// Secrets opens the sealed password of a task's package URL
	// (core/secret.Box); nil fails the tasks whose URL has one.
	Secrets secret.Opener
}

// Relay is the manager's package relay (core/pkgrelay.Relay).
type Relay interface {
	Fetch(ctx context.Context, url string, want pkgrelay.Sums, taskID int64) (pkgrelay.Entry, error)
}

// Executor holds what role tasks share: the store, the plugins, the agent
// clients and one SQL pool per FE and account.
type Executor struct {
	st       *store.Store
	roles    Roles
	agents   Agents
	accounts Accounts
	log      hclog.Logger
	sql      *sqlPool
	http     *http.Client
	relay    Relay
	secrets  secret.Opener
}

// New returns an Executor.
func New(cfg Config) *Executor {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Executor{st: cfg.Store, roles: cfg.Roles, agents: cfg.Agents, accounts: cfg.Accounts, log: cfg.Logger.Named("roleexec"),
		sql: newSQLPool(cfg.Logger.Named("mysql")), http: &http.Client{Timeout: 10 * time.Second}, relay: cfg.Relay,
		secrets: cfg.Secrets}
}

// OpenPackageURL is a task's package URL as stored (its password sealed,
// core/process.SealPackageURL) with the password opened, as the plugin,
// the checksums and the relay use it. Its errors hide the password.
func (e *Executor) OpenPackageURL(stored string) (string, error) {
	url, err := secret.OpenURLPassword(e.secrets, stored)
	if err != nil {
		return "", fmt.Errorf("the task's package URL: %w", err)
	}
	return url, nil
}

// account is the admin account of a cluster now.
func (e *Executor) account(ctx context.Context, clusterID int64) (Account, error) {
	if e.accounts == nil {
		return DefaultAccount, nil
	}
	a, err := e.accounts.Account(ctx, clusterID)
	if err != nil {
		return Account{}, fmt.Errorf("admin account of cluster %d: %w", clusterID, err)
	}
	return a, nil
}

// Close releases the SQL pools.
func (e *Executor) Close() { e.sql.close() }

// Resolve returns the runner action of a role task type (runner.Config.Resolve):
// the wizard names them after roles, and a role's plugin may be installed
// while the manager runs.
func (e *Executor) Resolve(taskType string) (runner.Action, bool) {
	step, ok := process.RoleTaskStep(taskType)
	if !ok {
		return nil, false
	}
	return action{e, map[int]op{process.StepInstallService: opInstall, process.StepDeployConfig: opConfigure,
		process.StepStartService: opStart, process.StepBuildCluster: opRegister}[step]}, true
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

func (a action) Run(ctx context.Context, job runner.Job) (runner.Outcome, error) {
	in, err := task.RoleOf(job.Task)
	if err != nil {
		return runner.Outcome{}, err
	}
	e := a.e
	// The stored URL's password is sealed; the plugin, the checksums
	// and the relay get the URL with its password.
	if in.PackageURL, err = e.OpenPackageURL(in.PackageURL); err != nil {
		return runner.Outcome{}, err
	}
	req, err := e.request(ctx, job.Task, in)
	if err != nil {
		return runner.Outcome{}, err
	}
	h, err := e.host(ctx, job.Task.ID, fmt.Sprintf("t%d-a%d", job.Task.ID, job.Task.Attempt), job.Log, in.ClusterID, in.Host, req.Cluster)
	if err != nil {
		return runner.Outcome{}, err
	}
	if a.op == opInstall && in.PackageURL != "" {
		h.CheckPackage(in.PackageURL, process.PackageSums{SHA256: in.PackageSHA256, SHA512: in.PackageSHA512,
			From: in.PackageSumFrom, Unverified: in.PackageUnverified})
	}
	// Failures keep the host's task log path too: that is where an
	// operator looks first.
	fail := func(err error) (runner.Outcome, error) { return runner.Outcome{LogPath: h.HostLogPath()}, err }
	role, err := e.roles.Role(ctx, in.ClusterID, in.Role, h.rawLogWriter())
	if err != nil {
		return fail(fmt.Errorf("%s plugin of cluster %d: %w", in.Role, in.ClusterID, err))
	}
	call := func(name string, method func(context.Context, sdk.Host, sdk.Request) (sdk.Result, error)) (sdk.Result, error) {
		res, err := method(ctx, h, req)
		if err != nil {
			return res, fmt.Errorf("%s %s on %s: %w", name, in.Role, in.Host, err)
		}
		return res, nil
	}
	key := store.RoleKey{ClusterID: in.ClusterID, Host: in.Host, Role: in.Role}
	var res sdk.Result
	var ports map[string]int // replaced when set
	switch a.op {
	case opInstall:
		pre, err := call("precheck", role.Precheck)
		if err != nil {
			return fail(err)
		}
		if res, err = call("install", role.Install); err != nil {
			return fail(err)
		}
		res.Facts = merge(pre.Facts, res.Facts)
		if pre.Detail != "" {
			res.Detail = strings.TrimSpace(pre.Detail + "\n" + res.Detail)
		}
	case opConfigure:
		if res, err = call("configure", role.Configure); err != nil {
			return fail(err)
		}
		// The effective ports, for later steps (a follower needs the
		// master's edit_log_port) and for roleList.
		ports = res.Facts.Ports()
		if ports == nil {
			ports = map[string]int{}
		}
	case opStart:
		// The agent keeps the start command to start the role again after
		// a reboot (core/ops records stops and starts the same way).
		capture := CaptureStarts(h)
		if res, err = role.Start(ctx, capture, req); err != nil {
			return fail(fmt.Errorf("start %s on %s: %w", in.Role, in.Host, err))
		}
		if err := e.RecordDesired(ctx, Desired{ClusterID: in.ClusterID, Host: in.Host, Role: in.Role, State: wire.DesiredRunning,
			Order: RestoreOrder(in.Role, in.Labels[process.LabelMaster] == "true"), Start: capture.Command(),
			PidFile: e.pidFile(ctx, role, req.Node)}); err != nil {
			h.Logf("warning: %v: the agent will not start it after a reboot", err)
		}
	case opRegister:
		if res, err = call("register", role.Register); err != nil {
			return fail(err)
		}
		if err := e.st.SetRegistered(ctx, key, true); err != nil {
			return fail(err)
		}
	}
	if err := e.recordFacts(ctx, key, req.Node.Facts, res.Facts, ports, h); err != nil {
		return fail(err)
	}
	if res.Detail != "" {
		h.Logf("%s", res.Detail)
	}
	return runner.Outcome{Response: res.Summary, Result: res.Facts, LogPath: h.HostLogPath()}, nil
}

// Bounds of the facts kept for one node: a plugin reporting more has the
// rest dropped (and told in the task log), not the task failed.
const (
	maxFacts     = 256
	maxFactKey   = 128
	maxFactValue = 4096
)

// recordFacts keeps what the plugin reported for the node, to hand it back
// in Node.Facts of later calls. With ports, they replace the node's ports,
// and port facts the node no longer reports are forgotten.
func (e *Executor) recordFacts(ctx context.Context, k store.RoleKey, old, facts sdk.Facts, ports map[string]int, log interface{ Logf(string, ...any) }) error {
	keep := sdk.Facts{}
	for _, name := range sortedKeys(facts) {
		v := facts[name]
		switch {
		case len(name) > maxFactKey || len(v) > maxFactValue:
			log.Logf("fact %.40q not kept: keys are at most %d bytes, values %d", name, maxFactKey, maxFactValue)
		case len(keep) == maxFacts:
			log.Logf("fact %.40q not kept: at most %d facts are kept per node", name, maxFacts)
		default:
			keep[name] = redact.String(v) // a package URL's password is not kept
		}
	}
	if ports != nil {
		for name := range old {
			if _, reported := keep[name]; !reported && strings.HasPrefix(name, sdk.PortFact("")) {
				keep[name] = "" // forget it
			}
		}
	}
	return e.st.RecordFacts(ctx, k, keep, ports)
}

// request builds the plugin request: this node and the cluster as the
// manager knows it now.
func (e *Executor) request(ctx context.Context, t store.Task, in task.Role) (sdk.Request, error) {
	cl, err := e.clusterView(ctx, in.ClusterID, t.ProcessID)
	if err != nil {
		return sdk.Request{}, err
	}
	req := sdk.Request{TaskID: t.ID, Cluster: cl, PackageURL: in.PackageURL, PackageSHA256: in.PackageSHA256,
		PackageSHA512: in.PackageSHA512, Conf: in.Conf, AutoFix: in.AutoFix, Params: in.Params}
	found := false
	for _, n := range cl.Nodes {
		if n.Host == in.Host && n.Role == in.Role {
			req.Node, found = n, true
		}
	}
	if !found {
		return sdk.Request{}, fmt.Errorf("no %s is recorded on %s in cluster %d: run installService for it first", in.Role, in.Host, in.ClusterID)
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
	skipped, err := e.st.SkippedTasks(ctx, processID)
	if err != nil {
		return sdk.Cluster{}, err
	}
	skip := map[string]bool{}
	for _, t := range skipped {
		skip[t.Host+"/"+t.TaskRole] = true // TaskRole "" marks the agent: the whole host
	}
	out := sdk.Cluster{ID: c.ID, Name: c.Name}
	for _, r := range roles {
		out.Nodes = append(out.Nodes, node(r, skip[r.Host+"/"] || skip[r.Host+"/"+r.Role]))
	}
	master := func(n sdk.Node) bool { return n.Labels[process.LabelMaster] == "true" }
	sort.SliceStable(out.Nodes, func(i, j int) bool { return master(out.Nodes[i]) && !master(out.Nodes[j]) })
	return out, nil
}

// node is a recorded role instance as plugins see it. Its home was made
// by process.Home, one folder below the operator's installDir.
func node(r store.AgentRole, skipped bool) sdk.Node {
	n := sdk.Node{Host: r.Host, Role: r.Role, Home: r.InstallDir, Labels: process.Labels(r.FENodeType, r.Master), Skipped: skipped}
	if r.InstallDir != "" {
		n.InstallDir = path.Dir(r.InstallDir)
	}
	if r.Facts != "" {
		_ = json.Unmarshal([]byte(r.Facts), &n.Facts)
	}
	if r.Ports != "" {
		_ = json.Unmarshal([]byte(r.Ports), &n.Ports)
	} else {
		n.Ports = n.Facts.Ports()
	}
	return n
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
		in, err := task.RoleOf(t)
		if err != nil {
			errs = append(errs, err)
			continue
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
			Order: RestoreOrder(in.Role, in.Labels[process.LabelMaster] == "true")}); err != nil && !errors.Is(err, ErrNoDesiredState) {
			errs = append(errs, err)
			continue
		}
		role, err := e.roles.Role(ctx, in.ClusterID, in.Role, io.Discard)
		if err == nil {
			_, err = role.Stop(ctx, h, req)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("stop %s on %s: %w", in.Role, in.Host, err))
		}
	}
	return errors.Join(errs...)
}

func merge(a, b sdk.Facts) sdk.Facts {
	if len(a) == 0 {
		return b
	}
	out := make(sdk.Facts, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
