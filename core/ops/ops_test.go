package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The test cluster "demo" (id 1): FE followers on h1 (master) and h2, an
// FE observer on h3, BEs on h1..h3 and a broker on h3.
var demoRoles = []store.AgentRole{
	{Host: "h1", Role: "FE", FENodeType: "FOLLOWER", Master: true},
	{Host: "h2", Role: "FE", FENodeType: "FOLLOWER"},
	{Host: "h3", Role: "FE", FENodeType: "OBSERVER"},
	{Host: "h1", Role: "BE"}, {Host: "h2", Role: "BE"}, {Host: "h3", Role: "BE"},
	{Host: "h3", Role: "BROKER"},
}

type fixture struct {
	st     *store.Store
	e      *Engine
	master string // what the status cache would say; "" unknown
	notes  int
}

func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	st, err := store.Open(dsn, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	c, err := st.CreateCluster(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range demoRoles {
		r.ClusterID = c.ID
		if err := st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now() // a heartbeat just now: RUNNING
	for _, h := range []string{"h1", "h2", "h3"} {
		if err := st.DB().Create(&store.Agent{ClusterID: c.ID, Host: h, LastReportedTime: &now}).Error; err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{st: st}
	f.e = New(Config{Store: st, Notify: func() { f.notes++ },
		Master: func(int64) (string, bool) { return f.master, f.master != "" },
		Catalogue: func(context.Context, int64) (map[string]sdk.Info, error) {
			return map[string]sdk.Info{
				"FE":     {Name: "doris-role-fe", Role: "FE", Version: "2.0.0", Capabilities: []string{sdk.CapMembership, sdk.CapUpgrade, sdk.CapReconfigure}},
				"BE":     {Name: "doris-role-be", Role: "BE", Version: "2.0.0", Capabilities: []string{sdk.CapMembership, sdk.CapUpgrade, sdk.CapReconfigure}},
				"BROKER": {Name: "doris-role-broker", Role: "BROKER", Version: "2.0.0"},
			}, nil
		}})
	return f
}

func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newFixture(t, "")) })
	t.Run("postgres", func(t *testing.T) { fn(t, newFixture(t, pgtest.Start(t))) })
}

