package clusterstatus

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/leader"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/store/storetest"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/agenttest"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestMain(m *testing.M) {
	agent.RunHelper()
	os.Exit(pgtest.Run(m))
}

func TestJudge(t *testing.T) {
	facts := func(kv ...string) observation {
		f := sdk.Facts{}
		for i := 0; i < len(kv); i += 2 {
			f[kv[i]] = kv[i+1]
		}
		return observation{facts: f, at: time.Now()}
	}
	stopped := &wire.Process{Role: "BE", Desired: wire.DesiredStopped}
	running := &wire.Process{Role: "BE", Running: true, Desired: wire.DesiredRunning}
	for _, tc := range []struct {
		name  string
		o     observation
		seen  bool
		proc  *wire.Process
		agent string
		want  string
	}{
		{"up", facts("running", "true", "healthy", "true", "alive", "true"), true, running, "RUNNING", StatusUp},
		{"up, role reports no alive", facts("running", "true", "healthy", "true"), true, running, "RUNNING", StatusUp},
		{"not alive in the cluster", facts("running", "true", "healthy", "true", "alive", "false"), true, running, "RUNNING", StatusDown},
		{"not healthy", facts("running", "true", "healthy", "false"), true, running, "RUNNING", StatusDown},
		{"crashed", facts("running", "false", "healthy", "false"), true, running, "RUNNING", StatusDown},
		{"stopped by an operation", facts("running", "false", "healthy", "false"), true, stopped, "RUNNING", StatusStopped},
		{"decommissioning", facts("running", "true", "healthy", "true", "decommissioning", "true"), true, running, "RUNNING", StatusDecommissioning},
		{"never checked", observation{}, false, running, "RUNNING", StatusUnknown},
		{"call failed, agent gone", observation{err: "gone", at: time.Now()}, true, running, "STOP", StatusUnknown},
		{"call failed, agent says stopped", observation{err: "plugin", at: time.Now()}, true, stopped, "RUNNING", StatusStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := judge(tc.o, tc.seen, tc.proc, tc.agent); got != tc.want {
				t.Fatalf("judge = %s (%s), want %s", got, why, tc.want)
			}
		})
	}
}

func TestIsMaster(t *testing.T) {
	for _, tc := range []struct {
		v             string
		master, known bool
	}{{"true", true, true}, {"false", false, true}, {"10.0.0.1:9010", true, true}, {"10.0.0.1", true, true}, {"10.0.0.2:9010", false, true}, {"", false, false}} {
		m, k := isMaster(sdk.Facts{"master": tc.v}, "10.0.0.1")
		if m != tc.master || k != tc.known {
			t.Errorf("master fact %q: (%v, %v), want (%v, %v)", tc.v, m, k, tc.master, tc.known)
		}
	}
}

// statusRole answers Status from a table the test changes.
type statusRole struct {
	sdk.Remote
	mu    sync.Mutex
	facts map[string]sdk.Facts // by host
	calls int
}

