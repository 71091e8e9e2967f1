package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultBEOnAnotherAddress: every host has a second address and the BE
// conf's priority_networks selects it, so each BE chooses an address the
// FE will not add it as, and would refuse every heartbeat.
//   - START_BE reads the address in be.INFO, stops the BE and fails naming
//     priority_networks; back to DEPLOY_CONFIG.
//   - With sys_log_level = WARNING the BE does not log its address, so the
//     start cannot tell; ADD_BACKEND sees the BEs refuse the heartbeats and
//     fails soon (not after aliveTimeout), saying what to fix. Back from
//     BUILD_CLUSTER twice, to DEPLOY_CONFIG, with the fixed conf the wizard
//     builds the cluster.
func TestFaultBEOnAnotherAddress(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	other := map[string]string{} // host -> its second address
	for i, h := range s.Hosts.Hosts {
		// Documentation addresses (RFC 5737), outside the hosts' subnet.
		a := fmt.Sprintf("198.51.100.%d", 10+i)
		if _, err := h.Exec(ctx, "ip", "addr", "add", a+"/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		other[h.Addr] = a
	}
	good := plan.BEConf
	wrong := strings.Replace(good, "priority_networks = "+s.Hosts.Subnet, "priority_networks = 198.51.100.0/24", 1)
	quiet := strings.Replace(wrong, "sys_log_level = INFO", "sys_log_level = WARNING", 1)
	if wrong == good || quiet == wrong {
		t.Fatal("the BE conf has no priority_networks or sys_log_level to change")
	}

	pid := toDeployConfig(ctx, t, s, plan)
	plan.BEConf = wrong
	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)

	// START_BE: the address in be.INFO.
	if err := c.StartService(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	for _, task := range failedTasks(ctx, t, c, pid, "START_BE", len(plan.BEs)) {
		resp := sandbox.Str(task.Response)
		for _, want := range []string{
			fmt.Sprintf("BE on %s announced itself to the cluster as %s, not as %s", task.Host, other[task.Host], task.Host),
			"priority_networks = 198.51.100.0/24", "for example " + task.Host + "/32", "the BE was stopped",
		} {
			if !strings.Contains(resp, want) {
				t.Errorf("START_BE on %s: %q; want it to say %q", task.Host, resp, want)
			}
		}
	}
	backToDeploy(ctx, t, c, pid)

	// ADD_BACKEND: the FE's heartbeats, refused.
	plan.BEConf = quiet
	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	if err := c.StartService(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	if err := c.BuildCluster(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for _, task := range failedTasks(ctx, t, c, pid, "ADD_BACKEND", 1) {
		resp := sandbox.Str(task.Response)
		if !strings.Contains(resp, "refuses the FE's heartbeats") || !strings.Contains(resp, "priority_networks") {
			t.Errorf("ADD_BACKEND: %q; want it to say the BE refuses the heartbeats and name priority_networks", resp)
		}
		named := false
		for _, h := range plan.BEs {
			named = named || strings.Contains(resp, "chose the address "+other[h]+" for itself, not "+h)
		}
		if !named {
			t.Errorf("ADD_BACKEND: %q names no BE's two addresses", resp)
		}
	}
	t.Logf("ADD_BACKEND failed %s after buildCluster (aliveTimeout %s)", time.Since(began).Round(time.Second), plan.Params["aliveTimeout"])

	// Back from BUILD_CLUSTER (to START_SERVICE done), back to DEPLOY_CONFIG.
	if err := c.Back(ctx, pid); err != nil {
		t.Fatalf("back from BUILD_CLUSTER: %v", err)
	}
	backToDeploy(ctx, t, c, pid)
	plan.BEConf = good
	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatalf("the wizard with the fixed conf: %v", err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// failedTasks waits until no task of the current step runs and at least
// min tasks of type typ have failed, and returns those.
func failedTasks(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64, typ string, min int) []sandbox.Task {
	t.Helper()
	var failed []sandbox.Task
	_, err := c.WaitFor(ctx, pid, func(ts []sandbox.Task) bool {
		failed = failed[:0]
		for _, task := range ts {
			if task.Status == "RUNNING" {
				return false
			}
			if task.TaskType == typ && task.Status == "FAILURE" {
				failed = append(failed, task)
			}
		}
		return len(failed) >= min
	})
	if err != nil {
		t.Fatal(err)
	}
	return failed
}
