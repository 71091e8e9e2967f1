package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/clusterstatus"
	"github.com/dorismanager/dorismanager/core/ops"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// newOpsEnv is newEnv with the day-2 endpoints and cluster 1 ("demo"):
// an FE follower (the master) on 10.0.0.1, BEs on 10.0.0.1 and 10.0.0.2.
func newOpsEnv(t *testing.T, dsn string) *env {
	t.Helper()
	e := newEnv(t, dsn)
	ctx := context.Background()
	c, err := e.st.CreateCluster(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.AgentRole{
		{ClusterID: c.ID, Host: "10.0.0.1", Role: "FE", FENodeType: "FOLLOWER", Master: true, Ports: `{"query_port":9030}`},
		{ClusterID: c.ID, Host: "10.0.0.1", Role: "BE"},
		{ClusterID: c.ID, Host: "10.0.0.2", Role: "BE"},
	} {
		if err := e.st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now() // a heartbeat just now: RUNNING
	for _, h := range []string{"10.0.0.1", "10.0.0.2"} {
		if err := e.st.DB().Create(&store.Agent{ClusterID: c.ID, Host: h, LastReportedTime: &now}).Error; err != nil {
			t.Fatal(err)
		}
	}
	cache := clusterstatus.New(clusterstatus.Config{Store: e.st})
	eng := ops.New(ops.Config{Store: e.st, Master: cache.Master, Catalogue: func(context.Context, int64) (map[string]sdk.Info, error) {
		caps := []string{sdk.CapMembership, sdk.CapUpgrade, sdk.CapReconfigure}
		return map[string]sdk.Info{"FE": {Role: "FE", Capabilities: caps}, "BE": {Role: "BE", Capabilities: caps}}, nil
	}})
	e.srv.Close()
	pe := process.New(process.Config{Store: e.st, Stopper: e.stopper})
	e.srv = newAPIServer(t, New(Config{Store: e.st, Engine: pe, Operations: &Operations{Engine: eng, Status: cache.Status}}))
	t.Cleanup(e.srv.Close)
	return e
}

func processID(t *testing.T, r reply) int64 {
	t.Helper()
	var d struct {
		ProcessID int64 `json:"processId"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || d.ProcessID <= 0 {
		t.Fatalf("want data {processId}, got %s", r.raw)
	}
	return d.ProcessID
}

// An operation answers its process, whose tasks the process endpoints show.
func TestOperationOverHTTP(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": func(testing.TB) string { return "" }, "postgres": pgtest.Start} {
		t.Run(name, func(t *testing.T) { testOperationOverHTTP(t, newOpsEnv(t, dsn(t))) })
	}
}

func testOperationOverHTTP(t *testing.T, e *env) {
	{
		r := e.ok("POST", "/api/cluster/1/restart", map[string]any{"nodes": []map[string]string{{"host": "10.0.0.2", "role": "be"}}})
		pid := processID(t, r)
		if keysOf(t, r.Data) != "processId" {
			t.Fatalf("data keys %s", keysOf(t, r.Data))
		}
		ts := list(t, e.ok("GET", fmt.Sprintf("/api/process/%d/currentTasks", pid), nil).Data)
		if len(ts) != 1 || keysOf(t, ts[0]) != taskKeys {
			t.Fatalf("currentTasks: %s", ts)
		}
		var task TaskView
		_ = json.Unmarshal(ts[0], &task)
		if task.TaskType != ops.TaskRestart || task.ProcessType != ops.OpRestart || task.Host != "10.0.0.2" || task.Status != "SUBMITTED" {
			t.Fatalf("task %+v", task)
		}
		e.ok("GET", fmt.Sprintf("/api/process/task/info/%d", task.ID), nil)
		// Operations do not take the wizard's place in currentProcess.
		if r := e.ok("GET", "/api/process/currentProcess", nil); string(r.Data) != "null" {
			t.Fatalf("currentProcess shows the operation: %s", r.raw)
		}
		// A second one while the first is open: 409 naming it; nothing written.
		var before int64
		e.st.DB().Model(&store.Process{}).Count(&before)
		r = e.do("POST", "/api/cluster/1/stop", "", e.other)
		if r.status != 409 || !strings.Contains(r.Msg, fmt.Sprintf("operation %d (RESTART)", pid)) {
			t.Fatalf("second operation: %d %s", r.status, r.raw)
		}
		var after int64
		e.st.DB().Model(&store.Process{}).Count(&after)
		if after != before {
			t.Fatal("a refused operation wrote a process")
		}
		// Retry and skip of its tasks work as for the wizard.
		e.finishStep(pid, 0, "FAILURE")
		e.ok("POST", fmt.Sprintf("/api/process/task/retry/%d", task.ID), nil)
		e.finishStep(pid, 0, "FAILURE")
		e.ok("POST", fmt.Sprintf("/api/process/task/skip/%d", task.ID), nil)
		// Skipped, the operation is over: the next one may start (empty body: every node).
		pid2 := processID(t, e.ok("POST", "/api/cluster/1/stop", nil))
		if n := len(list(t, e.ok("GET", fmt.Sprintf("/api/process/%d/currentTasks", pid2), nil).Data)); n != 3 {
			t.Fatalf("stop of every node: %d tasks, want 3", n)
		}
	}
}

func TestOperationBadInputStartsNothing(t *testing.T) {
	e := newOpsEnv(t, "")
	cases := []struct {
		name, path string
		body       any
		status     int
		msg        string
	}{
		{"unknown cluster", "/api/cluster/9/stop", nil, 404, "cluster 9 does not exist"},
		{"cluster id not a number", "/api/cluster/x/stop", nil, 400, "clusterId"},
		{"unknown host", "/api/cluster/1/stop", map[string]any{"nodes": []map[string]string{{"host": "10.0.0.9", "role": "BE"}}}, 400, "has no BE on 10.0.0.9"},
		{"unknown role", "/api/cluster/1/start", map[string]any{"nodes": []map[string]string{{"host": "10.0.0.2", "role": "FE"}}}, 400, "has no FE on 10.0.0.2"},
		{"nodes not a list", "/api/cluster/1/start", `{"nodes":"10.0.0.2"}`, 400, "nodes"},
		{"rolling not a bool", "/api/cluster/1/restart", `{"rolling":"yes"}`, 400, "rolling"},
		{"malformed json", "/api/cluster/1/restart", `{"nodes":`, 400, "request body"},
		{"scale-in of nothing", "/api/cluster/1/scaleIn", map[string]any{}, 400, "use destroy"},
		{"scale-in of the master", "/api/cluster/1/scaleIn", map[string]any{"nodes": []map[string]string{{"host": "10.0.0.1", "role": "FE"}}}, 400, "master"},
		{"upgrade without URL", "/api/cluster/1/upgrade", map[string]any{"packageSha256": strings.Repeat("a", 64)}, 400, "packageUrl is required"},
		{"upgrade with a bad URL", "/api/cluster/1/upgrade", map[string]any{"packageUrl": "file:///tmp/x.tgz"}, 400, "http:// or https://"},
		{"upgrade with a bad checksum", "/api/cluster/1/upgrade", map[string]any{"packageUrl": "http://h/x.tgz", "packageSha256": "xyz"}, 400, "packageSha256"},
		{"config without conf", "/api/cluster/1/config", map[string]any{"role": "BE"}, 400, "conf is required"},
		{"config of an unknown host", "/api/cluster/1/config", map[string]any{"role": "BE", "hosts": []string{"10.0.0.7"}, "conf": "a=1"}, 400, "has no BE on 10.0.0.7"},
		{"destroy without confirm", "/api/cluster/1/destroy", map[string]any{}, 400, "confirm is required"},
		{"destroy with another name", "/api/cluster/1/destroy", map[string]any{"confirm": "prod"}, 400, `send "demo"`},
	}
	count := func() int64 {
		var n int64
		e.st.DB().Model(&store.Process{}).Count(&n)
		return n
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", c.path, c.body, e.token)
			if r.status != c.status || r.Code == nil || *r.Code != c.status || !strings.Contains(r.Msg, c.msg) {
				t.Fatalf("got %d %s, want %d naming %q", r.status, truncate(r.raw, 300), c.status, c.msg)
			}
			if n := count(); n != 0 {
				t.Fatalf("a refused request left %d processes", n)
			}
		})
	}
}

func TestClusterStatusOverHTTP(t *testing.T) {
	e := newOpsEnv(t, "")
	r := e.ok("GET", "/api/cluster/1/status", nil)
	if keysOf(t, r.Data) != "clusterId,destroyed,name,nodes" {
		t.Fatalf("status keys: %s", r.raw)
	}
	var v StatusView
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatal(err)
	}
	if v.ClusterID != 1 || v.Name != "demo" || len(v.Nodes) != 3 {
		t.Fatalf("status %+v", v)
	}
	nodes := list(t, mustField(t, r.Data, "nodes"))
	if got := keysOf(t, nodes[0]); got != "agent,alive,detail,feNodeType,host,lastChecked,master,ports,role,status,version" {
		t.Fatalf("node keys %s", got)
	}
	for _, n := range v.Nodes {
		// Never checked yet: UNKNOWN, no lastChecked; the recorded master.
		if n.Status != "UNKNOWN" || n.LastChecked != nil || n.Agent != "RUNNING" || (n.Role == "FE") != n.Master {
			t.Errorf("node %+v", n)
		}
	}
	if r := e.do("GET", "/api/cluster/7/status", nil, e.token); r.status != 404 || !strings.Contains(r.Msg, "cluster 7") {
		t.Fatalf("status of an unknown cluster: %d %s", r.status, r.raw)
	}
}

func mustField(t *testing.T, raw json.RawMessage, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// Each operation answers its process; installComplete ends it, so the
// next one may start.
func TestEveryOperationStartsItsProcess(t *testing.T) {
	e := newOpsEnv(t, "")
	be2 := []map[string]string{{"host": "10.0.0.2", "role": "BE"}}
	for _, c := range []struct {
		op   string
		body any
	}{
		{"stop", nil},
		{"start", map[string]any{"nodes": be2}},
		{"restart", map[string]any{"rolling": false}},
		{"scaleIn", map[string]any{"nodes": be2, "force": true}},
		{"upgrade", map[string]any{"packageUrl": "http://10.0.0.9/doris-2.1.tar.gz", "packageSha256": strings.Repeat("ab", 32), "nodes": be2}},
		{"config", map[string]any{"role": "BE", "conf": "a = 1\n", "dryRun": true}},
		{"destroy", map[string]any{"confirm": "demo"}},
	} {
		pid := processID(t, e.ok("POST", "/api/cluster/1/"+c.op, c.body))
		if n := len(list(t, e.ok("GET", fmt.Sprintf("/api/process/%d/currentTasks", pid), nil).Data)); n == 0 {
			t.Fatalf("%s: no tasks", c.op)
		}
		e.ok("POST", fmt.Sprintf("/api/process/installComplete/%d", pid), nil)
	}
}