func (s *statusRole) Status(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	// A real probe through the agent, as a plugin's Status does.
	if _, err := h.Exec(ctx, sdk.Command{Argv: []string{"true"}}); err != nil {
		return sdk.Result{}, err
	}
	if err := h.WriteFile(ctx, "/tmp/x", nil, 0); err == nil {
		return sdk.Result{}, errors.New("the probe host let Status write")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	f, ok := s.facts[req.Node.Host+"/"+req.Node.Role]
	if !ok {
		return sdk.Result{}, &sdk.Failure{Summary: "no answer"}
	}
	return sdk.Result{Facts: f}, nil
}

type onePlugin struct{ r *statusRole }

func (o onePlugin) Role(context.Context, int64, string, io.Writer) (sdk.Remote, error) {
	return o.r, nil
}

type oneAgent struct{ c *agentclient.Client }

func (o oneAgent) Client(context.Context, int64, string) (*agentclient.Client, error) {
	return o.c, nil
}

func realAgent(t *testing.T) *agentclient.Client {
	t.Helper()
	a, _, _ := agenttest.New(t, wire.Config{})
	return agentclient.New(agenttest.Serve(t, a), agentclient.WithRetries(0))
}

func TestStatusAnswersFromTheCache(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, _ := st.CreateCluster(ctx, "demo")
	for _, r := range []store.AgentRole{
		{ClusterID: c.ID, Host: "h1", Role: "FE", FENodeType: "FOLLOWER", Master: true, Ports: `{"query_port":9030}`},
		{ClusterID: c.ID, Host: "h2", Role: "FE", FENodeType: "FOLLOWER"},
		{ClusterID: c.ID, Host: "h2", Role: "BE"},
	} {
		if err := st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	procs := `[{"role":"BE","pid":0,"running":false,"desired":"stopped"}]`
	now := time.Now() // a heartbeat just now: RUNNING
	for _, a := range []store.Agent{{ClusterID: c.ID, Host: "h1", LastReportedTime: &now}, {ClusterID: c.ID, Host: "h2", LastReportedTime: &now, Processes: procs}} {
		if err := st.DB().Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	x := roleexec.New(roleexec.Config{Store: st, Agents: oneAgent{realAgent(t)}})
	defer x.Close()
	role := &statusRole{facts: map[string]sdk.Facts{
		"h1/FE": {"running": "true", "healthy": "true", "alive": "true", "version": "2.0.3", "master": "false"},
		"h2/FE": {"running": "true", "healthy": "true", "alive": "true", "version": "2.0.3", "master": "h2:9010"},
		"h2/BE": {"running": "false", "healthy": "false"},
	}}
	cache := New(Config{Store: st, Exec: x, Plugins: onePlugin{role}})

	v, err := cache.Status(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Nodes {
		want := StatusUnknown
		if n.Role == "BE" {
			want = StatusStopped // the agent's report says so
		}
		if n.Status != want || n.LastChecked != nil {
			t.Fatalf("before any refresh: %+v, want %s and never checked", n, want)
		}
	}
	if role.calls != 0 {
		t.Fatal("Status called a plugin")
	}
	cache.Refresh(ctx, c.ID)
	v, err = cache.Status(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Node{}
	for _, n := range v.Nodes {
		got[n.Host+"/"+n.Role] = n
	}
	if n := got["h1/FE"]; n.Status != StatusUp || n.Master || n.Version != "2.0.3" || n.Alive == nil || !*n.Alive || n.LastChecked == nil || n.Ports["query_port"] != 9030 || n.Agent != "RUNNING" {
		t.Errorf("h1/FE: %+v", n)
	}
	if n := got["h2/FE"]; n.Status != StatusUp || !n.Master {
		t.Errorf("h2/FE should be UP and the master the cluster reports: %+v", n)
	}
	if n := got["h2/BE"]; n.Status != StatusStopped {
		t.Errorf("h2/BE stopped on purpose: %+v", n)
	}
	if m, ok := cache.Master(c.ID); !ok || m != "h2" {
		t.Errorf("Master = %q, %v; want h2", m, ok)
	}
	// A node that leaves the cluster leaves the cache.
	if err := st.DeleteRole(ctx, c.ID, "h2", "BE"); err != nil {
		t.Fatal(err)
	}
	cache.Refresh(ctx, c.ID)
	cache.mu.Lock()
	_, kept := cache.seen[nodeKey{c.ID, "h2", "BE"}]
	cache.mu.Unlock()
	if kept {
		t.Error("a removed node stayed in the cache")
	}
}

// What the cluster says of a node's membership reaches its record (which
// roleList shows and later plugin calls get), and only when it changes.
func TestRefreshRecordsMembership(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, _ := st.CreateCluster(ctx, "demo")
	for _, r := range []store.AgentRole{{ClusterID: c.ID, Host: "h1", Role: "BE"}, {ClusterID: c.ID, Host: "h2", Role: "BE", Register: true}} {
		if err := st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DB().Model(&store.AgentRole{}).Where("host = ?", "h2").Update("register", true).Error; err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"h1", "h2"} {
		if err := st.DB().Create(&store.Agent{ClusterID: c.ID, Host: h, Status: "RUNNING"}).Error; err != nil {
			t.Fatal(err)
		}
	}
	x := roleexec.New(roleexec.Config{Store: st, Agents: oneAgent{realAgent(t)}})
	defer x.Close()
	role := &statusRole{facts: map[string]sdk.Facts{
		"h1/BE": {"running": "true", "healthy": "true", "registered": "true"},
		"h2/BE": {"running": "true", "healthy": "true"}, // says nothing of membership
	}}
	cache := New(Config{Store: st, Exec: x, Plugins: onePlugin{role}})
	record := func(host string) store.AgentRole {
		t.Helper()
		r, err := st.GetRole(ctx, c.ID, host, "BE")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cache.Refresh(ctx, c.ID)
	if r := record("h1"); !r.Register || !strings.Contains(r.Facts, `"registered":"true"`) {
		t.Fatalf("h1 after the cluster listed it: %+v", r)
	}
	if r := record("h2"); !r.Register {
		t.Fatalf("h2 lost its recorded membership although its Status said nothing of it: %+v", r)
	}
	// The same answer again writes nothing.
	before := record("h1").UpdatedAt
	cache.Refresh(ctx, c.ID)
	if after := record("h1").UpdatedAt; !after.Equal(before) {
		t.Fatalf("an unchanged membership was written again (%v -> %v)", before, after)
	}
	// The cluster dropped it.
	role.mu.Lock()
	role.facts["h1/BE"] = sdk.Facts{"running": "true", "healthy": "true", "registered": "false"}
	role.mu.Unlock()
	cache.Refresh(ctx, c.ID)
	if r := record("h1"); r.Register || !strings.Contains(r.Facts, `"registered":"false"`) {
		t.Fatalf("h1 after the cluster dropped it: %+v", r)
	}
}

// Two managers on one PostgreSQL: only the leader of the job asks the
// nodes, both answer the same status from what it recorded; when the
// leader stops, the other takes over the asking.
func TestOneManagerAsksAllAnswer(t *testing.T) {
	ctx := context.Background()
	_, sts := storetest.Postgres(t, 2)
	st1, st2 := sts[0], sts[1]
	c, _ := st1.CreateCluster(ctx, "demo")
	now := time.Now()
	for _, h := range []string{"h1", "h2"} {
		if err := st1.UpsertRole(ctx, &store.AgentRole{ClusterID: c.ID, Host: h, Role: "BE"}); err != nil {
			t.Fatal(err)
		}
		if err := st1.DB().Create(&store.Agent{ClusterID: c.ID, Host: h, LastReportedTime: &now}).Error; err != nil {
			t.Fatal(err)
		}
	}
	up := map[string]sdk.Facts{"h1/BE": {"running": "true", "healthy": "true", "alive": "true", "version": "2.1.7"},
		"h2/BE": {"running": "true", "healthy": "true", "alive": "true", "version": "2.1.7"}}
	type mgr struct {
		role   *statusRole
		cache  *Cache
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(st *store.Store) *mgr {
		x := roleexec.New(roleexec.Config{Store: st, Agents: oneAgent{realAgent(t)}})
		t.Cleanup(x.Close)
		m := &mgr{role: &statusRole{facts: up}, done: make(chan struct{})}
		m.cache = New(Config{Store: st, Exec: x, Plugins: onePlugin{m.role}, Interval: 50 * time.Millisecond,
			Leader: leader.New(st, JobName, nil)})
		rctx, cancel := context.WithCancel(ctx)
		m.cancel = cancel
		go func() { defer close(m.done); _ = m.cache.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-m.done })
		return m
	}
	calls := func(m *mgr) int { m.role.mu.Lock(); defer m.role.mu.Unlock(); return m.role.calls }
	allUp := func(m *mgr) bool {
		v, err := m.cache.Status(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range v.Nodes {
			if n.Status != StatusUp || n.Version != "2.1.7" || n.LastChecked == nil {
				return false
			}
		}
		return len(v.Nodes) == 2
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m1 := start(st1)
	waitFor("the first manager to ask the nodes", func() bool { return calls(m1) >= 4 })
	m2 := start(st2)
	waitFor("both managers to answer UP", func() bool { return allUp(m1) && allUp(m2) })
	asked := calls(m1)
	waitFor("a few more refreshes", func() bool { return calls(m1) >= asked+6 })
	if n := calls(m2); n != 0 {
		t.Fatalf("the second manager asked the nodes %d times while the first leads", n)
	}
	// The leader stops: the other one asks from now on.
	m1.cancel()
	<-m1.done
	waitFor("the second manager to take over the asking", func() bool { return calls(m2) >= 4 })
	if !allUp(m2) {
		t.Fatal("the second manager's status is not UP after taking over")
	}
}
