package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestScaleOut grows a running cluster with the wizard: a first process
// installs an FE (the master) and two BEs on two hosts; a second process on
// the same cluster adds a FOLLOWER on the second host and an OBSERVER, a BE
// and a BROKER on the third. The new FEs join the running master (the
// second process lists no master), and the whole cluster is alive.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 8*time.Minute)
	defer cancel()
	c := s.Client()
	full := s.StandardPlan()
	h1, h2, h3 := full.Hosts[0], full.Hosts[1], full.Hosts[2]

	first := full
	first.Hosts = []string{h1, h2}
	first.FEs = []sandbox.FE{{Host: h1, Type: "FOLLOWER"}}
	first.BEs = []string{h1, h2}
	first.Brokers = nil
	if pid, _, err := c.Walk(ctx, s, first, nil); err != nil {
		t.Fatalf("first process (%d): %v", pid, err)
	}
	checkCluster(ctx, t, s, first)

	second := full
	second.Hosts = []string{h2, h3}
	second.FEs = []sandbox.FE{{Host: h2, Type: "FOLLOWER"}, {Host: h3, Type: "OBSERVER"}}
	second.BEs = []string{h3}
	second.Brokers = []string{h3}
	if pid, _, err := c.Walk(ctx, s, second, nil); err != nil {
		t.Fatalf("scale-out process (%d): %v", pid, err)
	}

	all := full
	all.FEs = []sandbox.FE{{Host: h1, Type: "FOLLOWER"}, {Host: h2, Type: "FOLLOWER"}, {Host: h3, Type: "OBSERVER"}}
	all.BEs = []string{h1, h2, h3}
	all.Brokers = []string{h3}
	checkCluster(ctx, t, s, all)
	roles, err := c.RoleList(ctx, all.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(all.FEs) + len(all.BEs) + len(all.Brokers); len(roles) != want {
		t.Errorf("roleList has %d roles after the scale-out, want %d: %+v", len(roles), want, roles)
	}
}
