package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// eachDB runs body in parallel on two installed clusters, one managed on
// SQLite and one on PostgreSQL, with ctx bounded by limit.
func eachDB(t *testing.T, limit time.Duration, body func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			s, c, plan := installed(t, db)
			ctx, cancel := deadline.Context(context.Background(), limit)
			defer cancel()
			body(ctx, t, s, c, plan)
		})
	}
}

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
	pid, _, err := c.Walk(ctx, s, plan, nil)
	if err != nil {
		t.Fatalf("wizard (process %d): %v", pid, err)
	}
	// The operations run on a cluster whose root has a password.
	checkAdminPassword(ctx, t, s, c, plan, pid)
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
	eachDB(t, 4*time.Minute, func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
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
		waitAlive(ctx, t, s, plan)
	})
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

// TestOpsRebootRecovery cuts the power of two hosts (every process but
// their init and sshd is killed) and starts only their agents again: each
// agent starts the roles that ran before, the FE master first, and leaves
// the broker an operation had stopped alone.
func TestOpsRebootRecovery(t *testing.T) {
	t.Parallel()
	s, c, plan := installed(t, "sqlite")
	ctx, cancel := deadline.Context(context.Background(), 4*time.Minute)
	defer cancel()
	broker := plan.Brokers[0]
	if _, _, err := c.RunOperation(ctx, plan.ClusterID, "stop", map[string]any{"nodes": []sandbox.NodeRef{{Host: broker, Role: "BROKER"}}}); err != nil {
		t.Fatal(err)
	}
	master := hostOf(t, s, plan.FEs[0].Host)
	other := hostOf(t, s, broker)
	for _, h := range []*testhosts.Host{master, other} {
		killed, err := sandbox.PowerCut(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("power cut on %s killed %v", h.Name, killed)
	}
	if _, err := c.WaitStatus(ctx, plan.ClusterID, "the master's host is seen down", func(st sandbox.ClusterStatus) bool {
		n, ok := st.Node(master.Addr, "FE")
		return ok && n.Status != "UP"
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*testhosts.Host{master, other} {
		if err := sandbox.StartAgent(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.WaitStatus(ctx, plan.ClusterID, "every node but the stopped broker is UP", func(st sandbox.ClusterStatus) bool {
		for _, n := range st.Nodes {
			want := "UP"
			if n.Host == broker && n.Role == "BROKER" {
				want = "STOPPED"
			}
			if n.Status != want {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the power cuts:%s", st)
	log := agentLog(t, master)
	fe, be := strings.Index(log, `starting role recorded as running: role=FE`), strings.Index(log, `starting role recorded as running: role=BE`)
	if fe < 0 || be < 0 || fe > be {
		t.Fatalf("the agent on the master's host should start FE, then BE; its log:\n%s", tail(log, 3000))
	}
	if strings.Contains(agentLog(t, other), "starting role recorded as running: role=BROKER") {
		t.Fatal("the agent started the broker an operation had stopped")
	}
	// The stopped broker starts through the API as ever.
	if _, _, err := c.RunOperation(ctx, plan.ClusterID, "start", map[string]any{"nodes": []sandbox.NodeRef{{Host: broker, Role: "BROKER"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP", sandbox.AllUp); err != nil {
		t.Fatal(err)
	}
	waitAlive(ctx, t, s, plan)
}

// waitAlive waits until the cluster itself reports exactly the plan's
// nodes alive (its heartbeats lag a start by a second or so).
func waitAlive(ctx context.Context, t *testing.T, s *sandbox.Sandbox, plan sandbox.Plan) {
	t.Helper()
	for {
		err := s.CheckAlive(ctx, plan, 9030)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the cluster does not report every node alive: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func agentLog(t *testing.T, h *testhosts.Host) string {
	t.Helper()
	p, err := sandbox.OnHost(h, sandbox.AgentHome+"/log/agent.out")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// querier asks the cluster "SELECT 1" every 100 ms through any FE that
// answers, and counts the rounds in which none did.
type querier struct {
	dbs    []*sql.DB
	rounds int
	failed []string
	stop   chan struct{}
	done   chan struct{}
}

func startQuerier(t *testing.T, s *sandbox.Sandbox, plan sandbox.Plan) *querier {
	t.Helper()
	q := &querier{stop: make(chan struct{}), done: make(chan struct{})}
	for _, fe := range plan.FEs {
		cfg, err := s.MySQLConfig(context.Background(), plan.ClusterID, net.JoinHostPort(fe.Host, "9030"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Timeout, cfg.ReadTimeout = time.Second, 2*time.Second
		db, err := sandbox.OpenDB(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db.SetConnMaxLifetime(time.Second)
		q.dbs = append(q.dbs, db)
	}
	go func() {
		defer close(q.done)
		for {
			select {
			case <-q.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			q.rounds++
			ok := false
			var errs []string
			for _, db := range q.dbs {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				var one int
				err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
				cancel()
				if err == nil && one == 1 {
					ok = true
					break
				}
				errs = append(errs, fmt.Sprint(err))
			}
			if !ok {
				q.failed = append(q.failed, time.Now().Format("15:04:05.000")+": "+strings.Join(errs, "; "))
			}
		}
	}()
	return q
}

func (q *querier) finish() {
	close(q.stop)
	<-q.done
	for _, db := range q.dbs {
		db.Close()
	}
}

// TestOpsRollingRestart restarts every node, one at a time in Doris's
// order, while a client queries the cluster: some FE answers throughout.
func TestOpsRollingRestart(t *testing.T) {
	t.Parallel()
	eachDB(t, 6*time.Minute, func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
		q := startQuerier(t, s, plan)
		started := time.Now()
		_, ts, err := c.RunOperation(ctx, plan.ClusterID, "restart", map[string]any{"rolling": true})
		q.finish()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rolling restart of %d nodes took %s; %d query rounds", len(ts), time.Since(started).Round(time.Millisecond), q.rounds)
		if len(q.failed) > 0 || q.rounds < 10 {
			t.Fatalf("no FE answered in %d of %d rounds: %s", len(q.failed), q.rounds, strings.Join(q.failed, "\n"))
		}
		// One node after the other: BEs first, the master FE last.
		var order []string
		for _, x := range ts {
			if x.TaskType != "RESTART_NODE" || x.Status != "SUCCESS" {
				t.Fatalf("task %+v", x)
			}
			order = append(order, x.Host)
		}
		if len(ts) != len(plan.FEs)+len(plan.BEs)+len(plan.Brokers) || ts[len(ts)-1].Host != plan.FEs[0].Host {
			t.Fatalf("restart order %v: want every node, the master %s last", order, plan.FEs[0].Host)
		}
		for i := 1; i < len(ts); i++ {
			if ts[i].StartTime == nil || ts[i-1].EndTime == nil || *ts[i].StartTime < *ts[i-1].EndTime {
				t.Fatalf("task %d started before task %d ended", ts[i].ID, ts[i-1].ID)
			}
		}
		if _, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP", sandbox.AllUp); err != nil {
			t.Fatal(err)
		}
		waitAlive(ctx, t, s, plan)
	})
}

// TestOpsDestroy destroys the cluster: no process of it and no role or
// agent folder is left on the hosts, and the manager forgets its nodes.
func TestOpsDestroy(t *testing.T) {
	t.Parallel()
	eachDB(t, 4*time.Minute, func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
		if r, err := c.Call(ctx, "POST", fmt.Sprintf("/api/cluster/%d/destroy", plan.ClusterID), map[string]any{"confirm": "nope"}); err != nil || r.Code != 400 {
			t.Fatalf("destroy with a wrong confirm: %+v %v", r, err)
		}
		st, err := c.Status(ctx, plan.ClusterID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.RunOperation(ctx, plan.ClusterID, "destroy", map[string]any{"confirm": st.Name, "purge": true}); err != nil {
			t.Fatal(err)
		}
		for _, h := range s.Hosts.Hosts {
			pids, err := h.Pids(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pids {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
				if name := strings.TrimSpace(string(comm)); name != "tini" && !strings.HasPrefix(name, "sshd") && name != "" {
					t.Errorf("%s still runs %s (pid %d)", h.Name, name, p)
				}
			}
			for _, dir := range []string{"fe", "be", "apache_hdfs_broker", "agent"} {
				p, _ := sandbox.OnHost(h, sandbox.InstallDir+"/"+dir)
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s: %s/%s is left (%v)", h.Name, sandbox.InstallDir, dir, err)
				}
			}
			// Nothing else was there, so nothing is left: no package
			// cache, no folder (the agent removes it once empty).
			root, _ := sandbox.OnHost(h, sandbox.InstallDir)
			if ents, err := os.ReadDir(root); !os.IsNotExist(err) {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("%s: %s is left, holding %v (%v)", h.Name, sandbox.InstallDir, names, err)
			}
		}
		st, err = c.Status(ctx, plan.ClusterID)
		if err != nil || !st.Destroyed || len(st.Nodes) != 0 {
			t.Fatalf("status after destroy: %+v %v", st, err)
		}
		if roles, err := c.RoleList(ctx, plan.ClusterID); err != nil || len(roles) != 0 {
			t.Fatalf("roleList after destroy: %v %v", roles, err)
		}
		if agents, err := c.AgentList(ctx, plan.ClusterID); err != nil || len(agents) != 0 {
			t.Fatalf("agentList after destroy: %v %v", agents, err)
		}
		if r, err := c.Call(ctx, "POST", fmt.Sprintf("/api/cluster/%d/start", plan.ClusterID), nil); err != nil || r.Code != 409 || !strings.Contains(r.Msg, "destroyed") {
			t.Fatalf("start after destroy: %+v %v", r, err)
		}
	})
}
