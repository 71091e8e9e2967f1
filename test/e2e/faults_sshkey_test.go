package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultWrongSSHKey: installAgent with a key no host accepts fails every
// INSTALL_AGENT task with the SSH reason; installAgent again on the same
// process with the right key runs those same tasks again, and the wizard
// goes on to a healthy cluster.
func TestFaultWrongSSHKey(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()

	bad := plan
	bad.SSHKey = s.Hosts.Keys.Unauthorized
	pid, err := c.InstallAgent(ctx, bad, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != len(plan.Hosts) {
		t.Fatalf("%d INSTALL_AGENT tasks, want %d:%s", len(failed), len(plan.Hosts), sandbox.Describe(failed))
	}
	ids := map[int64]string{}
	for _, task := range failed {
		resp := sandbox.Str(task.Response)
		if task.Status != "FAILURE" || !strings.Contains(resp, "authentication refused") || !strings.Contains(resp, "authorized_keys") {
			t.Errorf("task %d on %s: %s %q; want FAILURE naming the refused key", task.ID, task.Host, task.Status, resp)
		}
		if strings.Contains(resp, "PRIVATE KEY") {
			t.Errorf("task %d: the response shows the key", task.ID)
		}
		t.Logf("task %d on %s: %s", task.ID, task.Host, resp)
		ids[task.ID] = task.Host
	}
	if t.Failed() {
		t.FailNow()
	}

	// A step cannot be skipped over: installService is refused while
	// INSTALL_AGENT has failed tasks.
	err = c.InstallService(ctx, pid, plan, nil)
	if err == nil || !strings.Contains(err.Error(), "not done") {
		t.Fatalf("installService after failed agents: %v; want a refusal saying INSTALL_AGENT is not done", err)
	}

	if err := c.ReinstallAgent(ctx, pid, plan, sandbox.InstallDir, s.PackageURL); err != nil {
		t.Fatal(err)
	}
	again, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(ids) {
		t.Fatalf("after installAgent again: %d tasks, want the same %d:%s", len(again), len(ids), sandbox.Describe(again))
	}
	for _, task := range again {
		if ids[task.ID] != task.Host {
			t.Errorf("task %d on %s is new: installAgent again should run the failed tasks again", task.ID, task.Host)
		}
		if task.Status != "SUCCESS" {
			t.Errorf("task %d on %s: %s: %s", task.ID, task.Host, task.Status, sandbox.Str(task.Response))
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	if _, err := c.WalkFrom(ctx, s, pid, plan, "INSTALL_SERVICE"); err != nil {
		t.Fatalf("the rest of the wizard: %v", err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}