// lane renders an operation's tasks as "seq:TYPE role@host" in run order.
func (f *fixture) lane(t *testing.T, pid int64) []string {
	t.Helper()
	ts, err := f.st.TasksOfProcess(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range ts {
		var in Input
		if err := json.Unmarshal([]byte(x.Input), &in); err != nil {
			t.Fatal(err)
		}
		if x.TaskRole != "" || x.Status != store.StatusSubmitted || x.ProcessType == "" {
			t.Fatalf("task %+v: want one lane, SUBMITTED, with the operation as processType", x)
		}
		s := fmt.Sprintf("%d:%s", x.Seq, x.TaskType)
		if in.Role != "" {
			s += " " + in.Role + "@" + in.Host
		}
		out = append(out, s)
	}
	return out
}

func sameLane(t *testing.T, got []string, want string) {
	t.Helper()
	// Tasks of one Seq run together: compare them as a set.
	norm := func(xs []string) string {
		bySeq := map[string][]string{}
		var seqs []string
		for _, x := range xs {
			seq, _, _ := strings.Cut(x, ":")
			if _, ok := bySeq[seq]; !ok {
				seqs = append(seqs, seq)
			}
			bySeq[seq] = append(bySeq[seq], x)
		}
		var parts []string
		for _, s := range seqs {
			g := bySeq[s]
			sortStrings(g)
			parts = append(parts, strings.Join(g, ", "))
		}
		return strings.Join(parts, " | ")
	}
	w := strings.Split(want, " | ")
	var wantList []string
	for _, g := range w {
		wantList = append(wantList, strings.Split(g, ", ")...)
	}
	if norm(got) != norm(wantList) {
		t.Fatalf("tasks:\n got  %s\n want %s", norm(got), norm(wantList))
	}
}

func sortStrings(xs []string) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

func TestPlansFollowDorisOrder(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		master string // the status cache's master; "" falls back to the recorded one
		run    func(e *Engine) (int64, error)
		want   string
	}{
		{"rolling restart: BEs, broker, observer, follower, master last", "", func(e *Engine) (int64, error) {
			return e.Restart(ctx, 1, 1, nil, true)
		}, "0:RESTART_NODE BE@h1 | 1:RESTART_NODE BE@h2 | 2:RESTART_NODE BE@h3 | 3:RESTART_NODE BROKER@h3 | 4:RESTART_NODE FE@h3 | 5:RESTART_NODE FE@h2 | 6:RESTART_NODE FE@h1"},
		{"the master as last seen goes last", "h2", func(e *Engine) (int64, error) {
			return e.Restart(ctx, 1, 1, []Node{{"h1", "fe"}, {"h2", "FE"}}, true)
		}, "0:RESTART_NODE FE@h1 | 1:RESTART_NODE FE@h2"},
		{"stop: the master last", "", func(e *Engine) (int64, error) { return e.Stop(ctx, 1, 1, nil) },
			"0:STOP_NODE BE@h1, 0:STOP_NODE BE@h2, 0:STOP_NODE BE@h3, 0:STOP_NODE BROKER@h3 | 1:STOP_NODE FE@h2, 1:STOP_NODE FE@h3 | 2:STOP_NODE FE@h1"},
		{"start: the master first, followers, observers, then the rest", "", func(e *Engine) (int64, error) { return e.Start(ctx, 1, 1, nil) },
			"0:START_NODE FE@h1 | 1:START_NODE FE@h2 | 2:START_NODE FE@h3 | 3:START_NODE BE@h1, 3:START_NODE BE@h2, 3:START_NODE BE@h3, 3:START_NODE BROKER@h3"},
		{"start one BE", "", func(e *Engine) (int64, error) { return e.Start(ctx, 1, 1, []Node{{"h2", "BE"}}) },
			"0:START_NODE BE@h2"},
		{"restart at once: stop all, then start all", "", func(e *Engine) (int64, error) {
			return e.Restart(ctx, 1, 1, []Node{{"h1", "FE"}, {"h2", "FE"}, {"h3", "BE"}}, false)
		}, "0:STOP_NODE BE@h3 | 1:STOP_NODE FE@h2 | 2:STOP_NODE FE@h1 | 3:START_NODE FE@h1 | 4:START_NODE FE@h2 | 5:START_NODE BE@h3"},
		{"scale-in one at a time", "", func(e *Engine) (int64, error) {
			return e.ScaleIn(ctx, 1, 1, ScaleInRequest{Nodes: []Node{{"h3", "FE"}, {"h2", "BE"}}})
		}, "0:SCALE_IN_NODE BE@h2 | 1:SCALE_IN_NODE FE@h3"},
		{"upgrade of every node whose plugin can: not the broker", "", func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "http://pkg/doris-2.1.tar.gz", PackageSHA256: strings.Repeat("ab", 32)})
		}, "0:UPGRADE_NODE BE@h1 | 1:UPGRADE_NODE BE@h2 | 2:UPGRADE_NODE BE@h3 | 3:UPGRADE_NODE FE@h3 | 4:UPGRADE_NODE FE@h2 | 5:UPGRADE_NODE FE@h1"},
		{"config: reconfigure all, then a rolling restart where needed", "", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "be", Conf: "x = 1\n"})
		}, "0:RECONFIGURE_NODE BE@h1, 0:RECONFIGURE_NODE BE@h2, 0:RECONFIGURE_NODE BE@h3 | 1:RESTART_NODE BE@h1 | 2:RESTART_NODE BE@h2 | 3:RESTART_NODE BE@h3"},
		{"config dry run: reconfigure only", "", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "FE", Hosts: []string{"h2"}, Conf: "x = 1\n", DryRun: true})
		}, "0:RECONFIGURE_NODE FE@h2"},
		{"destroy: stop, remove, agents, mark", "", func(e *Engine) (int64, error) {
			return e.Destroy(ctx, 1, 1, DestroyRequest{Confirm: "demo"})
		}, "0:STOP_NODE BE@h1, 0:STOP_NODE BE@h2, 0:STOP_NODE BE@h3, 0:STOP_NODE BROKER@h3 | 1:STOP_NODE FE@h2, 1:STOP_NODE FE@h3 | 2:STOP_NODE FE@h1 | " +
			"3:REMOVE_NODE BE@h1, 3:REMOVE_NODE BE@h2, 3:REMOVE_NODE BE@h3, 3:REMOVE_NODE BROKER@h3, 3:REMOVE_NODE FE@h1, 3:REMOVE_NODE FE@h2, 3:REMOVE_NODE FE@h3 | " +
			"4:REMOVE_AGENT, 4:REMOVE_AGENT, 4:REMOVE_AGENT | 5:DESTROY_CLUSTER"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			f.master = tc.master
			pid, err := tc.run(f.e)
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.st.GetProcess(ctx, pid)
			if err != nil || p.Kind != store.KindOperation || p.Finish || p.Status != StatusRunning {
				t.Fatalf("process %+v, %v", p, err)
			}
			sameLane(t, f.lane(t, pid), tc.want)
			if f.notes != 1 {
				t.Fatalf("the runner was notified %d times, want once", f.notes)
			}
		})
	}
}

