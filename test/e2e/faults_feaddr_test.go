package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultFEAnnouncesAnotherAddress: the master FE's host has a second
// address, and the FE conf's priority_networks selects it, so the FE
// starts, is healthy, and announces that address instead of the one it
// was installed for (which used to surface only at ADD_FE). START_FE
// fails naming priority_networks and both addresses, stops the FE and
// removes the metadata it wrote under the wrong address. After back and
// the fixed conf (the wrong announcement still in fe.log) the wizard
// builds the cluster, and the cluster lists the master under its host.
func TestFaultFEAnnouncesAnotherAddress(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	master := s.Hosts.Hosts[0]
	// A documentation address (RFC 5737), outside the hosts' subnet.
	other := "198.51.100.7"
	if _, err := master.Exec(ctx, "ip", "addr", "add", other+"/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}

	pid := toDeployConfig(ctx, t, s, plan)
	good := plan.FEConf
	plan.FEConf = strings.Replace(good, "priority_networks = "+s.Hosts.Subnet, "priority_networks = "+other+"/32", 1)
	if plan.FEConf == good {
		t.Fatal("the FE conf has no priority_networks to change")
	}
	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)

	resp := failMasterStart(ctx, t, c, pid, plan, master.Addr)
	for _, want := range []string{
		"FE on " + master.Addr + " announced itself to the cluster as " + other + ", not as " + master.Addr,
		"priority_networks = " + other + "/32",
		"local address: /" + other + ".",
		"the FE was stopped",
		"removed from /opt/doris/fe/doris-meta",
	} {
		if !strings.Contains(resp, want) {
			t.Fatalf("START_FE of an FE announcing %s: %q; want it to say %q", other, resp, want)
		}
	}
	if strings.Contains(resp, "healthy") {
		t.Fatalf("START_FE calls the FE healthy: %q", resp)
	}
	backToDeploy(ctx, t, c, pid)

	plan.FEConf = good
	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatalf("the wizard with the fixed conf: %v", err)
	}
	// Exactly the plan's FEs, under their hosts: the wrong address did not
	// outlive the fix in the master's metadata.
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}
