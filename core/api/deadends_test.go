package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/store"
)

// bodiless are the calls that read no body: whatever is sent is not
// read. Every other call but a GET decodes its body and refuses a field
// it does not know.
var bodiless = map[string]string{
	"DELETE /api/plugins/pin/{clusterId}/{role}":         "the pin is in the path",
	"DELETE /api/tokens/{tokenId}":                       "the token is in the path",
	"DELETE /api/users/{user}/grants/{clusterId}":        "the grant is in the path",
	"PUT /api/users/{user}/grants/{clusterId}":           "the grant is in the path",
	"POST /api/cluster/{clusterId}/adminPassword/reveal": "the cluster is in the path",
	"POST /api/plugins/rescan":                           "takes nothing",
	"POST /api/session":                                  "the token comes in the Authorization header",
	"DELETE /api/session":                                "the session is the cookie",
	"POST /api/process/currentProcess":                   "a read the API document makes a POST",
	"POST /api/process/{processId}/currentTasks":         "a read the API document makes a POST",
	// Decoded (and refused) only where admin accounts are served: see
	// TestSetCredentials.
	"PUT /api/cluster/{clusterId}/credentials": "needs admin accounts",
}

// Every route that decodes a JSON body refuses an unknown field naming it
// (400), before it changes anything.
func TestUnknownFieldsAreRefused(t *testing.T) {
	a := newAccessEnv(t)
	walked := map[string]bool{}
	for _, r := range routes(t, a.router) {
		walked[r.String()] = true
		if r.method == http.MethodGet || bodiless[r.String()] != "" {
			continue
		}
		path, _ := a.request(r, 1)
		before := a.entries()
		got := a.do(r.method, path, `{"zzBogus":1}`, a.token)
		want := `unknown field "zzBogus" in request body`
		if got.status != http.StatusBadRequest || got.Code == nil || *got.Code != 400 || !strings.HasPrefix(got.Msg, want) {
			t.Errorf("%s with an unknown field: %d %s; want 400 %q", r, got.status, truncate(got.raw, 200), want)
		}
		if es := a.entries(); len(es) != len(before)+1 || es[len(es)-1].Status != 400 {
			t.Errorf("%s: the refusal must be audited as a 400", r)
		}
	}
	for k := range bodiless {
		if !walked[k] {
			t.Errorf("bodiless names %q, which is no route", k)
		}
	}
	// A misspelt field of the wizard is named with what was meant.
	pid := a.process[1]
	got := a.do("POST", "/api/agent/installService", map[string]any{"processId": pid, "instalInfos": []any{}}, a.token)
	if got.status != 400 || got.Msg != `unknown field "instalInfos" in request body: did you mean "installInfos"?` {
		t.Fatalf("misspelt installInfos: %d %s", got.status, got.raw)
	}
}

