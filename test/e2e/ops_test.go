package e2e

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// installed brings up a sandbox, walks the wizard with the standard plan
// and waits until the status call shows every node UP.
func installed(t *testing.T, db string) (*sandbox.Sandbox, *sandbox.Client, sandbox.Plan) {
	t.Helper()
	o := sandbox.Options{}
	if db == "postgres" {
		o.DB = pgtest.Start(t)
	}
	s := start(t, o)
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	if pid, _, err := c.Walk(ctx, s, plan, nil); err != nil {
		t.Fatalf("wizard (process %d): %v", pid, err)
	}
	st, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP", sandbox.AllUp)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.FEs) + len(plan.BEs) + len(plan.Brokers); len(st.Nodes) != n {
		t.Fatalf("status lists %d nodes, want %d:%s", len(st.Nodes), n, st)
	}
	for _, n := range st.Nodes {
		if n.LastChecked == nil || n.Agent != "RUNNING" || (n.Role == "FE") != (n.FENodeType != nil) {
			t.Errorf("node %+v", n)
		}
		if n.Role == "FE" && n.Master != (n.Host == plan.FEs[0].Host) {
			t.Errorf("FE %s: master %v, want the first follower as master", n.Host, n.Master)
		}
	}
	return s, c, plan
}

func nodeStatus(host, role, want string) func(sandbox.ClusterStatus) bool {
	return func(s sandbox.ClusterStatus) bool {
		n, ok := s.Node(host, role)
		return ok && n.Status == want
	}
}

// TestOpsStatusStopStart: after the wizard every node is UP; one BE is
// stopped (STOPPED in the status, its process gone, the agent keeps it
// stopped) and started again (UP, alive in the cluster).
func TestOpsStatusStopStart(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			s, c, plan := installed(t, db)
			ctx, cancel := deadline.Context(context.Background(), 4*time.Minute)
			defer cancel()
			be := plan.BEs[1]
			node := []sandbox.NodeRef{{Host: be, Role: "BE"}}
			if _, _, err := c.RunOperation(ctx, plan.ClusterID, "stop", map[string]any{"nodes": node}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitStatus(ctx, plan.ClusterID, "the BE is STOPPED", nodeStatus(be, "BE", "STOPPED")); err != nil {
				t.Fatal(err)
			}
			h := hostOf(t, s, be)
			if d := desired(t, h); d["BE"].State != "stopped" {
				t.Fatalf("the agent keeps BE as %+v, want stopped", d["BE"])
			}
			if _, _, err := c.RunOperation(ctx, plan.ClusterID, "start", map[string]any{"nodes": node}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP again", sandbox.AllUp); err != nil {
				t.Fatal(err)
			}
			if d := desired(t, h); d["BE"].State != "running" || d["BE"].Start == nil {
				t.Fatalf("the agent keeps BE as %+v, want running with its start command", d["BE"])
			}
			if err := sandbox.CheckAlive(ctx, plan, 9030); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type desiredRole struct {
	State string `json:"state"`
	Order int    `json:"order"`
	Start *struct {
		Argv []string `json:"argv"`
	} `json:"start"`
	PidFile string `json:"pidFile"`
}

// hostOf is the test host with address addr.
func hostOf(t *testing.T, s *sandbox.Sandbox, addr string) *testhosts.Host {
	t.Helper()
	for _, h := range s.Hosts.Hosts {
		if h.Addr == addr {
			return h
		}
	}
	t.Fatalf("no test host has address %s", addr)
	return nil
}

// desired reads the agent's record of desired role states on h.
func desired(t *testing.T, h *testhosts.Host) map[string]desiredRole {
	t.Helper()
	p, err := sandbox.OnHost(h, sandbox.AgentHome+"/data/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("desired states: %v", err)
	}
	out := map[string]desiredRole{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return out
}
