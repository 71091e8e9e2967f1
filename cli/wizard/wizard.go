// Package wizard walks the manager's install wizard for a topology through
// the REST API: it finds or creates the cluster, resumes the caller's
// unfinished process of that cluster at its step (or starts one), sends
// each step for the nodes the previous one left standing, waits for its
// tasks while a progress printer shows them, and on a failed task asks
// (retry, skip, abort) or stops saying how to resume.
package wizard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/cli/progress"
	"github.com/dorismanager/dorismanager/cli/rest"
	"github.com/dorismanager/dorismanager/cli/topology"
)

// Steps are the wizard's steps in order.
var Steps = []string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"}

var stepCall = []string{"POST /api/server/installAgent", "POST /api/agent/installService", "POST /api/agent/deployConfig",
	"POST /api/agent/startService", "POST /api/agent/buildCluster"}

func stepIndex(name string) int {
	for i, s := range Steps {
		if s == name {
			return i
		}
	}
	return -1
}

// Action is the answer to a failed task.
type Action int

// Answers to a failed task.
const (
	Abort Action = iota
	Retry
	Skip
)

// Asker asks what to do about a failed task; nil means nobody is there
// to ask (the walk stops and says how to resume).
type Asker func(t rest.Task) (Action, error)

// Options configure a walk.
type Options struct {
	Client   *rest.Client
	Topology *topology.Topology
	// ScaleOut adds the file's nodes the cluster lacks to an existing
	// cluster; otherwise the cluster must be new (or have every node).
	ScaleOut bool
	Printer  progress.Printer
	Ask      Asker
	// Resume is the command line that resumes this walk.
	Resume string
	// Poll is the pause between two reads of the tasks (default 100 ms:
	// a step is sent at most that long after the previous one ended), and
	// of the cluster's status before the final table.
	Poll time.Duration
	// Settle is how long a failed step must stay unchanged, nothing
	// running, before it counts as stopped (default 3 polls).
	Settle time.Duration
	// StatusWait bounds the wait for every node's first status check
	// before the final table (default 12 s: two rounds of the manager's
	// status cache).
	StatusWait time.Duration
}

// Result is what a walk did.
type Result struct {
	Cluster   rest.Cluster
	ProcessID int64 // 0 when nothing was to do
	Created   bool  // the cluster was created by this walk
	Nothing   bool  // the cluster had every node already
	Final     *rest.Process
	Status    rest.ClusterStatus
	// Steps holds the last view of each step's tasks this walk saw.
	Steps map[string][]rest.Task
	// StepWall is each step's time as this command saw it: from sending
	// the step (or resuming it) until its tasks were done.
	StepWall map[string]time.Duration
}

// Stopped is the error of a walk that stopped at a failed task.
type Stopped struct {
	ProcessID int64
	Step      string
	Failed    []rest.Task
	Resume    string
}

func (e *Stopped) Error() string {
	ids := make([]string, len(e.Failed))
	for i, t := range e.Failed {
		ids[i] = fmt.Sprint(t.ID)
	}
	return fmt.Sprintf("process %d stopped at %s: task %s failed (resume with: %s)", e.ProcessID, e.Step, strings.Join(ids, ", "), e.Resume)
}

type walk struct {
	Options
	c       *rest.Client
	res     *Result
	plan    topology.Plan
	cluster rest.Cluster
}

// Run walks the wizard.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Poll == 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Settle == 0 {
		o.Settle = 3 * o.Poll
	}
	if o.StatusWait == 0 {
		o.StatusWait = 12 * time.Second
	}
	w := &walk{Options: o, c: o.Client, res: &Result{Steps: map[string][]rest.Task{}, StepWall: map[string]time.Duration{}}}
	if err := w.run(ctx); err != nil {
		return w.res, err
	}
	return w.res, nil
}