// The example bodies of the API document (DorisManager-API.md), as they
// are printed there: every one decodes. What the handler then says of
// its values (an unknown process, a fake key) does not matter here.
func TestDocumentExampleBodiesAreAccepted(t *testing.T) {
	e := newEnv(t, "")
	examples := []struct{ section, path, body string }{
		{"1. installAgent", "/api/server/installAgent", `{
    "clusterId":"1",
    "packageUrl":"https://palo-cloud-repo-bd.bd.bcebos.com/baidu-doris-release/PALO-0.15.1-rc03-no-avx2-binary.tar.gz",
    "installDir":"/usr/local/doris",
    "hosts":["10.10.10.11"],
    "user":"root",
    "sshPort":22,
    "sshKey": "-----BEGIN RSA PRIVATE KEY-----....."
}`},
		{"3. installService", "/api/agent/installService", `{
    "processId":1,
    "installInfos":[{
        "host":"10.220.147.155",
        "role":"FE",
        "feNodeType":"FOLLOWER"
    },
    {
        "host":"10.220.147.155",
        "role":"BE"
        
    }]
}`},
		{"4. deployConfig", "/api/agent/deployConfig", `{
    "processId":"1",
    "deployConfigs":[{
        "hosts":["10.220.147.155"],
        "role":"FE",
        "conf":"LOG_DIR = ${DORIS_HOME}/log\nDATE = ` + "`date +%Y%m%d-%H%M%S`" + `\nJAVA_OPTS=\"-Xmx4096m -XX:+UseMembar -XX:SurvivorRatio=8 -XX:MaxTenuringThreshold=7 -XX:+PrintGCDateStamps -XX:+PrintGCDetails -XX:+UseConcMarkSweepGC -XX:+UseParNewGC -XX:+CMSClassUnloadingEnabled -XX:-CMSParallelRemarkEnabled -XX:CMSInitiatingOccupancyFraction=80 -XX:SoftRefLRUPolicyMSPerMB=0 -Xloggc:$DORIS_HOME/log/fe.gc.log.$DATE\"\nJAVA_OPTS_FOR_JDK_9=\"-Xmx4096m -XX:SurvivorRatio=8 -XX:MaxTenuringThreshold=7 -XX:+CMSClassUnloadingEnabled -XX:-CMSParallelRemarkEnabled -XX:CMSInitiatingOccupancyFraction=80 -XX:SoftRefLRUPolicyMSPerMB=0 -Xlog:gc*:$DORIS_HOME/log/fe.gc.log.$DATE:time\"\nsys_log_level = INFO\nmeta_dir = /usr/local/doris/fe/doris-meta\nhttp_port = 8030\nrpc_port = 9020\nquery_port = 9030\nedit_log_port = 9010\nmysql_service_nio_enabled = true"
    },{
        "hosts":["10.220.147.155"],
        "role":"BE",
        "conf":"PPROF_TMPDIR=\"$DORIS_HOME/log/\"\nsys_log_level = INFO\nbe_port = 19060\nbe_rpc_port = 19070\nwebserver_port = 18040\nheartbeat_service_port = 19050\nbrpc_port = 18060\nstorage_root_path = /usr/local/doris/be/storage\n"
    }]
}`},
		{"5. startService", "/api/agent/startService", `{
    "processId":"1",
    "dorisStarts":[{
        "host":"10.220.147.155",
        "role":"FE"
    },{
        "host":"10.220.147.155",
        "role":"BE"
    }]
}`},
		{"5. buildCluster", "/api/agent/buildCluster", `{
    "processId":1,
    "feHosts":["10.220.147.155"],
    "beHosts":["10.220.147.155"]
}`},
		{"6. installComplete", "/api/process/installComplete/1", `{
    "processId":1,
    "hosts":["10.220.147.155"]
}`},
	}
	for _, ex := range examples {
		t.Run(ex.section, func(t *testing.T) {
			if !json.Valid([]byte(ex.body)) {
				t.Fatal("the example is not the document's JSON")
			}
			got := e.do("POST", ex.path, ex.body, e.token)
			if got.status == http.StatusBadRequest && (strings.Contains(got.Msg, "unknown field") || strings.HasPrefix(got.Msg, "request body") ||
				strings.HasPrefix(got.Msg, "field ")) {
				t.Fatalf("the document's example is refused as a body: %s", got.raw)
			}
			t.Logf("%d %s", got.status, got.Msg)
		})
	}
	// Decoded, the example reaches the handler, which looks the process up.
	if got := e.do("POST", "/api/process/installComplete/1", `{"processId":1,"hosts":["10.220.147.155"]}`, e.token); got.status != 404 {
		t.Fatalf("installComplete of no process: %d %s", got.status, got.raw)
	}
}

// A call whose path names its process or task takes an optional body that
// may only repeat that id (installComplete: also the document's hosts).
func TestIDBodies(t *testing.T) {
	e := newEnv(t, "")
	pid := e.installAgent("10.0.0.1")
	var task int64
	e.st.DB().Model(&store.Task{}).Where("process_id = ?", pid).Select("id").Scan(&task)
	e.st.DB().Model(&store.Task{}).Where("id = ?", task).Update("status", store.StatusFailure)
	for _, c := range []struct {
		name, path string
		body       any
		status     int
		msg        string
	}{
		{"retry, other id", fmt.Sprintf("/api/process/task/retry/%d", task), map[string]any{"taskId": task + 1}, 400, fmt.Sprintf("taskId %d in the body differs from %d in the path", task+1, task)},
		{"retry, processId", fmt.Sprintf("/api/process/task/retry/%d", task), map[string]any{"processId": pid}, 400, `unknown field "processId"`},
		{"skip, id not a number", fmt.Sprintf("/api/process/task/skip/%d", task), map[string]any{"taskId": "x"}, 400, "taskId in the body"},
		{"back, hosts", fmt.Sprintf("/api/process/back/%d", pid), map[string]any{"hosts": []string{"a"}}, 400, `unknown field "hosts"`},
		{"complete, hosts not a list", fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"hosts": "a"}, 400, `"hosts" must be a list`},
		{"complete, body not an object", fmt.Sprintf("/api/process/installComplete/%d", pid), `[1]`, 400, "must be an object"},
		{"retry, same id as a string", fmt.Sprintf("/api/process/task/retry/%d", task), map[string]any{"taskId": fmt.Sprint(task)}, 200, "success"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := e.do("POST", c.path, c.body, e.token)
			if got.status != c.status || !strings.Contains(got.Msg, c.msg) {
				t.Fatalf("got %d %s, want %d %q", got.status, got.raw, c.status, c.msg)
			}
		})
	}
}

