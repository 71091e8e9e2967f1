package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/sshboot"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// Plugins hands out the role plugins a cluster uses (core/pluginhost).
type Plugins interface {
	// Role is the plugin of role for the cluster; its log lines during
	// calls go to taskLog too.
	Role(ctx context.Context, clusterID int64, role string, taskLog io.Writer) (sdk.Remote, error)
	// Catalogue is what each role's plugin is, by role.
	Catalogue(ctx context.Context, clusterID int64) (map[string]sdk.Info, error)
}

// ActionsConfig wires Actions.
type ActionsConfig struct {
	Store   *store.Store
	Plugins Plugins
	// Exec builds the agent-backed sdk.Host of a node and records desired
	// role states on agents (shared with the wizard's role tasks).
	Exec *roleexec.Executor
	// Changed, if set, is told that a cluster's nodes changed (the status
	// cache refreshes it).
	Changed func(clusterID int64)
	Logger  hclog.Logger
	// AliveTimeout bounds the wait for a restarted or upgraded node to be
	// healthy and alive in the cluster (default 10 minutes).
	AliveTimeout time.Duration
	// PollEvery is the pause between status probes (default 1 s).
	PollEvery time.Duration
}

// Actions runs the tasks of operations.
type Actions struct {
	st      *store.Store
	plugins Plugins
	x       *roleexec.Executor
	changed func(int64)
	log     hclog.Logger
	alive   time.Duration
	poll    time.Duration
}

// NewActions returns the actions of operation tasks.
func NewActions(cfg ActionsConfig) *Actions {
	a := &Actions{st: cfg.Store, plugins: cfg.Plugins, x: cfg.Exec, changed: cfg.Changed, log: cfg.Logger,
		alive: cfg.AliveTimeout, poll: cfg.PollEvery}
	if a.changed == nil {
		a.changed = func(int64) {}
	}
	if a.log == nil {
		a.log = hclog.NewNullLogger()
	}
	if a.alive <= 0 {
		a.alive = 10 * time.Minute
	}
	if a.poll <= 0 {
		a.poll = time.Second
	}
	return a
}

// Map returns the runner actions by task type.
func (a *Actions) Map() runner.Actions {
	acts := runner.Actions{}
	for _, t := range []string{TaskStop, TaskStart, TaskRestart, TaskScaleIn, TaskUpgrade, TaskReconfigure, TaskRemove, TaskRemoveAgent, TaskDestroy} {
		acts[t] = action{a, t}
	}
	return acts
}

type action struct {
	a    *Actions
	kind string
}

// Every operation task is safe to run again: plugin calls are idempotent
// and resent with the same request ids (the agent answers a repeated call
// from its records), desired states are plain overwrites, and the store
// writes are deletes and updates of what is already so. A manager killed
// mid-operation resumes it where it stopped.
func (action) Idempotent() bool { return true }

// run is one run of one operation task on one node.
type run struct {
	a       *Actions
	job     runner.Job
	in      Input
	cl      sdk.Cluster
	node    sdk.Node
	found   bool // the node is still recorded in the cluster
	info    sdk.Info
	logPath string
}

func (ac action) Run(ctx context.Context, job runner.Job) (runner.Outcome, error) {
	r := &run{a: ac.a, job: job}
	if err := json.Unmarshal([]byte(job.Task.Input), &r.in); err != nil {
		return runner.Outcome{}, fmt.Errorf("task %d has unreadable input: %w", job.Task.ID, err)
	}
	defer r.a.changed(r.in.ClusterID)
	var out runner.Outcome
	var err error
	switch ac.kind {
	case TaskRemoveAgent:
		out, err = r.removeAgent(ctx)
	case TaskDestroy:
		out, err = r.destroy(ctx)
	default:
		if err = r.load(ctx); err != nil {
			return runner.Outcome{}, err
		}
		if !r.found {
			// Removed by an earlier run of this task (or another operation).
			return runner.Outcome{Response: fmt.Sprintf("%s on %s is no longer in the cluster: nothing to do", r.in.Role, r.in.Host)}, nil
		}
		switch ac.kind {
		case TaskStop:
			out, err = r.stop(ctx)
		case TaskStart:
			out, err = r.start(ctx)
		case TaskRestart:
			out, err = r.restart(ctx)
		case TaskScaleIn:
			out, err = r.scaleIn(ctx)
		case TaskUpgrade:
			out, err = r.upgrade(ctx)
		case TaskReconfigure:
			out, err = r.reconfigure(ctx)
		case TaskRemove:
			out, err = r.remove(ctx)
		default:
			err = fmt.Errorf("no action for task type %s", ac.kind)
		}
	}
	if out.LogPath == "" {
		out.LogPath = r.logPath
	}
	return out, err
}

