package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// TestFaultAgentKilledMidTask kills the agent of one host (SIGKILL) while
// its INSTALL_SERVICE tasks are downloading the package (the download is
// held midway by the package server, so the kill lands inside the task).
// The tasks must end FAILURE saying the agent does not answer, never stay
// RUNNING; once the operator starts the agent again, retry succeeds,
// nothing ran twice (one whole download per host, one recorded download
// per task, no half-installed leftovers) and the wizard finishes with a
// healthy cluster.
func TestFaultAgentKilledMidTask(t *testing.T) {
	t.Parallel()
	// Each host downloads the package itself (no relay through the
	// manager): the agent is killed mid-download.
	s := start(t, sandbox.Options{ManagerArgs: []string{"--package-relay", "off"}})
	ctx, cancel := deadline.Context(context.Background(), 60*time.Second)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	h1 := s.Hosts.Hosts[0]

	ss, err := s.StartStallServer(h1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, ss.URL)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := sandbox.Failed(ts); len(f) > 0 {
		t.Fatalf("INSTALL_AGENT failed:%s", sandbox.Describe(f))
	}
	agents, err := c.AgentList(ctx, plan.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	firstRegistered := ""
	for _, a := range agents {
		if a.Host == h1.Addr {
			firstRegistered = sandbox.Str(a.RegisterTime)
		}
	}
	if firstRegistered == "" {
		t.Fatalf("agentList has no registered agent on %s: %+v", h1.Addr, agents)
	}

	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	select {
	case ip := <-ss.Stalled():
		if ip != h1.Addr {
			t.Fatalf("a download from %s was held, want only %s", ip, h1.Addr)
		}
	case <-ctx.Done():
		t.Fatal("the download of h1 never started")
	}
	ts, err = c.CurrentTasks(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	var onH1 []int64
	for _, tk := range ts {
		if tk.Host != h1.Addr {
			continue
		}
		onH1 = append(onH1, tk.ID)
		if tk.Status != "RUNNING" {
			t.Fatalf("task %d %s on h1 is %s while its download is held, want RUNNING", tk.ID, tk.TaskType, tk.Status)
		}
	}
	if len(onH1) != 2 {
		t.Fatalf("want the FE and BE install tasks on h1, got %v", onH1)
	}

	killed, err := sandbox.KillAgent(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed agent pid %d on %s", killed, h1.Addr)

	// Every task ends: h1's fail, saying the agent is gone; the others succeed.
	ts, err = c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatalf("tasks did not end after the agent was killed: %v", err)
	}
	for _, tk := range ts {
		resp := sandbox.Str(tk.Response)
		switch {
		case tk.Host != h1.Addr && tk.Status != "SUCCESS":
			t.Errorf("task %d %s on %s: %s: %s", tk.ID, tk.TaskType, tk.Host, tk.Status, resp)
		case tk.Host == h1.Addr && tk.Status != "FAILURE":
			t.Errorf("task %d %s on h1 is %s after its agent was killed, want FAILURE", tk.ID, tk.TaskType, tk.Status)
		case tk.Host == h1.Addr && !strings.Contains(resp, "the agent on "+h1.Addr+" is not running"):
			t.Errorf("task %d %s on h1: response does not say the agent is gone: %s", tk.ID, tk.TaskType, resp)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The operator starts the agent again; it registers anew.
	if err := sandbox.StartAgent(ctx, h1); err != nil {
		t.Fatal(err)
	}
	waitAgentReregistered(ctx, t, c, plan.ClusterID, h1.Addr, firstRegistered)
	if again, err := sandbox.AgentPid(ctx, h1); err != nil || again == killed {
		t.Fatalf("agent on h1 after restart: pid %d (killed %d): %v", again, killed, err)
	}

	ss.Release()
	ts = retryAll(ctx, t, c, pid, onH1)

	// Nothing ran twice: one whole package per host (h1's first download
	// was cut), one recorded download per task, no leftovers.
	for _, h := range s.Hosts.Hosts {
		wantReq := 1
		if h == h1 {
			wantReq = 2
		}
		if got := ss.Completed(h.Addr); got != 1 {
			t.Errorf("%s received the whole package %d times, want 1", h.Addr, got)
		}
		if got := ss.Requests(h.Addr); got != wantReq {
			t.Errorf("%s began %d downloads, want %d", h.Addr, got, wantReq)
		}
	}
	downloaded := 0
	for _, id := range onH1 {
		recs := agentResultRecords(t, h1, id, "download")
		if len(recs) != 1 {
			t.Errorf("task %d: the agent on h1 recorded %d downloads, want 1: %v", id, len(recs), recs)
		}
		log, err := c.TaskLogText(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		downloaded += strings.Count(log, " downloaded ")
	}
	if downloaded != 1 {
		t.Errorf("the task logs on h1 show %d finished downloads, want 1 (the other task uses the cache)", downloaded)
	}
	assertNoHalfInstall(t, h1)

	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster after the wizard: %v", err)
	}
}

// waitAgentReregistered waits until agentList shows the agent on host RUNNING
// with a registerTime other than before.
func waitAgentReregistered(ctx context.Context, t *testing.T, c *sandbox.Client, clusterID int64, host, before string) {
	t.Helper()
	for {
		agents, err := c.AgentList(ctx, clusterID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range agents {
			if a.Host == host && a.Status == "RUNNING" && sandbox.Str(a.RegisterTime) != before {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent on %s did not register again: %+v", host, agents)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// agentResultRecords lists the result records the agent on h keeps for a task's
// calls of one kind (exec, write, download).
func agentResultRecords(t *testing.T, h *testhosts.Host, taskID int64, kind string) []string {
	t.Helper()
	dir, err := sandbox.OnHost(h, sandbox.AgentHome+"/data/results")
	if err != nil {
		t.Fatal(err)
	}
	all, err := filepath.Glob(filepath.Join(dir, "t"+strconv.FormatInt(taskID, 10)+"-a*-"+kind+"-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		all[i] = filepath.Base(all[i])
	}
	return all
}

// assertNoHalfInstall checks that nothing half-done stays on h: no partial
// downloads in the agent's tmp, no temp unpack or install folders.
func assertNoHalfInstall(t *testing.T, h *testhosts.Host) {
	t.Helper()
	tmp, err := sandbox.OnHost(h, sandbox.AgentHome+"/data/tmp")
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("partial downloads left in the agent's tmp on %s: %v", h.Name, names)
	}
	root, err := sandbox.OnHost(h, sandbox.InstallDir)
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n := d.Name()
		if strings.Contains(n, ".unpack-") || strings.Contains(n, ".old-") || strings.HasSuffix(n, ".installing") {
			t.Errorf("leftover on %s: %s", h.Name, p)
		}
		if d.IsDir() && strings.Count(strings.TrimPrefix(p, root), "/") >= 3 {
			return filepath.SkipDir
		}
		return nil
	})
}
