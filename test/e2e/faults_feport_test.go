package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultFEPortTaken: bad FE confs fail START_SERVICE with the reason;
// back and deployConfig with a fixed conf, then startService and
// buildCluster build a healthy cluster. First the master's query_port is
// taken on its host (the FE plugin sees it before starting the FE); then
// the conf moves query_port but has a priority_networks no host is in, so
// the FE starts and exits, and the task's response carries the tail of
// fe.log.
func TestFaultFEPortTaken(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	master := s.Hosts.Hosts[0]

	pid := toDeployConfig(ctx, t, s, plan)
	// INSTALL_FE's precheck refuses a taken port; here the port is taken
	// after it, as by a program started between install and start.
	ln, err := sandbox.HoldPort(master, 9030)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	// The port is refused before the FE is started at all.
	resp := failMasterStart(ctx, t, c, pid, plan, master.Addr)
	if !strings.Contains(resp, "port in use (query_port 9030)") || !strings.Contains(resp, "fe.conf") {
		t.Fatalf("START_FE with query_port taken: %q; want it to name the port and fe.conf", resp)
	}
	backToDeploy(ctx, t, c, pid)

	// Another query_port, but priority_networks with a typo: the FE starts
	// and exits, and the task shows why from the FE's own log.
	plan.FEConf = strings.Replace(plan.FEConf, "query_port = 9030", "query_port = 9031", 1)
	if !strings.Contains(plan.FEConf, "query_port = 9031") {
		t.Fatal("the FE conf has no query_port = 9030 to change")
	}
	good := plan.FEConf
	plan.FEConf = strings.Replace(good, "priority_networks = "+s.Hosts.Subnet, "priority_networks = 192.0.2.0/24", 1)
	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	resp = failMasterStart(ctx, t, c, pid, plan, master.Addr)
	_, feLog, _ := strings.Cut(resp, "/opt/doris/fe/log/fe.log <==\n")
	if !strings.Contains(resp, "exited while starting") ||
		!strings.Contains(feLog, "ERROR (main|1) [DorisFE.start():0] ip address range configured for priority_networks does not include the current IP address") {
		t.Fatalf("START_FE with a bad priority_networks: %q; want the tail of fe.log with the reason", resp)
	}
	backToDeploy(ctx, t, c, pid)

	// The fixed conf.
	plan.FEConf = good
	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatalf("the wizard with the fixed conf: %v", err)
	}
	if err := s.CheckAlive(ctx, plan, 9031); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// failMasterStart calls startService and waits for the master's START_FE
// to fail and nothing to run (the other FEs wait for the master and stay
// SUBMITTED); it returns that task's response.
func failMasterStart(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64, plan sandbox.Plan, master string) string {
	t.Helper()
	if err := c.StartService(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	ts, err := c.WaitFor(ctx, pid, func(ts []sandbox.Task) bool {
		failed := false
		for _, task := range ts {
			if task.Status == "RUNNING" {
				return false
			}
			failed = failed || task.Host == master && task.TaskType == "START_FE" && task.Status == "FAILURE"
		}
		return failed
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := ""
	for _, task := range ts {
		switch {
		case task.TaskType != "START_FE":
		case task.Host == master:
			resp = sandbox.Str(task.Response)
			t.Logf("START_FE on the master: %s", resp)
		case task.Status != "SUBMITTED":
			t.Errorf("START_FE on %s is %s; want it waiting for the master (SUBMITTED)", task.Host, task.Status)
		}
	}
	return resp
}

// backToDeploy calls back and checks the process is at DEPLOY_CONFIG.
func backToDeploy(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64) {
	t.Helper()
	if err := c.Back(ctx, pid); err != nil {
		t.Fatal(err)
	}
	var p sandbox.Process
	r, err := c.OK(ctx, http.MethodGet, "/api/process/currentProcess", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(&p); err != nil || p.ProcessType != "DEPLOY_CONFIG" {
		t.Fatalf("after back: process %+v (%v); want it at DEPLOY_CONFIG", p, err)
	}
}
