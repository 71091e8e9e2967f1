package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/agenttest"
)

func init() { agent.RunHelper() } // the real agent below re-executes the test binary

// fakeRole is a role plugin that records its calls; Start runs a detached
// command through the host as a real plugin does.
type fakeRole struct {
	mu       sync.Mutex
	calls    []string
	requests []sdk.Request
	status   []sdk.Facts // answers of Status, in turn; the last repeats
	upgrade  func() (sdk.Result, error)
	changes  []sdk.Change
	restart  bool
}

func (f *fakeRole) record(m string, req sdk.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, m)
	f.requests = append(f.requests, req)
}

func (f *fakeRole) called() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c != "Status" {
			out = append(out, c)
		}
	}
	return strings.Join(out, ",")
}

func (f *fakeRole) last(m string) sdk.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i] == m {
			return f.requests[i]
		}
	}
	return sdk.Request{}
}

func (f *fakeRole) ok(m string, req sdk.Request) (sdk.Result, error) {
	f.record(m, req)
	return sdk.Result{Summary: m + " done"}, nil
}

func (f *fakeRole) Info(context.Context) (sdk.Info, error) { return sdk.Info{}, nil }
func (f *fakeRole) Precheck(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return f.ok("Precheck", r)
}
func (f *fakeRole) Install(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return f.ok("Install", r)
}
func (f *fakeRole) Configure(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return f.ok("Configure", r)
}
func (f *fakeRole) Start(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	if _, err := h.Exec(ctx, sdk.Command{Argv: []string{"true", "start-script"}, Detach: true, Env: map[string]string{"JAVA_HOME": r.Params["javaHome"]}}); err != nil {
		return sdk.Result{}, err
	}
	return f.ok("Start", r)
}
func (f *fakeRole) Stop(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return f.ok("Stop", r)
}
func (f *fakeRole) Remove(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return f.ok("Remove", r)
}
func (f *fakeRole) Register(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	return f.ok("Register", r)
}
func (f *fakeRole) Unregister(_ context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	h.Logf("decommissioning: 10 tablets left")
	return f.ok("Unregister", r)
}
func (f *fakeRole) Status(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	f.record("Status", r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.status) == 0 {
		return sdk.Result{Facts: sdk.Facts{"running": "true", "healthy": "true"}}, nil
	}
	facts := f.status[0]
	if len(f.status) > 1 {
		f.status = f.status[1:]
	}
	return sdk.Result{Facts: facts}, nil
}
func (f *fakeRole) Upgrade(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	f.record("Upgrade", r)
	if _, err := h.Exec(ctx, sdk.Command{Argv: []string{"true", "new-start-script"}, Detach: true}); err != nil {
		return sdk.Result{}, err
	}
	return f.upgrade()
}
func (f *fakeRole) Reconfigure(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	f.record("Reconfigure", r)
	facts := sdk.Facts{"port.http_port": "8131"}
	if f.restart && !r.DryRun {
		facts.SetBool(sdk.FactRestartNeeded, true)
	}
	return sdk.Result{Summary: "reconfigured", Changes: f.changes, Facts: facts}, nil
}

type fakePlugins struct{ r *fakeRole }

func (p fakePlugins) Role(context.Context, int64, string, io.Writer) (sdk.Remote, error) {
	return p.r, nil
}
func (p fakePlugins) Catalogue(context.Context, int64) (map[string]sdk.Info, error) {
	caps := []string{sdk.CapMembership, sdk.CapUpgrade, sdk.CapReconfigure}
	return map[string]sdk.Info{
		"FE":     {Role: "FE", Capabilities: caps, PidFile: "bin/fe.pid"},
		"BE":     {Role: "BE", Capabilities: caps, PidFile: "bin/be.pid"},
		"BROKER": {Role: "BROKER", PidFile: "bin/broker.pid"},
	}, nil
}

// agentFor serves the same real agent for every host.
type agentFor struct {
	client func() *agentclient.Client
}