// load reads the cluster as plugins see it, this node, its plugin's
// catalogue entry and the parameters installService gave the role.
func (r *run) load(ctx context.Context) error {
	cl, err := r.a.x.ClusterView(ctx, r.in.ClusterID, 0)
	if err != nil {
		return err
	}
	r.cl = cl
	for _, n := range cl.Nodes {
		if n.Host == r.in.Host && n.Role == r.in.Role {
			r.node, r.found = n, true
		}
	}
	if !r.found {
		return nil
	}
	cat, err := r.a.plugins.Catalogue(ctx, r.in.ClusterID)
	if err != nil {
		return fmt.Errorf("role plugins of cluster %d: %w", r.in.ClusterID, err)
	}
	info, ok := cat[r.in.Role]
	if !ok {
		return fmt.Errorf("no plugin is loaded for role %s: install it (dorismanager plugins install) and rescan, then retry", r.in.Role)
	}
	r.info = info
	return nil
}

// request is the plugin request for this node.
func (r *run) request(ctx context.Context) sdk.Request {
	req := sdk.Request{TaskID: r.job.Task.ID, Node: r.node, Cluster: r.cl, Targets: []sdk.Node{r.node},
		Params: r.params(ctx)}
	return req
}

// params are the ones installService gave the role on this host (javaHome,
// startTimeout...), read from its INSTALL_<ROLE> task.
func (r *run) params(ctx context.Context) map[string]string {
	t, err := r.a.st.LatestWizardTask(ctx, r.in.ClusterID, r.in.Host, process.InstallTask(r.in.Role))
	if err != nil {
		return nil
	}
	in, err := task.RoleOf(t)
	if err != nil {
		return nil
	}
	return in.Params
}

// host is the node's sdk.Host for one phase of the task: each phase has
// its own request ids, the same in a resumed run.
func (r *run) host(ctx context.Context, phase string) (roleexec.Host, error) {
	t := r.job.Task
	return r.a.x.NodeHost(ctx, t.ID, fmt.Sprintf("t%d-a%d-%s", t.ID, t.Attempt, phase), r.job.Log, r.in.ClusterID, r.in.Host, r.cl)
}

// call runs one plugin method with a fresh phase host.
func (r *run) call(ctx context.Context, phase string, req sdk.Request, h sdk.Host, fn func(sdk.Remote, context.Context, sdk.Host, sdk.Request) (sdk.Result, error)) (sdk.Result, error) {
	var raw io.Writer = io.Discard
	if h == nil {
		ph, err := r.host(ctx, phase)
		if err != nil {
			return sdk.Result{}, err
		}
		h = ph
		raw = ph.RawLog()
		defer func() { r.keepLogPath(ph) }()
	} else if ph, ok := unwrap(h).(roleexec.Host); ok {
		raw = ph.RawLog()
		defer func() { r.keepLogPath(ph) }()
	}
	rm, err := r.a.plugins.Role(ctx, r.in.ClusterID, r.in.Role, raw)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%s plugin: %w", r.in.Role, err)
	}
	res, err := fn(rm, ctx, h, req)
	if err != nil {
		return res, fmt.Errorf("%s %s on %s: %w", phase, r.in.Role, r.in.Host, err)
	}
	if res.Detail != "" {
		h.Logf("%s", res.Detail)
	}
	return res, nil
}

func unwrap(h sdk.Host) sdk.Host {
	if c, ok := h.(*roleexec.StartCapture); ok {
		return c.Host
	}
	return h
}

func (r *run) keepLogPath(h roleexec.Host) {
	if p := h.HostLogPath(); p != "" {
		r.logPath = p
	}
}