func (w *walk) run(ctx context.Context) error {
	name := w.Topology.Cluster
	cl, found, err := w.c.FindCluster(ctx, name)
	if err != nil {
		return err
	}
	if found && cl.Name != name {
		found = false // a cluster whose id is the name's digits is another one
	}
	if !found && w.ScaleOut {
		return fmt.Errorf("cluster %q does not exist: deploy it first (dorismanager cluster deploy)", name)
	}
	cur, err := w.c.CurrentProcess(ctx)
	if err != nil {
		return err
	}
	if cur != nil && (!found || cur.ClusterID != cl.ID) {
		return fmt.Errorf("you have unfinished process %d of cluster %d (at %s): finish it first (dorismanager process show %d), or end it with dorismanager process complete %d",
			cur.ID, cur.ClusterID, cur.ProcessType, cur.ID, cur.ID)
	}
	if !found {
		if len(w.Topology.FE) == 0 {
			return fmt.Errorf("%s: a new cluster needs an FE (fe: a FOLLOWER to be its master)", w.Topology.Path)
		}
		if cl, err = w.c.CreateCluster(ctx, name); err != nil {
			return err
		}
		w.res.Created = true
		w.Printer.Line(fmt.Sprintf("cluster %q created (id %d)", cl.Name, cl.ID))
	}
	w.cluster, w.res.Cluster = cl, cl
	if cur != nil {
		w.Printer.Line(fmt.Sprintf("resuming process %d of cluster %q at %s", cur.ID, cl.Name, cur.ProcessType))
		w.res.ProcessID = cur.ID
		return w.walkFrom(ctx, cur, true)
	}
	existing, err := w.existing(ctx)
	if err != nil {
		return err
	}
	keep := func(h, r string) bool { return !existing[h+"/"+r] }
	w.plan = w.Topology.Render(keep)
	if len(w.plan.Nodes) == 0 {
		w.res.Nothing = true
		w.Printer.Line(fmt.Sprintf("cluster %q has every node of %s already: nothing to do", cl.Name, w.Topology.Path))
		return w.finish(ctx)
	}
	if len(existing) > 0 && !w.ScaleOut {
		return fmt.Errorf("cluster %q exists with %d nodes and %s adds %d: add them with dorismanager cluster scale-out %s",
			cl.Name, len(existing), w.Topology.Path, len(w.plan.Nodes), w.Topology.Path)
	}
	w.step(0)
	start := time.Now()
	req := w.plan.Agent
	req.ClusterID = cl.ID
	pid, err := w.c.InstallAgent(ctx, req)
	if err != nil {
		return err
	}
	w.res.ProcessID = pid
	return w.loop(ctx, pid, 0, start, false)
}

// existing is the cluster's nodes as host/ROLE.
func (w *walk) existing(ctx context.Context) (map[string]bool, error) {
	roles, err := w.c.Roles(ctx, w.cluster.ID)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range roles {
		out[r.Host+"/"+r.Role] = true
	}
	return out, nil
}

func (w *walk) step(i int) {
	w.Printer.Step(fmt.Sprintf("step %d/%d %s (%s)", i+1, len(Steps), Steps[i], stepCall[i]))
}

// walkFrom continues a process found unfinished; rerun says this command
// was started again, which retries the step's failed tasks at once.
func (w *walk) walkFrom(ctx context.Context, p *rest.Process, rerun bool) error {
	i := stepIndex(p.ProcessType)
	if i < 0 {
		return fmt.Errorf("process %d is at %q, a step this command does not know", p.ID, p.ProcessType)
	}
	// A step already done (processStep past it) shows its tasks once
	// and the loop sends the next one.
	w.step(i)
	return w.loop(ctx, p.ID, i, time.Now(), rerun)
}

// loop waits for step i of process pid, handles failures, then sends the
// next step, until installComplete.
func (w *walk) loop(ctx context.Context, pid int64, i int, start time.Time, rerun bool) error {
	for {
		tasks, err := w.wait(ctx, pid, i, start, rerun)
		if err != nil {
			return err
		}
		rerun = false
		w.res.Steps[Steps[i]] = tasks
		w.res.StepWall[Steps[i]] = time.Since(start)
		w.Printer.StepDone(fmt.Sprintf("step %s done in %.1fs", Steps[i], time.Since(start).Seconds()))
		if i == len(Steps)-1 {
			final, err := w.c.InstallComplete(ctx, pid)
			if err != nil {
				return err
			}
			w.res.Final = final
			msg := fmt.Sprintf("installComplete: process %d ended", pid)
			if final != nil && final.Status != "" {
				msg += " " + final.Status
			}
			w.Printer.Line(msg)
			return w.finish(ctx)
		}
		i++
		w.step(i)
		start = time.Now()
		if err := w.send(ctx, pid, i, tasks); err != nil {
			return err
		}
	}
}

// nodes are the host/role pairs the done tasks of a step leave standing.
func nodesOf(tasks []rest.Task) map[string]bool {
	out := map[string]bool{}
	for _, t := range tasks {
		if t.Status == rest.TaskSuccess && !t.Skipped() {
			out[t.Host+"/"+t.Role()] = true
		}
	}
	return out
}

