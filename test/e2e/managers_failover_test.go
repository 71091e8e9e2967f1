package e2e

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// failoverNote is what an agent logs when it reports to another manager.
const failoverNote = "now reporting to another manager"

// TestTwoManagersFailover runs two managers on one PostgreSQL database
// (the second with the first one's CA and secret key) and drives the
// wizard through both:
//   - INSTALL_AGENT through the first alone; the agents learn of the
//     second from the first one's answers;
//   - INSTALL_SERVICE through the second, SIGKILLing the manager running
//     its tasks while every host's download is held: the other takes the
//     tasks over once their 3 s leases expired and finishes the step
//     (same task ids, one download per host, one download record per
//     task), and the agents that reported to the killed one heartbeat to
//     the survivor (agentList through it: every agent RUNNING 20 s after
//     the kill, longer than the 3 missed beats that make an agent STOP);
//   - the killed manager started again, DEPLOY_CONFIG through it;
//   - START_SERVICE, SIGKILLing the manager running a START task: the
//     other finishes it, each role process runs once and is the one its
//     task reported;
//   - BUILD_CLUSTER and the rest, a healthy cluster;
//   - if no agent has failed over yet (the kills hit the manager the
//     agents did not use), the manager they report to is killed too.
//
// Every agent's log says it went to another manager.
func TestTwoManagersFailover(t *testing.T) {
	db := pgtest.Start(t)
	// Each host downloads the package itself, held at the package server,
	// so the kill lands mid-download on every host (the relay through a
	// manager is TestPackageOncePerCluster's).
	a := start(t, sandbox.Options{DB: db, ManagerArgs: []string{"--task-lease", "3s", "--package-relay", "off"}})
	ctx, cancel := deadline.Context(context.Background(), 300*time.Second)
	defer cancel()
	plan := a.StandardPlan()
	ss, err := a.StartStallServer()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()

	pid, err := a.Client().InstallAgent(ctx, plan, sandbox.InstallDir, ss.URL)
	if err != nil {
		t.Fatal(err)
	}
	waitStepOK(ctx, t, a.Client(), pid, "INSTALL_AGENT")

	b, err := a.Twin("b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(b.ManagerLog()); err == nil {
				t.Logf("second manager's log (last lines):\n%s", tail(string(log), 60))
			}
		}
		b.Close()
	})
	if err := b.StartManager(ctx); err != nil {
		t.Fatalf("start the second manager: %v", err)
	}
	mgrs := []*sandbox.Sandbox{a, b}
	for _, h := range a.Hosts.Hosts {
		waitAgentLog(ctx, t, h, "learned of more managers")
	}

	// INSTALL_SERVICE through the second manager.
	if err := b.Client().InstallService(ctx, pid, plan, map[string]any{"packageSha256": a.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for len(held) < len(a.Hosts.Hosts) {
		select {
		case ip := <-ss.Stalled():
			held[ip] = true
		case <-ctx.Done():
			t.Fatalf("downloads held: %v, want every host", held)
		}
	}
	before, err := b.Client().CurrentTasks(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	victim, survivor := holder(t, mgrs, before)
	t.Logf("INSTALL_SERVICE: killing %s (runs the held downloads)", managerID(t, victim))
	killed := time.Now()
	if err := victim.StopManager(true); err != nil {
		t.Fatal(err)
	}
	ss.Release()
	after := waitStepOK(ctx, t, survivor.Client(), pid, "INSTALL_SERVICE")
	sameTasks(t, before, after)
	ranBy(t, after, managerID(t, survivor))
	for _, h := range a.Hosts.Hosts {
		if n, m := ss.Requests(h.Addr), ss.Completed(h.Addr); n != 1 || m != 1 {
			t.Errorf("%s: %d downloads begun, %d completed; want 1 and 1", h.Addr, n, m)
		}
	}
	for _, tk := range after {
		if recs := agentResultRecords(t, hostByAddr(t, a, tk.Host), tk.ID, "download"); len(recs) != 1 {
			t.Errorf("task %d on %s: %d download records, want 1: %v", tk.ID, tk.Host, len(recs), recs)
		}
	}
	oneAttempt(t, a, after)
	agentsRunningThrough(ctx, t, survivor, plan.ClusterID, killed)
	if t.Failed() {
		t.FailNow()
	}
	if err := victim.StartManager(ctx); err != nil {
		t.Fatalf("start the killed manager again: %v", err)
	}

	// DEPLOY_CONFIG through the manager that was killed, START_SERVICE
	// through the other.
	if err := victim.Client().DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	waitStepOK(ctx, t, victim.Client(), pid, "DEPLOY_CONFIG")
	if err := survivor.Client().StartService(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	before, err = waitAnyRunning(ctx, survivor.Client(), pid)
	if err != nil {
		t.Fatal(err)
	}
	victim, survivor = holder(t, mgrs, before)
	t.Logf("START_SERVICE: killing %s (runs a START task)", managerID(t, victim))
	killed = time.Now()
	if err := victim.StopManager(true); err != nil {
		t.Fatal(err)
	}
	after = waitStepOK(ctx, t, survivor.Client(), pid, "START_SERVICE")
	sameTasks(t, before, after)
	for _, tk := range after {
		role := strings.TrimPrefix(tk.TaskType, "START_")
		pids := roleProcesses(ctx, t, hostByAddr(t, a, tk.Host), role)
		var res map[string]string
		_ = json.Unmarshal([]byte(sandbox.Str(tk.Result)), &res)
		if len(pids) != 1 || strconv.Itoa(pids[0]) != res["pid"] {
			t.Errorf("%s on %s: processes %v, task %d reported pid %q; want exactly that one", role, tk.Host, pids, tk.ID, res["pid"])
		}
	}
	oneAttempt(t, a, after)
	agentsRunningThrough(ctx, t, survivor, plan.ClusterID, killed)
	if t.Failed() {
		t.FailNow()
	}
	if err := victim.StartManager(ctx); err != nil {
		t.Fatalf("start the killed manager again: %v", err)
	}

	if _, err := survivor.Client().WalkFrom(ctx, a, pid, plan, "BUILD_CLUSTER"); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster after the wizard: %v", err)
	}

	// Every agent has reported to both managers by now, unless no kill
	// hit the one they used: then kill that one (the first, whose URL
	// their configs name first).
	failedOver := false
	for _, h := range a.Hosts.Hosts {
		failedOver = failedOver || strings.Contains(agentLog(t, h), failoverNote)
	}
	if !failedOver {
		t.Logf("no agent failed over yet: killing %s, the manager they report to", managerID(t, a))
		killed = time.Now()
		if err := a.StopManager(true); err != nil {
			t.Fatal(err)
		}
		agentsRunningThrough(ctx, t, b, plan.ClusterID, killed)
	}
	for _, h := range a.Hosts.Hosts {
		if !strings.Contains(agentLog(t, h), failoverNote) {
			t.Errorf("the agent of %s never reported to another manager:\n%s", h.Addr, tail(agentLog(t, h), 30))
		}
	}
}

// managerID reads the id a manager logged at its last start.
func managerID(t *testing.T, m *sandbox.Sandbox) string {
	t.Helper()
	b, err := os.ReadFile(m.ManagerLog())
	if err != nil {
		t.Fatal(err)
	}
	all := regexp.MustCompile(`manager id \(names this manager[^\n]*manager=(\S+)`).FindAllStringSubmatch(string(b), -1)
	if len(all) == 0 {
		t.Fatalf("%s names no manager id", m.ManagerLog())
	}
	return all[len(all)-1][1]
}

// holder returns the manager running most of the RUNNING tasks in ts, and
// the other one.
func holder(t *testing.T, mgrs []*sandbox.Sandbox, ts []sandbox.Task) (victim, other *sandbox.Sandbox) {
	t.Helper()
	count := map[string]int{}
	for _, tk := range ts {
		if tk.Status == "RUNNING" && tk.ExecutorID != nil {
			count[*tk.ExecutorID]++
		}
	}
	best := -1
	for i, m := range mgrs {
		if n := count[managerID(t, m)]; n > 0 && (best < 0 || n > count[managerID(t, mgrs[best])]) {
			best = i
		}
	}
	if best < 0 {
		t.Fatalf("no RUNNING task is held by either manager:%s", sandbox.Describe(ts))
	}
	return mgrs[best], mgrs[1-best]
}

// ranBy wants every task of ts recorded as run by manager id.
func ranBy(t *testing.T, ts []sandbox.Task, id string) {
	t.Helper()
	for _, tk := range ts {
		if tk.ExecutorID == nil || *tk.ExecutorID != id {
			t.Errorf("task %d %s on %s ended under %v, want the surviving manager %s", tk.ID, tk.TaskType, tk.Host, sandbox.Str(tk.ExecutorID), id)
		}
	}
}

// agentsRunningThrough waits until 20 s after the kill (an agent whose
// beats went nowhere since is STOP by then) and wants every agent of the
// cluster RUNNING in m's agentList.
func agentsRunningThrough(ctx context.Context, t *testing.T, m *sandbox.Sandbox, clusterID int64, killed time.Time) {
	t.Helper()
	select {
	case <-time.After(time.Until(killed.Add(20 * time.Second))):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	as, err := m.Client().AgentList(ctx, clusterID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) == 0 {
		t.Fatal("agentList is empty")
	}
	for _, ag := range as {
		if ag.Status != "RUNNING" {
			t.Errorf("agent of %s is %s through the surviving manager (last report %s): it did not fail over", ag.Host, ag.Status, sandbox.Str(ag.LastReportedTime))
		}
	}
}

// waitAgentLog waits until the agent log of h holds s.
func waitAgentLog(ctx context.Context, t *testing.T, h *testhosts.Host, s string) {
	t.Helper()
	for !strings.Contains(agentLog(t, h), s) {
		select {
		case <-ctx.Done():
			t.Fatalf("the agent of %s never logged %q:\n%s", h.Addr, s, tail(agentLog(t, h), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// oneAttempt wants the agents' records of each task's calls (request ids
// t<task>-a<attempt>-<kind>-<n>) from one attempt: the surviving manager
// re-sent the killed one's ids, it did not start the task over.
func oneAttempt(t *testing.T, s *sandbox.Sandbox, ts []sandbox.Task) {
	t.Helper()
	attempt := regexp.MustCompile(`^t\d+-(a\d+)-`)
	for _, tk := range ts {
		h := hostByAddr(t, s, tk.Host)
		seen := map[string]bool{}
		var recs []string
		for _, kind := range []string{"exec", "download", "write"} {
			for _, r := range agentResultRecords(t, h, tk.ID, kind) {
				recs = append(recs, r)
				if m := attempt.FindStringSubmatch(r); m != nil {
					seen[m[1]] = true
				}
			}
		}
		if len(recs) == 0 || len(seen) != 1 {
			t.Errorf("task %d %s on %s: agent records %v, want some, all of one attempt", tk.ID, tk.TaskType, tk.Host, recs)
		}
	}
}