// desired records on the node's agent the state its role should be in.
// An agent too old to keep them is noted in the task log, not a failure.
func (r *run) desired(ctx context.Context, state string, start *sdk.Command) error {
	err := r.a.x.RecordDesired(ctx, roleexec.Desired{ClusterID: r.in.ClusterID, Host: r.in.Host, Role: r.in.Role,
		State: state, Order: r.in.Order, Start: start, PidFile: roleexec.PidFile(r.node.Home, r.info.PidFile)})
	if errors.Is(err, roleexec.ErrNoDesiredState) {
		r.logf("warning: %v; it will not restore %s after a reboot", err, r.in.Role)
		return nil
	}
	return err
}

func (r *run) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(r.job.Log, time.Now().UTC().Format(roleexec.StampFormat)+" "+format+"\n", args...)
}

func (r *run) stopNode(ctx context.Context) (sdk.Result, error) {
	// First the record, so a reboot during the stop leaves the role down.
	if err := r.desired(ctx, wire.DesiredStopped, nil); err != nil {
		return sdk.Result{}, err
	}
	return r.call(ctx, "stop", r.request(ctx), nil, sdk.Remote.Stop)
}

func (r *run) startNode(ctx context.Context) (sdk.Result, error) {
	if err := r.desired(ctx, wire.DesiredRunning, nil); err != nil {
		return sdk.Result{}, err
	}
	h, err := r.host(ctx, "start")
	if err != nil {
		return sdk.Result{}, err
	}
	capture := roleexec.CaptureStarts(h)
	res, err := r.call(ctx, "start", r.request(ctx), capture, sdk.Remote.Start)
	if err != nil {
		return res, err
	}
	// The command that started it, for the agent to start it after a reboot.
	if c := capture.Command(); c != nil {
		if err := r.desired(ctx, wire.DesiredRunning, c); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *run) stop(ctx context.Context) (runner.Outcome, error) {
	res, err := r.stopNode(ctx)
	if err != nil {
		return runner.Outcome{}, err
	}
	return runner.Outcome{Response: res.Summary, Result: res.Facts}, nil
}

// start is health-gated: the node is healthy and, when the role reports
// it, alive in the cluster before the next one starts.
func (r *run) start(ctx context.Context) (runner.Outcome, error) {
	res, err := r.startNode(ctx)
	if err != nil {
		return runner.Outcome{}, err
	}
	st, err := r.waitReady(ctx, "")
	if err != nil {
		return runner.Outcome{}, err
	}
	return runner.Outcome{Response: res.Summary + "; " + st, Result: res.Facts}, nil
}

func (r *run) restart(ctx context.Context) (runner.Outcome, error) {
	if r.in.IfRestartNeeded {
		needed, why, err := r.restartNeeded(ctx)
		if err != nil {
			return runner.Outcome{}, err
		}
		if !needed {
			r.logf("%s", why)
			return runner.Outcome{Response: why}, nil
		}
		r.logf("restarting: %s", why)
	}
	if _, err := r.stopNode(ctx); err != nil {
		return runner.Outcome{}, err
	}
	res, err := r.startNode(ctx)
	if err != nil {
		return runner.Outcome{}, err
	}
	resp := fmt.Sprintf("%s on %s restarted", r.in.Role, r.in.Host)
	if r.in.Rolling {
		st, err := r.waitReady(ctx, "")
		if err != nil {
			return runner.Outcome{}, err
		}
		resp += ", " + st
	}
	return runner.Outcome{Response: resp, Result: res.Facts}, nil
}

// restartNeeded reads the result of this node's RECONFIGURE_NODE task in
// the same operation.
func (r *run) restartNeeded(ctx context.Context) (bool, string, error) {
	ts, err := r.a.st.TasksOfProcess(ctx, r.job.Task.ProcessID)
	if err != nil {
		return false, "", fmt.Errorf("tasks of process %d: %w", r.job.Task.ProcessID, err)
	}
	for _, t := range ts {
		if t.TaskType != TaskReconfigure || t.Host != r.in.Host {
			continue
		}
		var in Input
		if json.Unmarshal([]byte(t.Input), &in) != nil || in.Role != r.in.Role {
			continue
		}
		if t.Skip {
			return false, fmt.Sprintf("no restart: the config change of %s on %s (task %d) was skipped", r.in.Role, r.in.Host, t.ID), nil
		}
		var facts sdk.Facts
		_ = json.Unmarshal([]byte(t.Result), &facts)
		if v, _ := facts.Bool(sdk.FactRestartNeeded); v {
			return true, fmt.Sprintf("the config change of task %d needs a restart", t.ID), nil
		}
		return false, fmt.Sprintf("no restart needed: the config change of %s on %s (task %d) was applied live", r.in.Role, r.in.Host, t.ID), nil
	}
	return false, "", fmt.Errorf("operation %d has no config change of %s on %s to restart for", r.job.Task.ProcessID, r.in.Role, r.in.Host)
}

// waitReady polls the node's Status until it is healthy, alive in the
// cluster (when the role reports it) and, when version is set, runs that
// version. Probes stay out of the task log; changes of what they see go in.
func (r *run) waitReady(ctx context.Context, version string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.a.alive)
	defer cancel()
	client, err := r.a.x.AgentClient(ctx, r.in.ClusterID, r.in.Host)
	if err != nil {
		return "", err
	}
	rm, err := r.a.plugins.Role(ctx, r.in.ClusterID, r.in.Role, nil)
	if err != nil {
		return "", fmt.Errorf("%s plugin: %w", r.in.Role, err)
	}
	last := ""
	for {
		res, err := rm.Status(ctx, r.a.x.ProbeHost(client, r.cl), r.request(ctx))
		seen := ""
		if err != nil {
			seen = "status: " + err.Error()
		} else {
			ok, what := ready(res.Facts, version)
			seen = what
			if ok {
				r.logf("%s on %s: %s", r.in.Role, r.in.Host, what)
				return what, nil
			}
		}
		if seen != last {
			r.logf("waiting for %s on %s: %s", r.in.Role, r.in.Host, seen)
			last = seen
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s on %s is not ready after %s: %s", r.in.Role, r.in.Host, r.a.alive, last)
		case <-time.After(r.a.poll):
		}
	}
}