// GET /api/process?clusterId= lists a cluster's processes, newest first,
// each as currentProcess shows it; installComplete answers the process as
// it ended.
func TestListProcessesAndCompleteStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		first := e.installAgent("10.0.0.1")
		// Completed at INSTALL_AGENT: the cluster was never built.
		r := e.ok("POST", fmt.Sprintf("/api/process/installComplete/%d", first), nil)
		var v ProcessView
		if err := json.Unmarshal(r.Data, &v); err != nil || keysOf(t, r.Data) != processKeys || v.ID != first || v.Status != "CANCELED" || v.Finish != "YES" {
			t.Fatalf("installComplete of an unbuilt cluster: %s", r.raw)
		}
		second := e.installAgent("10.0.0.1")
		r = e.ok("GET", "/api/process?clusterId=1", nil)
		var vs []ProcessView
		if err := json.Unmarshal(r.Data, &vs); err != nil || len(vs) != 2 {
			t.Fatalf("processes: %s", r.raw)
		}
		for _, raw := range list(t, r.Data) {
			if keysOf(t, raw) != processKeys {
				t.Fatalf("a listed process is not shaped as currentProcess: %s", raw)
			}
		}
		if vs[0].ID != second || vs[0].Finish != "NO" || vs[0].Status != "RUNNING" || vs[1].ID != first || vs[1].Status != "CANCELED" || vs[0].ClusterID != 1 {
			t.Fatalf("processes, newest first: %s", r.raw)
		}
		cur := e.ok("GET", "/api/process/currentProcess", nil)
		if got, _ := json.Marshal(vs[0]); string(got) != string(cur.Data) {
			t.Fatalf("the open process listed %s, currentProcess %s", got, cur.Data)
		}
		for _, c := range []struct {
			path   string
			status int
			msg    string
		}{
			{"/api/process", 400, "clusterId is required"},
			{"/api/process?clusterId=x", 400, "positive number"},
			{"/api/process?clusterId=0", 400, "positive number"},
			{"/api/process?clusterId=9", 404, "cluster 9"},
		} {
			if got := e.do("GET", c.path, nil, e.token); got.status != c.status || !strings.Contains(got.Msg, c.msg) {
				t.Errorf("%s: %d %s, want %d %q", c.path, got.status, got.raw, c.status, c.msg)
			}
		}
	})
}

// A viewer lists the processes of a cluster it is granted, of no other,
// and must name one.
func TestListProcessesAccess(t *testing.T) {
	a := newAccessEnv(t)
	if r := a.do("GET", "/api/process?clusterId=1", nil, a.viewer); r.status != 200 || len(list(t, r.Data)) != 1 {
		t.Fatalf("viewer, granted cluster: %d %s", r.status, r.raw)
	}
	for path, want := range map[string]int{"/api/process?clusterId=2": 403, "/api/process": 400, "/api/process?clusterId=-1": 400} {
		if r := a.do("GET", path, nil, a.viewer); r.status != want {
			t.Errorf("viewer %s: %d %s, want %d", path, r.status, r.raw, want)
		}
	}
	if r, _ := ruleFor("GET", "/api/process"); r.role != auth.Viewer || !r.scoped || r.change {
		t.Fatalf("rule of GET /api/process: %+v", r)
	}
}

// roleList leaves out a role whose install was skipped: it was recorded
// by installService but never installed.
func TestRoleListHidesSkippedInstalls(t *testing.T) {
	e := newEnv(t, "")
	pid := e.installAgent("10.0.0.1", "10.0.0.2")
	e.finishStep(pid, 0, store.StatusSuccess)
	e.ok("POST", "/api/agent/installService", map[string]any{"processId": pid, "allowUnverifiedPackage": true, "installInfos": []map[string]any{
		{"host": "10.0.0.1", "role": "FE"}, {"host": "10.0.0.2", "role": "BE"}}})
	e.finishStep(pid, 1, store.StatusSuccess)
	roles := func() string {
		var rs []RoleView
		json.Unmarshal(e.ok("GET", "/api/server/roleList?clusterId=1", nil).Data, &rs)
		var out []string
		for _, r := range rs {
			out = append(out, r.Role+"@"+r.Host)
		}
		return strings.Join(out, ",")
	}
	if got := roles(); got != "FE@10.0.0.1,BE@10.0.0.2" {
		t.Fatalf("roleList: %s", got)
	}
	var be store.Task
	e.st.DB().Where("process_id = ? AND task_role = ?", pid, "BE").Take(&be)
	e.st.DB().Model(&store.Task{}).Where("id = ?", be.ID).Update("status", store.StatusFailure)
	e.ok("POST", fmt.Sprintf("/api/process/task/skip/%d", be.ID), nil)
	if got := roles(); got != "FE@10.0.0.1" {
		t.Fatalf("roleList after the BE's install was skipped: %s", got)
	}
	e.ok("POST", fmt.Sprintf("/api/process/task/unskip/%d", be.ID), nil)
	if got := roles(); got != "FE@10.0.0.1,BE@10.0.0.2" {
		t.Fatalf("roleList after unskip: %s", got)
	}
}