func (a agentFor) Client(context.Context, int64, string) (*agentclient.Client, error) {
	return a.client(), nil
}

// testAgent is a real agent on loopback with its mutual TLS, installed as
// sshboot lays it out below installDir.
type testAgent struct {
	client    *agentclient.Client
	dataDir   string
	install   string
	stopped   chan struct{}
	stopServe context.CancelFunc
}

func startAgent(t *testing.T) *testAgent {
	t.Helper()
	// Laid out as sshboot installs it below installDir.
	install := filepath.Join(t.TempDir(), "doris")
	home := filepath.Join(install, "agent")
	a, ca, cfg := agenttest.New(t, wire.Config{DataDir: filepath.Join(home, "data"), InstallDir: install,
		CertFile: filepath.Join(home, "conf", "agent.pem"), CAFile: filepath.Join(home, "conf", "ca.pem")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{dataDir: cfg.DataDir, install: install, stopped: make(chan struct{}), stopServe: cancel}
	go func() { _ = a.Serve(ctx, ln); close(ta.stopped) }()
	t.Cleanup(func() { cancel(); <-ta.stopped })
	ta.client = agentclient.New("https://"+ln.Addr().String(), agentclient.WithTLS(ca.ClientTLS("127.0.0.1", nil)),
		agentclient.WithRetries(2), agentclient.WithBackoff(10*time.Millisecond))
	return ta
}

func (ta *testAgent) desired(t *testing.T) map[string]wire.DesiredRole {
	t.Helper()
	out := map[string]wire.DesiredRole{}
	b, err := os.ReadFile(filepath.Join(ta.dataDir, "desired.json"))
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type actionEnv struct {
	st   *store.Store
	role *fakeRole
	ag   *testAgent
	acts runner.Actions
	eng  *Engine
	x    *roleexec.Executor
}

func newActionEnv(t *testing.T) *actionEnv {
	t.Helper()
	f := newFixture(t, "")
	ctx := context.Background()
	// Homes, so pid files resolve; javaHome given at install.
	for _, r := range demoRoles {
		home := "/opt/doris/" + strings.ToLower(r.Role)
		if err := f.st.DB().Model(&store.AgentRole{}).Where("host = ? AND role = ?", r.Host, r.Role).Update("install_dir", home).Error; err != nil {
			t.Fatal(err)
		}
	}
	wiz := store.Process{ClusterID: 1, UserID: 9, Step: 4, Finish: true, Status: "SUCCESS"}
	if err := f.st.CreateProcess(ctx, &wiz); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateTasks(ctx, []store.Task{{ProcessID: wiz.ID, Step: 1, Host: "h2", TaskType: "INSTALL_BE", TaskRole: "BE",
		Status: "SUCCESS", Input: `{"params":{"javaHome":"/opt/jdk"}}`}}); err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t)
	if err := f.st.DB().Model(&store.Agent{}).Where("host = ?", "h2").Update("install_dir", ag.install).Error; err != nil {
		t.Fatal(err)
	}
	box, err := secret.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f.e.sealer = box // the manager's engine and executor share the key
	x := roleexec.New(roleexec.Config{Store: f.st, Agents: agentFor{func() *agentclient.Client { return ag.client }}, Secrets: box})
	t.Cleanup(x.Close)
	role := &fakeRole{upgrade: func() (sdk.Result, error) {
		return sdk.Result{Summary: "upgraded", Facts: sdk.Facts{sdk.FactVersion: "2.1.0"}}, nil
	}}
	acts := NewActions(ActionsConfig{Store: f.st, Plugins: fakePlugins{role}, Exec: x, PollEvery: 10 * time.Millisecond, AliveTimeout: 2 * time.Second}).Map()
	return &actionEnv{st: f.st, role: role, ag: ag, acts: acts, eng: f.e, x: x}
}

// run creates an operation with e.g. e.Stop and runs its tasks in order
// (as the runner would, one at a time), returning their outcomes. A failed
// task is then skipped, so the next operation may start.
func (e *actionEnv) run(t *testing.T, create func(e *Engine) (int64, error)) ([]runner.Outcome, []error, string) {
	t.Helper()
	pid, err := create(e.eng)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.st.TasksOfProcess(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	var outs []runner.Outcome
	var errs []error
	var log strings.Builder
	for _, task := range ts {
		out, err := e.acts[task.TaskType].Run(context.Background(), runner.Job{Task: task, Log: &log})
		outs, errs = append(outs, out), append(errs, err)
		status := store.StatusSuccess
		if err != nil {
			status = store.StatusFailure
		}
		result, _ := json.Marshal(out.Result)
		if err := e.st.DB().Model(&store.Task{}).Where("id = ?", task.ID).Updates(map[string]any{"status": status, "result": string(result), "skip": err != nil}).Error; err != nil {
			t.Fatal(err)
		}
	}
	return outs, errs, log.String()
}

func TestStopAndStartRecordDesiredStates(t *testing.T) {
	e := newActionEnv(t)
	node := []Node{{"h2", "BE"}}
	_, errs, _ := e.run(t, func(g *Engine) (int64, error) { return g.Stop(context.Background(), 1, 1, node) })
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := e.role.called(); got != "Stop" {
		t.Fatalf("calls %s", got)
	}
	if d := e.ag.desired(t)["BE"]; d.State != wire.DesiredStopped || d.PidFile != "/opt/doris/be/bin/be.pid" || d.Order != 2 {
		t.Fatalf("after stop the agent keeps %+v", d)
	}
	_, errs, _ = e.run(t, func(g *Engine) (int64, error) { return g.Start(context.Background(), 1, 1, node) })
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	d := e.ag.desired(t)["BE"]
	if d.State != wire.DesiredRunning || d.Start == nil || strings.Join(d.Start.Argv, " ") != "true start-script" || d.Start.Env["JAVA_HOME"] != "/opt/jdk" {
		t.Fatalf("after start the agent keeps %+v (start %+v)", d, d.Start)
	}
	if p := e.role.last("Start").Params["javaHome"]; p != "/opt/jdk" {
		t.Fatalf("Start got params %v, want installService's", e.role.last("Start").Params)
	}
}

func TestRollingRestartWaitsUntilAlive(t *testing.T) {
	e := newActionEnv(t)
	e.role.status = []sdk.Facts{
		{"running": "true", "healthy": "false"},
		{"running": "true", "healthy": "true", "alive": "false"},
		{"running": "true", "healthy": "true", "alive": "true"},
	}
	outs, errs, log := e.run(t, func(g *Engine) (int64, error) {
		return g.Restart(context.Background(), 1, 1, []Node{{"h2", "BE"}}, true)
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := e.role.called(); got != "Stop,Start" {
		t.Fatalf("calls %s", got)
	}
	if !strings.Contains(outs[0].Response, "alive in the cluster=true") || !strings.Contains(log, "alive in the cluster=false") {
		t.Fatalf("response %q, log %q: want the wait for alive shown", outs[0].Response, log)
	}
	// A node that never comes alive fails the task (the next one waits).
	e.role.status = []sdk.Facts{{"running": "true", "healthy": "true", "alive": "false"}}
	_, errs, _ = e.run(t, func(g *Engine) (int64, error) {
		return g.Restart(context.Background(), 1, 1, []Node{{"h2", "BE"}}, true)
	})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "not ready") {
		t.Fatalf("a node never alive: %v", errs[0])
	}
}

func TestScaleInUnregistersStopsRemovesAndForgets(t *testing.T) {
	e := newActionEnv(t)
	outs, errs, log := e.run(t, func(g *Engine) (int64, error) {
		return g.ScaleIn(context.Background(), 1, 1, ScaleInRequest{Nodes: []Node{{"h2", "BE"}}, Force: true, Purge: true})
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := e.role.called(); got != "Unregister,Stop,Remove" {
		t.Fatalf("calls %s", got)
	}
	if !e.role.last("Unregister").Force || !e.role.last("Remove").Purge {
		t.Fatal("force and purge did not reach the plugin")
	}
	if !strings.Contains(log, "10 tablets left") || !strings.Contains(outs[0].Response, "data removed") {
		t.Fatalf("log %q response %q", log, outs[0].Response)
	}
	if _, err := e.st.GetRole(context.Background(), 1, "h2", "BE"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the role is still recorded: %v", err)
	}
	if _, ok := e.ag.desired(t)["BE"]; ok {
		t.Fatal("the agent still keeps a desired state of the removed BE")
	}
	// Run again (a manager restart after the role was forgotten): nothing to do.
	var task store.Task
	e.st.DB().Where("task_type = ?", TaskScaleIn).Take(&task)
	out, err := e.acts[TaskScaleIn].Run(context.Background(), runner.Job{Task: task, Log: io.Discard})
	if err != nil || !strings.Contains(out.Response, "no longer in the cluster") || e.role.called() != "Unregister,Stop,Remove" {
		t.Fatalf("second run: %q %v, calls %s", out.Response, err, e.role.called())
	}
}

func TestUpgradeChecksTheVersionAndKeepsRollbackAdvice(t *testing.T) {
	e := newActionEnv(t)
	e.role.status = []sdk.Facts{{"running": "true", "healthy": "true", "alive": "true", "version": "2.1.0"}}
	url, sum := "http://pkg/doris-2.1.0.tar.gz", strings.Repeat("ab", 32)
	outs, errs, log := e.run(t, func(g *Engine) (int64, error) {
		return g.Upgrade(context.Background(), 1, 1, UpgradeRequest{PackageURL: url, PackageSHA256: sum, Nodes: []Node{{"h2", "BE"}}})
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if !strings.Contains(log, "the host checks its SHA-256 "+sum+", given as packageSha256") {
		t.Errorf("upgrade log %q does not say how the package is checked", log)
	}
	if r := e.role.last("Upgrade"); r.PackageURL != url || r.PackageSHA256 != sum {
		t.Fatalf("Upgrade got %q %q", r.PackageURL, r.PackageSHA256)
	}
	if !strings.Contains(outs[0].Response, "version 2.1.0") {
		t.Fatalf("response %q", outs[0].Response)
	}
	if d := e.ag.desired(t)["BE"]; d.Start == nil || d.Start.Argv[1] != "new-start-script" {
		t.Fatalf("the agent should keep the new start command: %+v", d.Start)
	}
	// Status still shows the old version: the task fails.
	e.role.status = []sdk.Facts{{"running": "true", "healthy": "true", "alive": "true", "version": "2.0.3"}}
	_, errs, log = e.run(t, func(g *Engine) (int64, error) {
		return g.Upgrade(context.Background(), 1, 1, UpgradeRequest{PackageURL: url, AllowUnverifiedPackage: true, Nodes: []Node{{"h2", "BE"}}})
	})
	if !strings.Contains(log, "WARNING: package "+url+" is UNVERIFIED") {
		t.Errorf("an upgrade allowed without a checksum: log %q does not say so", log)
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "version 2.0.3") {
		t.Fatalf("old version after upgrade: %v", errs[0])
	}
	// The plugin's failure, with how to roll back, is the task's error.
	e.role.upgrade = func() (sdk.Result, error) {
		return sdk.Result{}, &sdk.Failure{Summary: "BE 2.1.0 did not become healthy", Detail: "roll back: mv be.old be and start it"}
	}
	_, errs, _ = e.run(t, func(g *Engine) (int64, error) {
		return g.Upgrade(context.Background(), 1, 1, UpgradeRequest{PackageURL: url, PackageSHA256: sum, Nodes: []Node{{"h2", "BE"}, {"h1", "BE"}}})
	})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "roll back: mv be.old be") {
		t.Fatalf("failed upgrade: %v", errs[0])
	}
}

// An upgrade's package URL is stored with its password sealed, and the
// UPGRADE_NODE task hands the plugin the URL with its password; the task
// log shows neither.
func TestUpgradePackageURLPasswordSealed(t *testing.T) {
	e := newActionEnv(t)
	e.role.status = []sdk.Facts{{"running": "true", "healthy": "true", "alive": "true", "version": "2.1.0"}}
	url, sum := "http://bob:s3cret@pkg/doris-2.1.0.tar.gz", strings.Repeat("ab", 32)
	var pid int64
	_, errs, log := e.run(t, func(g *Engine) (int64, error) {
		id, err := g.Upgrade(context.Background(), 1, 1, UpgradeRequest{PackageURL: url, PackageSHA256: sum, Nodes: []Node{{"h2", "BE"}}})
		pid = id
		return id, err
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if r := e.role.last("Upgrade"); r.PackageURL != url {
		t.Fatalf("Upgrade got %q, want %q", r.PackageURL, url)
	}
	if strings.Contains(log, "s3cret") || strings.Contains(log, secret.SealedPrefix) || !strings.Contains(log, "bob:***@pkg") {
		t.Errorf("task log %q", log)
	}
	p, err := e.st.GetProcess(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.st.TasksOfProcess(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	if !secret.IsSealedURL(p.PackageURL) || strings.Contains(p.PackageURL, "s3cret") || len(ts) != 1 ||
		strings.Contains(ts[0].Input, "s3cret") || !strings.Contains(ts[0].Input, "bob:"+secret.SealedPrefix) {
		t.Fatalf("stored: process %q, tasks %+v", p.PackageURL, ts)
	}
	// An executor without the key fails the task, saying why.
	x := roleexec.New(roleexec.Config{Store: e.st, Agents: agentFor{func() *agentclient.Client { return e.ag.client }}})
	t.Cleanup(x.Close)
	acts := NewActions(ActionsConfig{Store: e.st, Plugins: fakePlugins{e.role}, Exec: x, PollEvery: 10 * time.Millisecond, AliveTimeout: 2 * time.Second}).Map()
	_, err = acts[TaskUpgrade].Run(context.Background(), runner.Job{Task: ts[0], Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "no secret key") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("upgrade without the key: %v", err)
	}
}

func TestConfigDryRunAndRestartOnlyWhereNeeded(t *testing.T) {
	e := newActionEnv(t)
	e.role.changes = []sdk.Change{{Key: "max_tablet_num", Old: "10", New: "20", Impact: sdk.ImpactLive},
		{Key: "be_port", Old: "9060", New: "9061", Impact: sdk.ImpactRestart}}
	outs, errs, log := e.run(t, func(g *Engine) (int64, error) {
		return g.Config(context.Background(), 1, 1, ConfigRequest{Role: "BE", Hosts: []string{"h2"}, Conf: "x", DryRun: true})
	})
	if errs[0] != nil || len(outs) != 1 {
		t.Fatalf("dry run: %v (%d tasks)", errs, len(outs))
	}
	for _, want := range []string{"dry run, nothing changed", `be_port: "9060" -> "9061" (restart)`, `max_tablet_num: "10" -> "20" (live)`} {
		if !strings.Contains(outs[0].Response, want) {
			t.Errorf("response %q lacks %q", outs[0].Response, want)
		}
	}
	if !strings.Contains(log, "be_port") || !strings.Contains(outs[0].Result["changes"], `"impact":"restart"`) {
		t.Errorf("log %q result %v", log, outs[0].Result)
	}
	if !e.role.last("Reconfigure").DryRun || e.role.called() != "Reconfigure" {
		t.Fatalf("calls %s", e.role.called())
	}
	if r, _ := e.st.GetRole(context.Background(), 1, "h2", "BE"); r.Ports != "" {
		t.Fatalf("a dry run recorded ports %s", r.Ports)
	}
	// Applied: live only, no restart.
	e.role.calls = nil
	outs, errs, _ = e.run(t, func(g *Engine) (int64, error) {
		return g.Config(context.Background(), 1, 1, ConfigRequest{Role: "BE", Hosts: []string{"h2"}, Conf: "x"})
	})
	if errs[0] != nil || errs[1] != nil || e.role.called() != "Reconfigure" || !strings.Contains(outs[1].Response, "applied live") {
		t.Fatalf("live change: %v, calls %s, restart task %q", errs, e.role.called(), outs[1].Response)
	}
	if r, _ := e.st.GetRole(context.Background(), 1, "h2", "BE"); !strings.Contains(r.Ports, "8131") {
		t.Fatalf("reported ports not recorded: %q", r.Ports)
	}
	// A restart key: the node restarts.
	e.role.calls, e.role.restart = nil, true
	_, errs, _ = e.run(t, func(g *Engine) (int64, error) {
		return g.Config(context.Background(), 1, 1, ConfigRequest{Role: "BE", Hosts: []string{"h2"}, Conf: "x"})
	})
	if errs[0] != nil || errs[1] != nil || e.role.called() != "Reconfigure,Stop,Start" {
		t.Fatalf("restart change: %v, calls %s", errs, e.role.called())
	}
}

func TestDestroyRemovesRolesAgentsAndMarksTheCluster(t *testing.T) {
	e := newActionEnv(t)
	// Only h2 has an agent that answers here; the others are skipped as
	// an operator would skip hosts that are gone.
	ctx := context.Background()
	if err := e.st.SetAdminAccount(ctx, 1, "root", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	pid, err := e.eng.Destroy(ctx, 1, 1, DestroyRequest{Confirm: "demo", Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := e.st.TasksOfProcess(ctx, pid)
	for _, task := range ts {
		if task.TaskType == TaskRemoveAgent && task.Host != "h2" {
			continue // skipped
		}
		out, err := e.acts[task.TaskType].Run(ctx, runner.Job{Task: task, Log: io.Discard})
		if err != nil {
			t.Fatalf("%s on %s: %v", task.TaskType, task.Host, err)
		}
		if task.TaskType == TaskRemoveAgent && !strings.Contains(out.Response, "removed") {
			t.Fatalf("remove agent: %q", out.Response)
		}
		if task.TaskType == TaskDestroy && !strings.Contains(out.Response, "the agent on h1") {
			t.Fatalf("destroy should name the agents it only forgot: %q", out.Response)
		}
	}
	select {
	case <-e.ag.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not exit")
	}
	if _, err := os.Stat(e.ag.install); !os.IsNotExist(err) {
		t.Fatalf("the agent's install dir is left: %v", err)
	}
	if n := strings.Count(e.role.called(), "Remove"); n != len(demoRoles) || !e.role.last("Remove").Purge {
		t.Fatalf("Remove calls: %s", e.role.called())
	}
	c, _ := e.st.GetCluster(ctx, 1)
	roles, _ := e.st.ListRoles(ctx, 1)
	agents, _ := e.st.ListAgents(ctx, 1)
	if c.DestroyedAt == nil || len(roles) != 0 || len(agents) != 0 {
		t.Fatalf("after destroy: destroyed %v, %d roles, %d agents", c.DestroyedAt, len(roles), len(agents))
	}
	if _, err := e.st.GetAdminAccount(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the destroyed cluster's admin account is kept: %v", err)
	}
}

// The agent of a host that does not answer: the task says what is left.
func TestRemoveAgentOfAGoneHost(t *testing.T) {
	e := newActionEnv(t)
	e.ag.stopServe()
	<-e.ag.stopped
	b, _ := json.Marshal(Input{ClusterID: 1, Host: "h2"})
	_, err := e.acts[TaskRemoveAgent].Run(context.Background(), runner.Job{Task: store.Task{ID: 1, Input: string(b)}, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), filepath.Join(e.ag.install, "agent")) {
		t.Fatalf("gone agent: %v", err)
	}
	if _, err := e.st.AgentOf(context.Background(), 1, "h2"); err != nil {
		t.Fatalf("the agent must stay recorded until it is removed or skipped: %v", err)
	}
}