// ready judges a node from its Status facts.
func ready(f sdk.Facts, version string) (bool, string) {
	healthy, _ := f.Bool(sdk.FactHealthy)
	alive, aliveKnown := f.Bool(sdk.FactAlive)
	v := f[sdk.FactVersion]
	parts := []string{fmt.Sprintf("healthy=%v", healthy)}
	if aliveKnown {
		parts = append(parts, fmt.Sprintf("alive in the cluster=%v", alive))
	}
	if v != "" {
		parts = append(parts, "version "+v)
	}
	what := strings.Join(parts, ", ")
	ok := healthy && (!aliveKnown || alive) && (version == "" || v == version)
	return ok, what
}

func (r *run) scaleIn(ctx context.Context) (runner.Outcome, error) {
	var done []string
	if r.info.Has(sdk.CapMembership) {
		req := r.request(ctx)
		req.Force = r.in.Force
		res, err := r.call(ctx, "unregister", req, nil, sdk.Remote.Unregister)
		if err != nil {
			return runner.Outcome{}, err
		}
		done = append(done, res.Summary)
	}
	if _, err := r.stopNode(ctx); err != nil {
		return runner.Outcome{}, err
	}
	req := r.request(ctx)
	req.Purge = r.in.Purge
	res, err := r.call(ctx, "remove", req, nil, sdk.Remote.Remove)
	if err != nil {
		return runner.Outcome{}, err
	}
	done = append(done, res.Summary)
	if err := r.desired(ctx, wire.DesiredAbsent, nil); err != nil {
		return runner.Outcome{}, err
	}
	if err := r.a.st.DeleteRole(ctx, r.in.ClusterID, r.in.Host, r.in.Role); err != nil {
		return runner.Outcome{}, err
	}
	data := "data kept"
	if r.in.Purge {
		data = "data removed"
	}
	r.logf("%s on %s left the cluster (%s)", r.in.Role, r.in.Host, data)
	return runner.Outcome{Response: fmt.Sprintf("%s on %s removed from the cluster, stopped and deleted (%s): %s", r.in.Role, r.in.Host, data,
		strings.Join(done, "; "))}, nil
}

