package process

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// withRoles is the Doris catalogue plus more roles.
func withRoles(extra ...sdk.Info) staticCatalogue {
	c := dorisCatalogue()
	for _, i := range extra {
		c[i.Role] = i
	}
	return c
}

func newFixtureWith(t *testing.T, cat Catalogue) *fixture {
	t.Helper()
	f := newFixture(t, "")
	f.e.cat = cat
	return f
}

var exporter = sdk.Info{Name: "exporter", Role: "EXPORTER", Version: "0.1.0", APIMajor: sdk.APIMajor, PidFile: "run/exporter.pid",
	Params: []sdk.Param{{Name: "listenPort", Type: sdk.ParamInt, Default: "9100"}, {Name: "scrape", Type: sdk.ParamDuration}}}

// walk drives a process through the wizard with every task succeeding;
// each step's tasks are returned.
type walk struct {
	t   *testing.T
	f   *fixture
	pid int64
}

func (f *fixture) start(t *testing.T, hosts ...string) *walk {
	t.Helper()
	pid, err := f.e.InstallAgent(context.Background(), 1, agentReq(t, hosts...))
	if err != nil {
		t.Fatal(err)
	}
	f.finishStep(pid, 0, store.StatusSuccess)
	return &walk{t, f, pid}
}

func (w *walk) step(n int, err error) []store.Task {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("step %s: %v", StepTypes[n], err)
	}
	ts := w.f.tasks(w.pid, n)
	w.f.finishStep(w.pid, n, store.StatusSuccess)
	return ts
}

func types(ts []store.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.TaskType+"@"+t.Host)
	}
	return out
}

func TestThirdPartyRoleOnAnExistingCluster(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, withRoles(exporter))
	// The Doris cluster first.
	w := f.start(t, "h1", "h2")
	w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h2", Role: "BE"}}}))
	w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1"}, Role: "FE", Conf: "a=1"}, {Hosts: []string{"h2"}, Role: "BE", Conf: "b=1"}}}))
	w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h1", "FE"}, {"h2", "BE"}}}))
	w.step(4, f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{"h1"}, BEHosts: []string{"h2"}}))
	if err := f.e.Complete(ctx, 1, w.pid); err != nil {
		t.Fatal(err)
	}

	// A second process adds the exporter everywhere: no FE listed, the
	// cluster has one, so no master rule applies.
	w = f.start(t, "h1", "h2")
	ts := w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid,
		InstallInfos: []InstallInfo{{Host: "h1", Role: "exporter"}, {Host: "h2", Role: "EXPORTER"}}, Params: map[string]string{"scrape": "90s"}}))
	if got := types(ts); !reflect.DeepEqual(got, []string{"INSTALL_EXPORTER@h1", "INSTALL_EXPORTER@h2"}) {
		t.Fatalf("INSTALL_SERVICE tasks %v", got)
	}
	in := inputOf(t, ts[0])
	if in.Labels != nil || !reflect.DeepEqual(in.Params, map[string]string{"listenPort": "9100", "scrape": "1m30s"}) || ts[0].TaskRole != "EXPORTER" {
		t.Fatalf("INSTALL_EXPORTER input %+v", in)
	}
	rs, _ := f.st.RolesOfHost(ctx, 1, "h2")
	if len(rs) != 2 || rs[1].Role != "EXPORTER" || rs[1].InstallDir != "/opt/doris/exporter" || rs[1].Master {
		t.Fatalf("roles on h2 %+v", rs)
	}
	ts = w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1", "h2"}, Role: "EXPORTER", Conf: "x=1"}}}))
	if got := types(ts); !reflect.DeepEqual(got, []string{"DEPLOY_EXPORTER_CONFIG@h1", "DEPLOY_EXPORTER_CONFIG@h2"}) {
		t.Fatalf("DEPLOY_CONFIG tasks %v", got)
	}
	ts = w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h1", "EXPORTER"}, {"h2", "EXPORTER"}}}))
	if got := types(ts); !reflect.DeepEqual(got, []string{"START_EXPORTER@h1", "START_EXPORTER@h2"}) || ts[0].Seq != 0 || ts[1].Seq != 0 {
		t.Fatalf("START_SERVICE tasks %v", got)
	}
	// No membership: BUILD_CLUSTER has nothing to do and is done at once.
	if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{}, BEHosts: []string{}}); err != nil {
		t.Fatal(err)
	}
	if ts := f.tasks(w.pid, 4); len(ts) != 0 {
		t.Fatalf("a role without membership got BUILD_CLUSTER tasks: %v", types(ts))
	}
	if v, _ := f.e.Current(ctx, 1); v.ProcessStep != 5 {
		t.Fatalf("processStep %d, want 5", v.ProcessStep)
	}
	if err := f.e.Complete(ctx, 1, w.pid); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.st.GetProcess(ctx, w.pid); p.Status != StatusSuccess {
		t.Fatalf("status %s, want SUCCESS", p.Status)
	}
}