func TestRestoreOrderInTaskInput(t *testing.T) {
	f := newFixture(t, "")
	pid, err := f.e.Start(context.Background(), 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := f.st.TasksOfProcess(context.Background(), pid)
	for _, x := range ts {
		var in Input
		_ = json.Unmarshal([]byte(x.Input), &in)
		want := 2
		if in.Role == "FE" {
			want = 1
			if in.Host == "h1" {
				want = 0
			}
		}
		if in.Order != want || in.ClusterID != 1 {
			t.Errorf("%s %s@%s: order %d cluster %d, want order %d cluster 1", x.TaskType, in.Role, in.Host, in.Order, in.ClusterID, want)
		}
	}
}

// Every refusal says what to fix and starts nothing.
func TestValidationRefusesAndStartsNothing(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		kind process.Kind
		msg  string
		run  func(e *Engine) (int64, error)
	}{
		{"unknown cluster", process.KindNotFound, "cluster 9 does not exist", func(e *Engine) (int64, error) { return e.Stop(ctx, 1, 9, nil) }},
		{"unknown host", process.KindInvalid, "nodes[0]: cluster 1 has no BE on h9", func(e *Engine) (int64, error) {
			return e.Stop(ctx, 1, 1, []Node{{"h9", "BE"}})
		}},
		{"unknown role on a known host", process.KindInvalid, "nodes[1]: cluster 1 has no BROKER on h1", func(e *Engine) (int64, error) {
			return e.Start(ctx, 1, 1, []Node{{"h1", "BE"}, {"h1", "broker"}})
		}},
		{"empty host", process.KindInvalid, "nodes[0].host is required", func(e *Engine) (int64, error) {
			return e.Restart(ctx, 1, 1, []Node{{"", "BE"}}, true)
		}},
		{"empty role", process.KindInvalid, "nodes[0].role is required", func(e *Engine) (int64, error) {
			return e.Restart(ctx, 1, 1, []Node{{"h1", " "}}, true)
		}},
		{"node twice", process.KindInvalid, "BE on h1 is listed twice", func(e *Engine) (int64, error) {
			return e.Stop(ctx, 1, 1, []Node{{"h1", "BE"}, {"h1", "be"}})
		}},
		{"scale-in without nodes", process.KindInvalid, "use destroy", func(e *Engine) (int64, error) {
			return e.ScaleIn(ctx, 1, 1, ScaleInRequest{})
		}},
		{"scale-in of the master", process.KindInvalid, "FE on h1 is the master", func(e *Engine) (int64, error) {
			return e.ScaleIn(ctx, 1, 1, ScaleInRequest{Nodes: []Node{{"h1", "FE"}}})
		}},
		{"scale-in of the last follower", process.KindInvalid, "leaves no FE follower", func(e *Engine) (int64, error) {
			e.master = func(int64) (string, bool) { return "h3", true } // an observer cannot be master; only to reach the check
			return e.ScaleIn(ctx, 1, 1, ScaleInRequest{Nodes: []Node{{"h1", "FE"}, {"h2", "FE"}}})
		}},
		{"upgrade without packageUrl", process.KindInvalid, "packageUrl is required", func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{})
		}},
		{"upgrade from ftp", process.KindInvalid, "must be an http:// or https:// URL", func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "ftp://pkg/x.tar.gz"})
		}},
		{"upgrade without a host", process.KindInvalid, "has no host", func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "http:///x.tar.gz"})
		}},
		{"upgrade with a bad checksum", process.KindInvalid, "packageSha256 must be 64 hex digits", func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "http://pkg/x.tar.gz", PackageSHA256: "abc"})
		}},
		{"upgrade without a checksum given or published", process.KindInvalid, `packageSha256 is required: no checksum is published beside packageUrl http://u:***@pkg/x.tar.gz`, func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "http://u:secret@pkg/x.tar.gz"})
		}},
		{"upgrade with a password in the sealed form", process.KindInvalid, `"http://u:***@pkg/x.tar.gz": its password begins with "dmsealed."`, func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "http://u:dmsealed.AAAA@pkg/x.tar.gz", PackageSHA256: strings.Repeat("ab", 32)})
		}},
		{"upgrade from ftp, with a password", process.KindInvalid, `"ftp://u:***@pkg/x.tar.gz" must be an http://`, func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "ftp://u:secret@pkg/x.tar.gz"})
		}},
		{"upgrade of a role whose plugin cannot", process.KindInvalid, "BROKER plugin (doris-role-broker 2.0.0) cannot upgrade", func(e *Engine) (int64, error) {
			return e.Upgrade(ctx, 1, 1, UpgradeRequest{PackageURL: "http://pkg/x.tar.gz", Nodes: []Node{{"h3", "BROKER"}}})
		}},
		{"config without role", process.KindInvalid, "role is required", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Conf: "x=1"})
		}},
		{"config without conf", process.KindInvalid, "conf is required", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "BE", Conf: " \n"})
		}},
		{"config too large", process.KindInvalid, "at most 262144", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "BE", Conf: strings.Repeat("x", process.MaxConf+1)})
		}},
		{"config of a host without the role", process.KindInvalid, "hosts[0]: cluster 1 has no BROKER on h1", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "BROKER", Hosts: []string{"h1"}, Conf: "x=1"})
		}},
		{"config of a role the cluster lacks", process.KindInvalid, "cluster 1 has no HDFS", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "hdfs", Conf: "x=1"})
		}},
		{"config of a role whose plugin cannot", process.KindInvalid, "cannot change its config", func(e *Engine) (int64, error) {
			return e.Config(ctx, 1, 1, ConfigRequest{Role: "BROKER", Conf: "x=1"})
		}},
		{"destroy without confirm", process.KindInvalid, `confirm is required: the cluster's name, "demo"`, func(e *Engine) (int64, error) {
			return e.Destroy(ctx, 1, 1, DestroyRequest{})
		}},
		{"destroy with the wrong name", process.KindInvalid, `confirm "Demo" is not the name of cluster 1: send "demo"`, func(e *Engine) (int64, error) {
			return e.Destroy(ctx, 1, 1, DestroyRequest{Confirm: "Demo"})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			_, err := tc.run(f.e)
			if process.KindOf(err) != tc.kind || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v (kind %d), want kind %d with %q", err, process.KindOf(err), tc.kind, tc.msg)
			}
			var n int64
			f.st.DB().Model(&store.Process{}).Count(&n)
			if n != 0 || f.notes != 0 {
				t.Fatalf("a refused request left %d processes and %d notifications", n, f.notes)
			}
		})
	}
}

