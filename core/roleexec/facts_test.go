package roleexec

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// scripted is a role plugin that answers each method with the facts
// scripted for it and records the requests it got. It never touches the
// host.
type scripted struct {
	mu    sync.Mutex
	facts map[string]sdk.Facts // by method
	got   map[string][]sdk.Request
}

func (s *scripted) answer(method string, req sdk.Request) (sdk.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[method] = append(s.got[method], req)
	f, ok := s.facts[method]
	if !ok {
		return sdk.Result{}, errors.New(method + " is not scripted")
	}
	return sdk.Result{Summary: method + " done", Facts: f}, nil
}

func (s *scripted) last(method string) sdk.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.got[method]
	return rs[len(rs)-1]
}

func (s *scripted) Info(context.Context) (sdk.Info, error) { return sdk.Info{}, nil }
func (s *scripted) Precheck(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Precheck", r)
}
func (s *scripted) Install(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Install", r)
}
func (s *scripted) Configure(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Configure", r)
}
func (s *scripted) Start(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Start", r)
}
func (s *scripted) Stop(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Stop", r)
}
func (s *scripted) Status(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Status", r)
}
func (s *scripted) Remove(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Remove", r)
}
func (s *scripted) Register(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Register", r)
}
func (s *scripted) Unregister(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Unregister", r)
}
func (s *scripted) Upgrade(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Upgrade", r)
}
func (s *scripted) Reconfigure(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return s.answer("Reconfigure", r)
}

type oneRole struct{ r *scripted }

func (o oneRole) Role(context.Context, int64, string, io.Writer) (sdk.Remote, error) { return o.r, nil }

// noAgents hands out clients to an address nothing listens on: the
// scripted plugin never uses the host.
type noAgents struct{}

func (noAgents) Client(context.Context, int64, string) (*agentclient.Client, error) {
	return agentclient.New("http://127.0.0.1:1"), nil
}

type factsEnv struct {
	st   *store.Store
	e    *Executor
	role *scripted
	p    store.Process
	key  store.RoleKey
}

func newFactsEnv(t *testing.T) *factsEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := st.CreateCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.AgentRole{
		{ClusterID: c.ID, Host: "h1", Role: "FE", FENodeType: "FOLLOWER", Master: true, InstallDir: "/opt/doris/fe"},
		{ClusterID: c.ID, Host: "h1", Role: "EXPORTER", InstallDir: "/opt/doris/exporter"},
	} {
		if err := st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	p := store.Process{ClusterID: c.ID, UserID: 1, Status: store.ProcessRunning}
	if err := st.CreateProcess(ctx, &p); err != nil {
		t.Fatal(err)
	}
	role := &scripted{facts: map[string]sdk.Facts{}, got: map[string][]sdk.Request{}}
	e := New(Config{Store: st, Roles: oneRole{role}, Agents: noAgents{}})
	t.Cleanup(e.Close)
	return &factsEnv{st: st, e: e, role: role, p: p, key: store.RoleKey{ClusterID: c.ID, Host: "h1", Role: "EXPORTER"}}
}

func (f *factsEnv) run(t *testing.T, taskType string, in task.Role) runner.Outcome {
	t.Helper()
	a, ok := f.e.Resolve(taskType)
	if !ok {
		t.Fatalf("no action for %s", taskType)
	}
	in.ClusterID, in.Host, in.Role = f.key.ClusterID, f.key.Host, f.key.Role
	out, err := a.Run(context.Background(), runner.Job{Task: store.Task{ID: 7, ProcessID: f.p.ID, TaskType: taskType, Input: task.Encode(in)}, Log: io.Discard})
	if err != nil {
		t.Fatalf("%s: %v", taskType, err)
	}
	return out
}

func (f *factsEnv) record(t *testing.T) (sdk.Facts, map[string]int, store.AgentRole) {
	t.Helper()
	rs, err := f.st.RolesOfHost(context.Background(), f.key.ClusterID, f.key.Host)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Role == f.key.Role {
			var facts sdk.Facts
			var ports map[string]int
			_ = json.Unmarshal([]byte(r.Facts), &facts)
			_ = json.Unmarshal([]byte(r.Ports), &ports)
			return facts, ports, r
		}
	}
	t.Fatal("role not recorded")
	return nil, nil, store.AgentRole{}
}