// send sends step i (1..4) for the nodes step i-1's tasks left standing.
func (w *walk) send(ctx context.Context, pid int64, i int, prev []rest.Task) error {
	var keep func(h, r string) bool
	if i == 1 {
		// After INSTALL_AGENT: the file's nodes on hosts whose agent is
		// installed, less those the cluster had before.
		agents := map[string]bool{}
		for _, t := range prev {
			if t.Status == rest.TaskSuccess && !t.Skipped() {
				agents[t.Host] = true
			}
		}
		existing, err := w.existing(ctx)
		if err != nil {
			return err
		}
		keep = func(h, r string) bool { return agents[h] && !existing[h+"/"+r] }
	} else {
		standing := nodesOf(prev)
		keep = func(h, r string) bool { return standing[h+"/"+r] }
	}
	plan := w.Topology.Render(keep)
	switch i {
	case 1:
		req := plan.Install
		req.ProcessID = pid
		if len(req.InstallInfos) == 0 {
			return fmt.Errorf("no host of %s has an agent installed: nothing to install (see the INSTALL_AGENT tasks of process %d)", w.Topology.Path, pid)
		}
		return w.c.InstallService(ctx, req)
	case 2:
		return w.c.DeployConfig(ctx, rest.DeployConfigs{ProcessID: pid, DeployConfigs: plan.Configs})
	case 3:
		return w.c.StartService(ctx, rest.StartService{ProcessID: pid, DorisStarts: plan.Starts})
	case 4:
		return w.c.BuildCluster(ctx, rest.BuildCluster{ProcessID: pid, FEHosts: plan.FEHosts, BEHosts: plan.BEHosts})
	}
	return fmt.Errorf("no step %d", i)
}

// resend repeats a step whose request carries what a failure may need
// changed (credentials, confs), so a re-run takes the fixed file.
func (w *walk) resend(ctx context.Context, pid int64, i int, tasks []rest.Task) (bool, error) {
	switch i {
	case 0:
		req := w.Topology.Render(nil).Agent
		var hosts []string
		for _, t := range tasks {
			hosts = append(hosts, t.Host)
		}
		req.Hosts, req.ProcessID, req.ClusterID = hosts, pid, w.cluster.ID
		w.Printer.Line("sending installAgent again with the file's SSH settings: the failed INSTALL_AGENT tasks run again")
		_, err := w.c.InstallAgent(ctx, req)
		return true, err
	case 2:
		// The nodes are those of the step's own tasks.
		standing := map[string]bool{}
		for _, t := range tasks {
			if !t.Skipped() {
				standing[t.Host+"/"+t.Role()] = true
			}
		}
		plan := w.Topology.Render(func(h, r string) bool { return standing[h+"/"+r] })
		w.Printer.Line("sending deployConfig again with the file's confs: it replaces the step's tasks")
		return true, w.c.DeployConfig(ctx, rest.DeployConfigs{ProcessID: pid, DeployConfigs: plan.Configs})
	}
	return false, nil
}

// wait polls the step's tasks until all are done, or some failed and the
// rest stopped moving; then asks what to do, or stops.
func (w *walk) wait(ctx context.Context, pid int64, i int, start time.Time, rerun bool) ([]rest.Task, error) {
	for {
		tasks, failed, err := Watch(ctx, w.c, pid, w.Printer, w.Poll, w.Settle, rerun)
		if err != nil {
			return nil, err
		}
		if len(failed) == 0 {
			return tasks, nil
		}
		if rerun {
			rerun = false
			if err := w.rerun(ctx, pid, i, tasks, failed); err != nil {
				return nil, err
			}
			continue
		}
		if err := w.failed(ctx, pid, i, failed); err != nil {
			return nil, err
		}
	}
}