func TestMasterRulesOnlyWhereFEsMatter(t *testing.T) {
	ctx := context.Background()
	only := []InstallInfo{{Host: "h1", Role: "EXPORTER"}}
	// A cluster without FE, FE installable: Doris needs its FE first.
	f := newFixtureWith(t, withRoles(exporter))
	w := f.start(t, "h1")
	err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: only})
	wantKind(t, err, KindInvalid)
	if !strings.Contains(err.Error(), "FOLLOWER") {
		t.Fatalf("message %v", err)
	}
	// Without an FE plugin there is no master to ask for.
	f = newFixtureWith(t, staticCatalogue{"EXPORTER": exporter})
	w = f.start(t, "h1")
	w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: only}))
}

func TestUnknownAndReservedRoles(t *testing.T) {
	ctx := context.Background()
	agent := exporter
	agent.Role = "AGENT"
	f := newFixtureWith(t, withRoles(agent))
	w := f.start(t, "h1")
	for _, c := range []struct{ role, want string }{
		{"CN", `installInfos[1].role "CN" is unknown: the installed roles are BE, BROKER, FE`},
		{"", "installInfos[1].role is required: one of the installed roles (BE, BROKER, FE)"},
		{"agent", "INSTALL_AGENT"},
	} {
		err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h1", Role: c.role}}})
		wantKind(t, err, KindInvalid)
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("role %q: message %q does not say %q", c.role, err, c.want)
		}
	}
	// The catalogue's own failure is not the caller's fault.
	f = newFixtureWith(t, dorisCatalogue())
	k, _ := keys(t)
	pid, err := f.e.InstallAgent(ctx, 1, InstallAgentRequest{ClusterID: 666, Hosts: []string{"h1"}, User: "root", SSHPort: 22, SSHKey: k,
		PackageURL: packageURL(), InstallDir: "/opt/doris"})
	if err != nil {
		t.Fatal(err)
	}
	f.finishStep(pid, 0, store.StatusSuccess)
	err = f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}})
	if err == nil || KindOf(err) != 0 || !strings.Contains(err.Error(), "catalogue") {
		t.Fatalf("catalogue failure: %v (kind %d)", err, KindOf(err))
	}
	// No catalogue, no roles.
	f.e.cat = nil
	if err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}); err == nil {
		t.Fatal("installService without a catalogue")
	}
}

func TestParamsAgainstInfo(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, withRoles(exporter))
	w := f.start(t, "h1", "h2")
	fe := InstallInfo{Host: "h1", Role: "FE"}
	broker := InstallInfo{Host: "h2", Role: "BROKER"}
	for _, c := range []struct {
		name   string
		infos  []InstallInfo
		params map[string]string
		want   string
	}{
		{"unknown", []InstallInfo{fe}, map[string]string{"javaHome": "/j", "heapSize": "4g"},
			"params.heapSize is unknown: FE accept aliveTimeout, javaHome, minFreeDiskGB, minOpenFiles, startTimeout, stopTimeout"},
		{"another role's", []InstallInfo{fe}, map[string]string{"brokerName": "b"}, "params.brokerName is unknown"},
		{"not an int", []InstallInfo{fe}, map[string]string{"minOpenFiles": "lots"}, `params.minOpenFiles: "lots" is not an integer (type int for FE)`},
		{"not a duration", []InstallInfo{fe, broker}, map[string]string{"startTimeout": "soon"}, "params.startTimeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: c.infos, Params: c.params})
			wantKind(t, err, KindInvalid)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("message %q does not say %q", err, c.want)
			}
		})
	}
	ts := w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{fe, broker, {Host: "h2", Role: "EXPORTER"}},
		Params: map[string]string{"brokerName": "hdfs", "startTimeout": "120s", "javaHome": "", "listenPort": " 9200"}}))
	want := map[string]map[string]string{
		"FE":       {"minFreeDiskGB": "5", "startTimeout": "2m0s", "stopTimeout": "2m0s", "aliveTimeout": "3m0s"},
		"BROKER":   {"minFreeDiskGB": "5", "startTimeout": "2m0s", "stopTimeout": "2m0s", "aliveTimeout": "3m0s", "brokerName": "hdfs"},
		"EXPORTER": {"listenPort": "9200"},
	}
	for _, tk := range ts {
		if got := inputOf(t, tk).Params; !reflect.DeepEqual(got, want[tk.TaskRole]) {
			t.Errorf("%s params %v, want %v", tk.TaskRole, got, want[tk.TaskRole])
		}
	}
}