func (r *run) upgrade(ctx context.Context) (runner.Outcome, error) {
	h, err := r.host(ctx, "upgrade")
	if err != nil {
		return runner.Outcome{}, err
	}
	// Stored with its password sealed (Engine.Upgrade).
	pkgURL, err := r.a.x.OpenPackageURL(r.in.PackageURL)
	if err != nil {
		return runner.Outcome{}, err
	}
	h.CheckPackage(pkgURL, process.PackageSums{SHA256: r.in.PackageSHA256, SHA512: r.in.PackageSHA512,
		From: r.in.PackageSumFrom, Unverified: r.in.PackageUnverified})
	capture := roleexec.CaptureStarts(h)
	req := r.request(ctx)
	req.PackageURL, req.PackageSHA256, req.PackageSHA512 = pkgURL, r.in.PackageSHA256, r.in.PackageSHA512
	res, err := r.call(ctx, "upgrade", req, capture, sdk.Remote.Upgrade)
	if err != nil {
		// The plugin's failure says how to roll the node back; the
		// operation stops here (later nodes wait behind this task).
		return runner.Outcome{}, err
	}
	if err := r.desired(ctx, wire.DesiredRunning, capture.Command()); err != nil {
		return runner.Outcome{}, err
	}
	want := res.Facts[sdk.FactVersion]
	st, err := r.waitReady(ctx, want)
	if err != nil {
		return runner.Outcome{}, fmt.Errorf("after the upgrade to %s: %w (the node runs the new software; see the task log for how it was switched, to roll it back)", orUnknown(want), err)
	}
	return runner.Outcome{Response: fmt.Sprintf("%s on %s upgraded: %s", r.in.Role, r.in.Host, st), Result: res.Facts}, nil
}

func orUnknown(v string) string {
	if v == "" {
		return "the new version"
	}
	return "version " + v
}

func (r *run) reconfigure(ctx context.Context) (runner.Outcome, error) {
	req := r.request(ctx)
	req.Conf, req.DryRun = r.in.Conf, r.in.DryRun
	res, err := r.call(ctx, "reconfigure", req, nil, sdk.Remote.Reconfigure)
	if err != nil {
		return runner.Outcome{}, err
	}
	diff, live, restart := describeChanges(res.Changes)
	for _, l := range diff {
		r.logf("  %s", l)
	}
	facts := sdk.Facts{}
	for k, v := range res.Facts {
		facts[k] = v
	}
	b, _ := json.Marshal(res.Changes)
	facts["changes"] = string(b)
	var resp string
	switch {
	case len(res.Changes) == 0:
		resp = fmt.Sprintf("%s on %s: the config is unchanged", r.in.Role, r.in.Host)
	case r.in.DryRun:
		resp = fmt.Sprintf("dry run, nothing changed: %d change(s) on %s (%d live, %d need a restart): %s", len(res.Changes), r.in.Host, live, restart, strings.Join(diff, "; "))
	default:
		resp = fmt.Sprintf("%d change(s) on %s (%d applied live, %d need a restart): %s", len(res.Changes), r.in.Host, live, restart, strings.Join(diff, "; "))
	}
	if !r.in.DryRun {
		if ports := res.Facts.Ports(); len(ports) > 0 {
			pb, _ := json.Marshal(ports)
			if err := r.a.st.UpdateRolePorts(ctx, r.in.ClusterID, r.in.Host, r.in.Role, string(pb)); err != nil {
				return runner.Outcome{}, err
			}
		}
	}
	return runner.Outcome{Response: resp, Result: facts}, nil
}

