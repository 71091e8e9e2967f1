package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultUnreachableHostSkip: a host that does not answer fails its
// INSTALL_AGENT task within the connect timeout; skipping it lets the
// wizard finish on the other hosts, and no later step touches it.
func TestFaultUnreachableHostSkip(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	down := s.Hosts.Hosts[2]
	if err := down.SetReachable(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.SetReachable(context.Background(), true) })

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	// The connect timeout is 10 s: the step must end well within a
	// minute, not after the 60 s registration wait or the task timeout.
	wctx, wcancel := deadline.Context(ctx, 45*time.Second)
	ts, err := c.WaitStep(wctx, pid, nil)
	wcancel()
	if err != nil {
		t.Fatalf("INSTALL_AGENT with %s unreachable did not end: %v", down.Addr, err)
	}
	var skipID int64
	for _, task := range ts {
		resp := sandbox.Str(task.Response)
		switch {
		case task.Host == down.Addr:
			t.Logf("task %d on the unreachable host: %s", task.ID, resp)
			if task.Status != "FAILURE" || !strings.Contains(resp, "unreachable") || !strings.Contains(resp, down.Addr) {
				t.Fatalf("task %d on %s: %s %q; want FAILURE saying the host is unreachable", task.ID, task.Host, task.Status, resp)
			}
			skipID = task.ID
		case task.Status != "SUCCESS":
			t.Fatalf("task %d on %s: %s %q", task.ID, task.Host, task.Status, resp)
		}
	}
	if skipID == 0 {
		t.Fatalf("no INSTALL_AGENT task for %s:%s", down.Addr, sandbox.Describe(ts))
	}
	if err := c.Skip(ctx, skipID); err != nil {
		t.Fatal(err)
	}
	ts, err = c.CurrentTasks(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, task := range ts {
		if task.ID == skipID {
			listed = true
			if task.Skip != "YES" || task.Status != "FAILURE" {
				t.Errorf("skipped task %d in currentTasks: %s skip=%s; want FAILURE skip=YES", skipID, task.Status, task.Skip)
			}
		}
	}
	if !listed {
		t.Errorf("currentTasks does not list skipped task %d", skipID)
	}
	// A skipped task cannot be retried or skipped again.
	if r, err := c.Call(ctx, http.MethodPost, fmt.Sprintf("/api/process/task/retry/%d", skipID), nil); err != nil || r.Status != http.StatusConflict {
		t.Errorf("retry of a skipped task: HTTP %d %q, %v; want 409", r.Status, r.Msg, err)
	}

	// installService naming the skipped host is refused, saying why.
	err = c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256})
	if err == nil || !strings.Contains(err.Error(), down.Addr) || !strings.Contains(err.Error(), "skipped") {
		t.Fatalf("installService naming skipped host %s: %v; want a refusal naming it as skipped", down.Addr, err)
	}

	// The same cluster on the two hosts left: two FE followers, two BEs,
	// the broker moved to host 2.
	h1, h2 := s.Hosts.Hosts[0].Addr, s.Hosts.Hosts[1].Addr
	plan.Hosts = []string{h1, h2}
	plan.FEs = []sandbox.FE{{Host: h1, Type: "FOLLOWER"}, {Host: h2, Type: "FOLLOWER"}}
	plan.BEs = []string{h1, h2}
	plan.Brokers = []string{h2}
	steps, err := c.WalkFrom(ctx, s, pid, plan, "INSTALL_SERVICE")
	if err != nil {
		t.Fatalf("the wizard on the hosts left: %v", err)
	}
	for _, step := range sandbox.Steps {
		if len(steps[step]) == 0 {
			t.Errorf("%s has no tasks", step)
		}
		for _, task := range steps[step] {
			if task.Host == down.Addr {
				t.Errorf("%s has task %d %s for the skipped host", step, task.ID, task.TaskType)
			}
		}
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}

	// The skipped host got no agent.
	var agents []struct {
		Host string `json:"host"`
	}
	mustDecode(t, c, "/api/server/agentList?clusterId=1", &agents)
	for _, a := range agents {
		if a.Host == down.Addr {
			t.Errorf("agentList lists the skipped host %s", down.Addr)
		}
	}
	if len(agents) != 2 {
		t.Errorf("agentList: %d agents, want 2", len(agents))
	}
}