// Watch polls a process's current tasks, showing them, until every one is
// done (SUCCESS or skipped; failed is empty), or some failed and the rest
// have not moved for settle with nothing running. With early, it returns
// at the first failed task seen.
func Watch(ctx context.Context, c *rest.Client, pid int64, pr progress.Printer, poll, settle time.Duration, early bool) (tasks, failed []rest.Task, err error) {
	var last string
	var still time.Time
	for {
		tasks, err := c.CurrentTasks(ctx, pid)
		if err != nil {
			return nil, nil, err
		}
		pr.Update(tasks)
		var failed []rest.Task
		running, done := false, true
		for _, t := range tasks {
			switch {
			case t.Failed():
				failed = append(failed, t)
				done = false
			case t.Status == rest.TaskRunning:
				running = true
				done = false
			case !t.Done():
				done = false
			}
		}
		if done {
			return tasks, nil, nil
		}
		if early && len(failed) > 0 {
			return tasks, failed, nil
		}
		if snap := snapshot(tasks); snap != last {
			last, still = snap, time.Now()
		}
		if len(failed) > 0 && !running && time.Since(still) >= settle {
			return tasks, failed, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// rerun handles the failed tasks found when this command starts again:
// the user fixed something, so the step is sent again where its request
// holds the fix, else the failed tasks are retried.
func (w *walk) rerun(ctx context.Context, pid int64, i int, tasks, failed []rest.Task) error {
	resent, err := w.resend(ctx, pid, i, tasks)
	if err != nil || resent {
		return err
	}
	for _, t := range failed {
		w.Printer.Line(fmt.Sprintf("retrying task %d %s on %s", t.ID, t.TaskType, hostOr(t)))
		if err := w.c.TaskAction(ctx, "retry", t.ID); err != nil {
			return err
		}
	}
	return nil
}

func hostOr(t rest.Task) string {
	if t.Host == "" {
		return "the cluster"
	}
	return t.Host
}

func snapshot(tasks []rest.Task) string {
	var b strings.Builder
	for _, t := range tasks {
		fmt.Fprintf(&b, "%d:%s:%s;", t.ID, t.Status, t.Skip)
	}
	return b.String()
}

// failed shows each failed task with its log's tail, then asks or stops.
func (w *walk) failed(ctx context.Context, pid int64, i int, failed []rest.Task) error {
	ShowFailed(ctx, w.c, w.Printer, failed)
	if w.Ask == nil {
		var skips []string
		for _, t := range failed {
			skips = append(skips, fmt.Sprintf("dorismanager task skip %d", t.ID))
		}
		w.Printer.Line(fmt.Sprintf("stopped at %s of process %d. Fix the cause, then resume (failed tasks are retried) with:\n  %s\nor give up on a task and leave its host out: %s, then resume.",
			Steps[i], pid, w.Resume, strings.Join(skips, "; ")))
		return &Stopped{ProcessID: pid, Step: Steps[i], Failed: failed, Resume: w.Resume}
	}
	w.Printer.Release()
	for _, t := range failed {
		a, err := w.Ask(t)
		if err != nil {
			return err
		}
		switch a {
		case Retry:
			if err = w.c.TaskAction(ctx, "retry", t.ID); err == nil {
				w.Printer.Line(fmt.Sprintf("task %d runs again", t.ID))
			}
		case Skip:
			if err = w.c.TaskAction(ctx, "skip", t.ID); err == nil {
				w.Printer.Line(fmt.Sprintf("task %d skipped: %s %s is left out of the later steps", t.ID, hostOr(t), t.Role()))
			}
		default:
			w.Printer.Line(fmt.Sprintf("aborted. Resume later with:\n  %s", w.Resume))
			return &Stopped{ProcessID: pid, Step: Steps[i], Failed: failed, Resume: w.Resume}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ShowFailed prints each failed task's response and the tail of its log.
func ShowFailed(ctx context.Context, c *rest.Client, pr progress.Printer, failed []rest.Task) {
	for _, t := range failed {
		pr.Line(fmt.Sprintf("task %d %s on %s FAILED: %s", t.ID, t.TaskType, hostOr(t), t.Message()))
		if l, err := c.TaskLog(ctx, t.ID); err == nil {
			if tail := Tail(l.Log, 15, "  "); tail != "" {
				pr.Line(fmt.Sprintf("last lines of its log (dorismanager task log %d):\n%s", t.ID, tail))
			}
		}
	}
}

// Tail is the last n lines of s, each indented.
func Tail(s string, n int, indent string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return indent + strings.Join(lines, "\n"+indent)
}

// finish reads the cluster's status for the final table, waiting until
// every node was checked once (or StatusWait passed).
func (w *walk) finish(ctx context.Context) error {
	deadline := time.Now().Add(w.StatusWait)
	for {
		st, err := w.c.Status(ctx, w.cluster.ID)
		if err != nil {
			if rest.IsNoEndpoint(err) {
				return nil // an older manager: no status table
			}
			return err
		}
		w.res.Status = st
		if checked(st) || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.Poll):
		}
	}
}

// checked is true when every node is UP: the manager's status cache
// checks nodes every few seconds, so a node just started may still show
// the state of its last check.
func checked(st rest.ClusterStatus) bool {
	for _, n := range st.Nodes {
		if n.Status != "UP" {
			return false
		}
	}
	return true
}

// ErrStopped tells whether err is a walk that stopped at a failed task.
func ErrStopped(err error) bool {
	var s *Stopped
	return errors.As(err, &s)
}