// describeChanges renders a config diff, one line a key.
func describeChanges(cs []sdk.Change) (lines []string, live, restart int) {
	sorted := append([]sdk.Change(nil), cs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	for _, c := range sorted {
		var l string
		switch {
		case c.Old == "":
			l = fmt.Sprintf("%s: added %q", c.Key, c.New)
		case c.New == "":
			l = fmt.Sprintf("%s: removed (was %q)", c.Key, c.Old)
		default:
			l = fmt.Sprintf("%s: %q -> %q", c.Key, c.Old, c.New)
		}
		lines = append(lines, l+" ("+c.Impact+")")
		if c.Impact == sdk.ImpactRestart {
			restart++
		} else {
			live++
		}
	}
	return lines, live, restart
}

func (r *run) remove(ctx context.Context) (runner.Outcome, error) {
	req := r.request(ctx)
	req.Purge = r.in.Purge
	res, err := r.call(ctx, "remove", req, nil, sdk.Remote.Remove)
	if err != nil {
		return runner.Outcome{}, err
	}
	if err := r.desired(ctx, wire.DesiredAbsent, nil); err != nil {
		return runner.Outcome{}, err
	}
	if err := r.a.st.DeleteRole(ctx, r.in.ClusterID, r.in.Host, r.in.Role); err != nil {
		return runner.Outcome{}, err
	}
	return runner.Outcome{Response: res.Summary}, nil
}

// removeAgent has the agent remove itself (its folder, its systemd unit)
// and waits until it no longer answers; then the manager forgets it,
// which revokes its certificate.
func (r *run) removeAgent(ctx context.Context) (runner.Outcome, error) {
	ag, err := r.a.st.AgentOf(ctx, r.in.ClusterID, r.in.Host)
	if errors.Is(err, store.ErrNotFound) {
		return runner.Outcome{Response: fmt.Sprintf("no agent is recorded on %s: nothing to do", r.in.Host)}, nil
	}
	if err != nil {
		return runner.Outcome{}, err
	}
	client, err := r.a.x.AgentClient(ctx, r.in.ClusterID, r.in.Host)
	if err != nil {
		return runner.Outcome{}, err
	}
	home := strings.TrimRight(ag.InstallDir, "/") + "/agent"
	var gone *agentclient.AgentGoneError
	err = client.Uninstall(ctx, wire.Uninstall{SystemdUnit: sshboot.UnitName(ag.InstallDir)})
	switch {
	case errors.As(err, &gone):
		return runner.Outcome{}, fmt.Errorf("the agent on %s does not answer, so %s stays on the host: start the agent and retry, or remove that folder by hand and skip this task: %w", r.in.Host, home, err)
	case err != nil:
		return runner.Outcome{}, fmt.Errorf("uninstall the agent on %s: %w", r.in.Host, err)
	}
	r.logf("the agent on %s removes %s and exits", r.in.Host, home)
	if err := r.waitGone(ctx, client); err != nil {
		return runner.Outcome{}, err
	}
	if err := r.a.st.DeleteAgent(ctx, r.in.ClusterID, r.in.Host); err != nil {
		return runner.Outcome{}, err
	}
	return runner.Outcome{Response: fmt.Sprintf("agent on %s removed (%s) and forgotten", r.in.Host, home)}, nil
}

func (r *run) waitGone(ctx context.Context, client *agentclient.Client) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var gone *agentclient.AgentGoneError
	for {
		_, err := client.Health(ctx)
		if errors.As(err, &gone) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agent on %s still answers a minute after it was asked to uninstall (last: %v)", r.in.Host, err)
		case <-time.After(r.a.poll / 2):
		}
	}
}

// destroy forgets what is left of the cluster and marks it destroyed.
func (r *run) destroy(ctx context.Context) (runner.Outcome, error) {
	id := r.in.ClusterID
	roles, err := r.a.st.ListRoles(ctx, id)
	if err != nil {
		return runner.Outcome{}, err
	}
	agents, err := r.a.st.ListAgents(ctx, id)
	if err != nil {
		return runner.Outcome{}, err
	}
	var left []string
	for _, x := range roles {
		left = append(left, x.Role+" on "+x.Host)
		if err := r.a.st.DeleteRole(ctx, id, x.Host, x.Role); err != nil {
			return runner.Outcome{}, err
		}
	}
	for _, ag := range agents {
		left = append(left, "the agent on "+ag.Host)
		if err := r.a.st.DeleteAgent(ctx, id, ag.Host); err != nil {
			return runner.Outcome{}, err
		}
	}
	// Its admin password goes too, leaving no copy in SQLite's files.
	if err := r.a.st.DeleteAdminAccount(ctx, id); err != nil {
		return runner.Outcome{}, err
	}
	if err := r.a.st.ForgetDeleted(ctx); err != nil {
		r.a.log.Warn("the destroyed cluster's admin password may remain in the database's free pages", "cluster", id, "error", err)
	}
	if err := r.a.st.MarkClusterDestroyed(ctx, id); err != nil {
		return runner.Outcome{}, err
	}
	resp := fmt.Sprintf("cluster %d destroyed", id)
	if len(left) > 0 {
		resp += "; skipped tasks left files of " + strings.Join(left, ", ") + " on their hosts (forgotten here)"
	}
	return runner.Outcome{Response: resp}, nil
}