func TestFactsAreKeptAndHandedBack(t *testing.T) {
	f := newFactsEnv(t)
	f.role.facts["Precheck"] = sdk.Facts{"java": "17", "swap": "off"}
	f.role.facts["Install"] = sdk.Facts{"installDir": "/opt/doris/exporter", "swap": "on"}
	out := f.run(t, "INSTALL_EXPORTER", task.Role{PackageURL: "http://x/e.tgz", Params: map[string]string{"listenPort": "9100"}})
	if out.Result["java"] != "17" || out.Result["swap"] != "on" {
		t.Fatalf("outcome facts %v", out.Result)
	}
	req := f.role.last("Install")
	if req.Node.Home != "/opt/doris/exporter" || req.Node.InstallDir != "/opt/doris" || req.PackageURL != "http://x/e.tgz" ||
		req.Params["listenPort"] != "9100" || req.Node.Labels != nil || len(req.Node.Facts) != 0 {
		t.Fatalf("install request node %+v", req)
	}
	// The FE's placement reaches plugins as labels, the master first.
	if fe := req.Cluster.Nodes[0]; fe.Role != "FE" || !reflect.DeepEqual(fe.Labels, map[string]string{"feNodeType": "FOLLOWER", "master": "true"}) {
		t.Fatalf("cluster nodes %+v", req.Cluster.Nodes)
	}

	f.role.facts["Configure"] = sdk.Facts{sdk.PortFact("http"): "9100", sdk.PortFact("admin"): "9101", "bogus": strings.Repeat("x", maxFactValue+1)}
	f.run(t, "DEPLOY_EXPORTER_CONFIG", task.Role{Conf: "x=1"})
	if req := f.role.last("Configure"); req.Node.Facts["java"] != "17" || req.Node.Facts["swap"] != "on" || req.Conf != "x=1" {
		t.Fatalf("configure got node facts %v", req.Node.Facts)
	}
	facts, ports, _ := f.record(t)
	if !reflect.DeepEqual(ports, map[string]int{"http": 9100, "admin": 9101}) || facts["bogus"] != "" || facts["port.admin"] != "9101" {
		t.Fatalf("after configure: facts %v ports %v", facts, ports)
	}
	// A new Configure replaces the ports; Start's facts merge.
	f.role.facts["Configure"] = sdk.Facts{sdk.PortFact("http"): "9200"}
	f.run(t, "DEPLOY_EXPORTER_CONFIG", task.Role{Conf: "x=2"})
	f.role.facts["Start"] = sdk.Facts{sdk.FactRunning: "true"}
	f.run(t, "START_EXPORTER", task.Role{})
	if req := f.role.last("Start"); !reflect.DeepEqual(req.Node.Ports, map[string]int{"http": 9200}) {
		t.Fatalf("start got ports %v", req.Node.Ports)
	}
	facts, ports, r := f.record(t)
	want := sdk.Facts{"java": "17", "swap": "on", "installDir": "/opt/doris/exporter", "port.http": "9200", "running": "true"}
	if !reflect.DeepEqual(facts, want) || !reflect.DeepEqual(ports, map[string]int{"http": 9200}) || r.Register {
		t.Fatalf("after start: facts %v (want %v), ports %v", facts, want, ports)
	}

	f.role.facts["Register"] = sdk.Facts{sdk.FactRegistered: "true"}
	f.run(t, "ADD_EXPORTER", task.Role{})
	if _, _, r := f.record(t); !r.Register {
		t.Fatal("registration not recorded")
	}
}

func TestResolveByStep(t *testing.T) {
	e := New(Config{})
	defer e.Close()
	for tt, want := range map[string]op{"INSTALL_FE": opInstall, "DEPLOY_X_CONFIG": opConfigure, "START_BROKER": opStart,
		"ADD_BACKEND": opRegister, "ADD_EXPORTER": opRegister} {
		a, ok := e.Resolve(tt)
		if !ok || a.(action).op != want {
			t.Errorf("Resolve(%s) = %v, %v; want op %d", tt, a, ok, want)
		}
	}
	for _, tt := range []string{process.TaskInstallAgent, "STOP_FE", "INSTALL_", ""} {
		if _, ok := e.Resolve(tt); ok {
			t.Errorf("Resolve(%q) found an action", tt)
		}
	}
}