func TestOneOperationAtATime(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		first, err := f.e.Stop(ctx, 1, 1, []Node{{"h1", "BE"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.e.Restart(ctx, 2, 1, nil, true)
		if process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), fmt.Sprintf("operation %d (STOP_CLUSTER)", first)) {
			t.Fatalf("second operation: %v, want a conflict naming operation %d", err, first)
		}
		// Once its tasks are done (here: skipped), the next one may start.
		ts, _ := f.st.TasksOfProcess(ctx, first)
		for _, x := range ts {
			if _, err := f.st.UpdateTaskIf(ctx, x.ID, []string{store.StatusSubmitted}, map[string]any{"status": store.StatusFailure}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.e.Restart(ctx, 2, 1, nil, true); process.KindOf(err) != process.KindConflict {
			t.Fatalf("an operation with a failed task must still block: %v", err)
		}
		for _, x := range ts {
			if _, err := f.st.UpdateTaskIf(ctx, x.ID, []string{store.StatusFailure}, map[string]any{"skip": true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.e.Restart(ctx, 2, 1, nil, true); err != nil {
			t.Fatalf("after the first operation's tasks were skipped: %v", err)
		}
		if p, _ := f.st.GetProcess(ctx, first); !p.Finish || p.Status != StatusSuccess {
			t.Fatalf("the first operation was not settled: %+v", p)
		}
	})
}

func TestWizardTaskBlocksOperations(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		wiz := store.Process{ClusterID: 1, UserID: 5, Step: 2, ProcessType: "DEPLOY_CONFIG"}
		if err := f.st.CreateProcess(ctx, &wiz); err != nil {
			t.Fatal(err)
		}
		task := store.Task{ProcessID: wiz.ID, Step: 2, Host: "h4", TaskType: "DEPLOY_BE_CONFIG", Status: store.StatusRunning}
		if err := f.st.CreateTasks(ctx, []store.Task{task}); err != nil {
			t.Fatal(err)
		}
		_, err := f.e.Stop(ctx, 1, 1, nil)
		if process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), fmt.Sprintf("wizard process %d", wiz.ID)) ||
			!strings.Contains(err.Error(), "DEPLOY_BE_CONFIG on h4") {
			t.Fatalf("operation during a wizard task: %v", err)
		}
		if err := f.st.DB().Model(&store.Task{}).Where("process_id = ?", wiz.ID).Update("status", store.StatusSuccess).Error; err != nil {
			t.Fatal(err)
		}
		// An idle, unfinished wizard process (scale-out half done) does not block.
		if _, err := f.e.Stop(ctx, 1, 1, nil); err != nil {
			t.Fatalf("operation beside an idle wizard process: %v", err)
		}
	})
}