func TestBuildClusterOrderFromInfo(t *testing.T) {
	ctx := context.Background()
	// A member role without ordering joins in its own lane, one at a
	// time; one that comes after BE waits for BE's ADD tasks.
	solo := sdk.Info{Name: "solo", Role: "SOLO", Version: "1.0.0", APIMajor: sdk.APIMajor,
		Capabilities: []string{sdk.CapMembership}, Order: sdk.Order{OneAtATime: true}}
	late := sdk.Info{Name: "late", Role: "LATE", Version: "1.0.0", APIMajor: sdk.APIMajor,
		Capabilities: []string{sdk.CapMembership}, Order: sdk.Order{After: []string{"BE"}}}
	f := newFixtureWith(t, withRoles(solo, late))
	w := f.start(t, "h1", "h2")
	var infos []InstallInfo
	var confs []DeployConfig
	var starts []HostRole
	for _, role := range []string{"FE", "BE", "SOLO", "LATE"} {
		for _, h := range []string{"h1", "h2"} {
			infos = append(infos, InstallInfo{Host: h, Role: role})
			starts = append(starts, HostRole{h, role})
		}
		confs = append(confs, DeployConfig{Hosts: []string{"h1", "h2"}, Role: role, Conf: "x=1"})
	}
	w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: infos}))
	w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: confs}))
	ts := w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: starts}))
	got := map[string]int{}
	for _, tk := range ts {
		got[tk.TaskType+"@"+tk.Host] = tk.Seq
		if tk.TaskRole != strings.TrimPrefix(tk.TaskType, "START_") {
			t.Fatalf("START lane %+v", tk)
		}
	}
	want := map[string]int{"START_FE@h1": 0, "START_FE@h2": 1, "START_BE@h1": 0, "START_BE@h2": 0,
		"START_SOLO@h1": 0, "START_SOLO@h2": 1, "START_LATE@h1": 0, "START_LATE@h2": 0}
	if !equalMap(got, want) {
		t.Fatalf("START seqs %v, want %v", got, want)
	}
	if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{"h2", "h1"}, BEHosts: []string{"h1", "h2"}}); err != nil {
		t.Fatal(err)
	}
	got = map[string]int{}
	lanes := map[string]string{}
	for _, tk := range f.tasks(w.pid, 4) {
		got[tk.TaskType+"@"+tk.Host] = tk.Seq
		lanes[tk.TaskType] = tk.TaskRole
	}
	// SECURE_CLUSTER comes after the ordered roles' lane, and does not wait
	// for a role in a lane of its own.
	want = map[string]int{"ADD_FE@h1": 0, "ADD_FE@h2": 1, "ADD_BACKEND@h1": 2, "ADD_BACKEND@h2": 2,
		"ADD_LATE@h1": 3, "ADD_LATE@h2": 3, "ADD_SOLO@h1": 0, "ADD_SOLO@h2": 1, "SECURE_CLUSTER@": 4}
	if !equalMap(got, want) {
		t.Fatalf("BUILD seqs %v, want %v", got, want)
	}
	if !reflect.DeepEqual(lanes, map[string]string{"ADD_FE": "", "ADD_BACKEND": "", "ADD_LATE": "", "ADD_SOLO": "SOLO", "SECURE_CLUSTER": ""}) {
		t.Fatalf("BUILD lanes %v", lanes)
	}
}

func TestAddSeqsRefusesACircle(t *testing.T) {
	a := sdk.Info{Role: "A", Order: sdk.Order{After: []string{"B"}}}
	b := sdk.Info{Role: "B", Order: sdk.Order{After: []string{"A"}}}
	_, _, err := catalogue{"A": a, "B": b}.addSeqs(map[string]int{"A": 1, "B": 1})
	wantKind(t, err, KindInvalid)
	if !strings.Contains(err.Error(), "circle") {
		t.Fatalf("message %v", err)
	}
}

