package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// TestFaultManagerKilledMidStep SIGKILLs the manager twice while a step's
// tasks run, and starts it again on the same data dir and port:
//   - in INSTALL_SERVICE, while every host's package download is held
//     midway by the package server (so the kill surely lands mid-task);
//   - in START_SERVICE, as soon as a START task is seen RUNNING.
//
// Each time the step resumes and completes with the same task ids, each
// SUCCESS (on SQLite at once; on PostgreSQL, where other managers may hold
// tasks, once the killed manager's leases expired: short ones here); the package was downloaded once per host, each role process
// runs once, and the wizard ends with a healthy cluster.
func TestFaultManagerKilledMidStep(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) { t.Parallel(); managerKilledMidStep(t, "") })
	t.Run("PostgreSQL", func(t *testing.T) { t.Parallel(); managerKilledMidStep(t, pgtest.Start(t)) })
}

// restartNote ends the note of a task taken over after a restart (SQLite)
// or after its manager's lease expired (PostgreSQL).
const restartNote = "while this task ran; running it again"

func managerKilledMidStep(t *testing.T, db string) {
	// Each host downloads the package itself, held at the package server,
	// so the kill lands while every host is mid-download (the relay
	// through the manager is TestPackageOncePerCluster's).
	opts := sandbox.Options{DB: db, ManagerArgs: []string{"--package-relay", "off"}}
	if db != "" {
		opts.ManagerArgs = append(opts.ManagerArgs, "--task-lease", "3s")
	}
	s := start(t, opts)
	ctx, cancel := deadline.Context(context.Background(), 100*time.Second)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()

	ss, err := s.StartStallServer()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, ss.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := c.WaitStep(ctx, pid, nil); err != nil || len(sandbox.Failed(ts)) > 0 {
		t.Fatalf("INSTALL_AGENT: %v%s", err, sandbox.Describe(sandbox.Failed(ts)))
	}

	// INSTALL_SERVICE: kill while every host's download is held.
	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for len(held) < len(s.Hosts.Hosts) {
		select {
		case ip := <-ss.Stalled():
			held[ip] = true
		case <-ctx.Done():
			t.Fatalf("downloads held: %v, want every host", held)
		}
	}
	before, err := c.CurrentTasks(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range before {
		if tk.Status != "RUNNING" {
			t.Fatalf("task %d %s on %s is %s while the downloads are held, want RUNNING", tk.ID, tk.TaskType, tk.Host, tk.Status)
		}
	}
	restartManager(ctx, t, s)
	ss.Release()
	after := waitStepOK(ctx, t, c, pid, "INSTALL_SERVICE")
	sameTasks(t, before, after)
	for _, h := range s.Hosts.Hosts {
		if n, m := ss.Requests(h.Addr), ss.Completed(h.Addr); n != 1 || m != 1 {
			t.Errorf("%s: %d downloads begun, %d completed; want 1 and 1 (the resumed tasks must join the one in flight)", h.Addr, n, m)
		}
	}
	for _, tk := range after {
		log, err := c.TaskLogText(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(log, restartNote); n != 1 {
			t.Errorf("task %d %s on %s: the log notes the restart %d times, want 1:\n%s", tk.ID, tk.TaskType, tk.Host, n, log)
		}
		h := hostByAddr(t, s, tk.Host)
		if recs := agentResultRecords(t, h, tk.ID, "download"); len(recs) != 1 {
			t.Errorf("task %d on %s: %d download records, want 1: %v", tk.ID, tk.Host, len(recs), recs)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	waitStepOK(ctx, t, c, pid, "DEPLOY_CONFIG")

	// START_SERVICE: kill as soon as a start is under way.
	if err := c.StartService(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	before, err = waitAnyRunning(ctx, c, pid)
	if err != nil {
		t.Fatal(err)
	}
	restartManager(ctx, t, s)
	after = waitStepOK(ctx, t, c, pid, "START_SERVICE")
	sameTasks(t, before, after)
	resumed := 0
	for _, tk := range after {
		log, err := c.TaskLogText(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		resumed += strings.Count(log, restartNote)
	}
	t.Logf("START_SERVICE: %d of %d tasks were resumed after the restart", resumed, len(after))
	if resumed == 0 {
		t.Errorf("no START task notes the restart, but one was RUNNING when the manager was killed")
	}
	// Each role process runs once, and it is the one the task reported.
	for _, tk := range after {
		role := strings.TrimPrefix(tk.TaskType, "START_")
		h := hostByAddr(t, s, tk.Host)
		pids := roleProcesses(ctx, t, h, role)
		var res map[string]string
		_ = json.Unmarshal([]byte(sandbox.Str(tk.Result)), &res)
		if len(pids) != 1 || strconv.Itoa(pids[0]) != res["pid"] {
			t.Errorf("%s on %s: processes %v, task %d reported pid %q; want exactly that one", role, tk.Host, pids, tk.ID, res["pid"])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	if _, err := c.WalkFrom(ctx, s, pid, plan, "BUILD_CLUSTER"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster after the wizard: %v", err)
	}
}

// restartManager SIGKILLs the manager and starts it again on the same
// data dir, database and port.
func restartManager(ctx context.Context, t *testing.T, s *sandbox.Sandbox) {
	t.Helper()
	if err := s.StopManager(true); err != nil {
		t.Fatalf("kill the manager: %v", err)
	}
	if err := s.StartManager(ctx); err != nil {
		t.Fatalf("start the manager again: %v", err)
	}
}

func waitStepOK(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64, step string) []sandbox.Task {
	t.Helper()
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if f := sandbox.Failed(ts); len(f) > 0 {
		t.Fatalf("%s failed:%s", step, sandbox.Describe(f))
	}
	return ts
}

// sameTasks wants the same task ids after the restart as before: none
// lost, none added.
func sameTasks(t *testing.T, before, after []sandbox.Task) {
	t.Helper()
	ids := func(ts []sandbox.Task) []int64 {
		var out []int64
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		slices.Sort(out)
		return out
	}
	if b, a := ids(before), ids(after); !slices.Equal(b, a) {
		t.Fatalf("tasks before the kill %v, after the restart %v", b, a)
	}
}

// waitAnyRunning polls currentTasks until one task is RUNNING and returns
// the tasks seen then.
func waitAnyRunning(ctx context.Context, c *sandbox.Client, pid int64) ([]sandbox.Task, error) {
	for {
		ts, err := c.CurrentTasks(ctx, pid)
		if err != nil {
			return nil, err
		}
		for _, tk := range ts {
			if tk.Status == "RUNNING" {
				return ts, nil
			}
		}
		select {
		case <-ctx.Done():
			return ts, fmt.Errorf("no task became RUNNING:%s", sandbox.Describe(ts))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func hostByAddr(t *testing.T, s *sandbox.Sandbox, addr string) *testhosts.Host {
	t.Helper()
	for _, h := range s.Hosts.Hosts {
		if h.Addr == addr {
			return h
		}
	}
	t.Fatalf("no host %s", addr)
	return nil
}

// roleProcesses lists the live processes of a role on h: the simulator
// names them as Doris does (doris_be; java for FE and broker, told apart
// by their home on the command line).
func roleProcesses(ctx context.Context, t *testing.T, h *testhosts.Host, role string) []int {
	t.Helper()
	all, err := h.Pids(ctx)
	if err != nil {
		t.Fatal(err)
	}
	comm, home := "java", sandbox.InstallDir+"/fe/"
	switch role {
	case "BE":
		comm, home = "doris_be", sandbox.InstallDir+"/be/"
	case "BROKER":
		home = sandbox.InstallDir + "/apache_hdfs_broker/"
	}
	var out []int
	for _, p := range all {
		cm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.TrimSpace(string(cm)) == comm && strings.Contains(string(cmd), home) && testhosts.PidAlive(p) {
			out = append(out, p)
		}
	}
	return out
}