func TestDestroyedClusterTakesNoOperation(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	if err := f.st.MarkClusterDestroyed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Start(ctx, 1, 1, nil); process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), "was destroyed") {
		t.Fatalf("start on a destroyed cluster: %v", err)
	}
}

func TestTaskEndedSettles(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	pid, err := f.e.Stop(ctx, 1, 1, []Node{{"h2", "BE"}})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := f.st.TasksOfProcess(ctx, pid)
	if got := f.e.TaskEnded(ctx, ts[0].ID); got != 1 {
		t.Fatalf("TaskEnded = cluster %d, want 1", got)
	}
	if p, _ := f.st.GetProcess(ctx, pid); p.Finish {
		t.Fatal("settled with a task not done")
	}
	if _, err := f.st.UpdateTaskIf(ctx, ts[0].ID, []string{store.StatusSubmitted}, map[string]any{"status": store.StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	f.e.TaskEnded(ctx, ts[0].ID)
	if p, _ := f.st.GetProcess(ctx, pid); !p.Finish || p.Status != StatusSuccess {
		t.Fatalf("not settled after its last task: %+v", p)
	}
}

func TestCheckNoOperation(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	if err := f.e.CheckNoOperation(ctx, 1); err != nil {
		t.Fatalf("idle cluster: %v", err)
	}
	pid, err := f.e.Start(ctx, 1, 1, []Node{{"h1", "BE"}})
	if err != nil {
		t.Fatal(err)
	}
	err = f.e.CheckNoOperation(ctx, 1)
	if process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), fmt.Sprintf("operation %d (START_CLUSTER)", pid)) {
		t.Fatalf("busy cluster: %v", err)
	}
	if err := f.e.CheckNoOperation(ctx, 2); err != nil {
		t.Fatalf("another cluster: %v", err)
	}
}