func TestRoleTaskStep(t *testing.T) {
	for _, c := range []struct {
		taskType string
		step     int
		ok       bool
	}{
		{"INSTALL_FE", StepInstallService, true},
		{"INSTALL_EXPORTER2", StepInstallService, true},
		{"DEPLOY_BROKER_CONFIG", StepDeployConfig, true},
		{"START_BE", StepStartService, true},
		{"ADD_FE", StepBuildCluster, true},
		{"ADD_BACKEND", StepBuildCluster, true},
		{"ADD_EXPORTER", StepBuildCluster, true},
		{"INSTALL_AGENT", 0, false},
		{"INSTALL_", 0, false},
		{"INSTALL_fe", 0, false},
		{"DEPLOY_FE", 0, false},
		{"DEPLOY_A_B_CONFIG", 0, false},
		{"START_TOOLONGROLENAME12345", 0, false},
		{"STOP_FE", 0, false},
		{"START_NODE", 0, false}, // a day-2 operation's task (core/ops)
	} {
		step, ok := RoleTaskStep(c.taskType)
		if step != c.step || ok != c.ok {
			t.Errorf("RoleTaskStep(%q) = %d, %v; want %d, %v", c.taskType, step, ok, c.step, c.ok)
		}
	}
	// The names the wizard makes are the names it recognizes.
	for _, role := range []string{"FE", "BE", "BROKER", "X1"} {
		for step, tt := range map[int]string{StepInstallService: InstallTask(role), StepDeployConfig: DeployTask(role), StepStartService: StartTask(role), StepBuildCluster: AddTask(role)} {
			if got, ok := RoleTaskStep(tt); !ok || got != step {
				t.Errorf("RoleTaskStep(%q) = %d, %v; want %d", tt, got, ok, step)
			}
		}
	}
}

func TestHomeIsOneFolderBelowTheBase(t *testing.T) {
	for _, i := range []sdk.Info{{Role: "FE", Home: "fe"}, {Role: "BROKER", Home: "apache_hdfs_broker"}, {Role: "EXPORTER"}} {
		h := Home("/opt/doris", i)
		if want := "/opt/doris/" + i.HomeDir(); h != want {
			t.Errorf("Home(%+v) = %s, want %s", i, h, want)
		}
	}
}

// TestScaleOutFEsJoinTheRunningMaster: a later process that adds FEs lists
// no master; its FEs start one at a time and are added to the cluster, the
// master being the one an earlier process installed. A process that
// configured the master still refuses to start its FEs without it.
func TestScaleOutFEsJoinTheRunningMaster(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, withRoles())
	w := f.start(t, "h1")
	w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h1", Role: "BE"}}}))
	w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1"}, Role: "FE", Conf: "a=1"}, {Hosts: []string{"h1"}, Role: "BE", Conf: "b=1"}}}))
	err := f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h1", "BE"}, {"h1", "FE"}}})
	w.step(3, err)
	w.step(4, f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{"h1"}, BEHosts: []string{"h1"}}))
	if err := f.e.Complete(ctx, 1, w.pid); err != nil {
		t.Fatal(err)
	}

	w = f.start(t, "h2", "h3")
	ts := w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid,
		InstallInfos: []InstallInfo{{Host: "h2", Role: "FE", FENodeType: "FOLLOWER"}, {Host: "h3", Role: "FE", FENodeType: "OBSERVER"}}}))
	for _, tk := range ts {
		if in := inputOf(t, tk); in.Labels["master"] == "true" {
			t.Fatalf("a scale-out FE is marked master: %+v", in)
		}
	}
	w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h2", "h3"}, Role: "FE", Conf: "a=1"}}}))
	ts = w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h2", "FE"}, {"h3", "FE"}}}))
	if got := types(ts); !reflect.DeepEqual(got, []string{"START_FE@h2", "START_FE@h3"}) || ts[0].Seq != 0 || ts[1].Seq != 1 {
		t.Fatalf("START_SERVICE tasks %v (seqs %d, %d), want the new FEs one at a time", got, ts[0].Seq, ts[1].Seq)
	}
	ts = w.step(4, f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{"h2", "h3"}, BEHosts: []string{}}))
	if got := types(ts); !reflect.DeepEqual(got, []string{"ADD_FE@h2", "ADD_FE@h3", "SECURE_CLUSTER@"}) {
		t.Fatalf("BUILD_CLUSTER tasks %v", got)
	}
}

func TestMasterConfiguredHereStartsWithItsFEs(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, withRoles())
	w := f.start(t, "h1", "h2")
	w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h2", Role: "FE"}}}))
	w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a=1"}}}))
	err := f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h2", "FE"}}})
	wantKind(t, err, KindInvalid)
	if !strings.Contains(err.Error(), "master FE must be started with the other FEs; it is h1") {
		t.Fatalf("message %v", err)
	}
}
