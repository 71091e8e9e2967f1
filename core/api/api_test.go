package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"golang.org/x/crypto/ssh"
)

type stopper struct{ calls int }

func (s *stopper) StopStarted(context.Context, []store.Task) error { s.calls++; return nil }

// dorisRoles is the role catalogue of the Doris plugins, as far as the
// wizard's rules need it.
type dorisRoles struct{}

func (dorisRoles) Catalogue(context.Context, int64) (map[string]sdk.Info, error) {
	member := []string{sdk.CapMembership}
	java := []sdk.Param{{Name: "javaHome", Type: sdk.ParamString}}
	return map[string]sdk.Info{
		"FE":     {Role: "FE", Home: "fe", Capabilities: member, Order: sdk.Order{OneAtATime: true}, Params: java},
		"BE":     {Role: "BE", Home: "be", Capabilities: member, Order: sdk.Order{After: []string{"FE"}}, Params: java},
		"BROKER": {Role: "BROKER", Home: "apache_hdfs_broker", Capabilities: member, Order: sdk.Order{After: []string{"FE"}}, Params: java},
	}, nil
}

type env struct {
	t       *testing.T
	st      *store.Store
	srv     *httptest.Server
	token   string // admin
	other   string // another admin
	stopper *stopper
	key     string
}

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dsn, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, stopper: &stopper{}}
	eng := process.New(process.Config{Store: st, Sealer: box, Stopper: e.stopper, Catalogue: dorisRoles{}})
	pm, err := pluginhost.New(pluginhost.Config{Dir: t.TempDir(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Close() })
	plugins := pm.Handler()
	e.srv = newAPIServer(t, New(Config{Store: st, Engine: eng, Plugins: plugins}))
	t.Cleanup(e.srv.Close)
	ctx := context.Background()
	// Two admins: a process belongs to its user, whatever the role.
	if e.token, _, err = auth.CreateToken(ctx, st, auth.TokenSpec{User: "admin", Role: auth.Admin}); err != nil {
		t.Fatal(err)
	}
	if e.other, _, err = auth.CreateToken(ctx, st, auth.TokenSpec{User: "bob", Role: auth.Admin}); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	b, _ := ssh.MarshalPrivateKey(priv, "")
	e.key = string(pem.EncodeToMemory(b))
	return e
}

func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t, "")) })
	t.Run("postgres", func(t *testing.T) { fn(t, newEnv(t, pgtest.Start(t))) })
}

type reply struct {
	status int
	ctype  string
	raw    string
	Msg    string          `json:"msg"`
	Code   *int            `json:"code"`
	Data   json.RawMessage `json:"data"`
}

// do sends body (a string is sent as is, anything else as JSON).
func (e *env) do(method, path string, body any, token string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: string(raw)}
	_ = json.Unmarshal(raw, &r)
	return r
}

// ok sends a request as admin and wants a success envelope.
func (e *env) ok(method, path string, body any) reply {
	e.t.Helper()
	r := e.do(method, path, body, e.token)
	if r.status != 200 || r.Code == nil || *r.Code != 0 || r.Msg != "success" {
		e.t.Fatalf("%s %s: %d %s", method, path, r.status, r.raw)
	}
	if !strings.Contains(r.raw, `"data":`) {
		e.t.Fatalf("%s %s: success without data: %s", method, path, r.raw)
	}
	return r
}

func (e *env) finishStep(pid int64, step int, status string) {
	e.t.Helper()
	now := time.Now()
	err := e.st.DB().Model(&store.Task{}).Where("process_id = ? AND step = ?", pid, step).
		Updates(map[string]any{"status": status, "finish": true, "start_time": now, "end_time": now, "executor_id": "x"}).Error
	if err != nil {
		e.t.Fatal(err)
	}
}

func keysOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func list(t *testing.T, raw json.RawMessage) []json.RawMessage {
	t.Helper()
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("not a list: %s", raw)
	}
	return l
}

const (
	taskKeys    = "endTime,executorId,finish,host,id,processId,processType,response,result,skip,startTime,status,taskRole,taskType"
	processKeys = "clusterId,createTime,finish,id,packageUpstreamBytes,processStep,processType,status,updateTime"
)

func (e *env) installAgent(hosts ...string) int64 {
	e.t.Helper()
	r := e.ok("POST", "/api/server/installAgent", map[string]any{
		"clusterId": "1", "packageUrl": "http://10.0.0.1/doris.tar.gz", "installDir": "/usr/local/doris",
		"hosts": hosts, "user": "root", "port": 22, "sshKey": e.key})
	var pid int64
	if err := json.Unmarshal(r.Data, &pid); err != nil || pid <= 0 {
		e.t.Fatalf("installAgent data: %s", r.raw)
	}
	return pid
}

func TestWizardOverHTTP(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		// No process yet: data is null, for GET and POST.
		for _, m := range []string{"GET", "POST"} {
			if r := e.ok(m, "/api/process/currentProcess", nil); string(r.Data) != "null" {
				t.Fatalf("currentProcess without a process: %s", r.raw)
			}
		}
		pid := e.installAgent("10.0.0.1", "10.0.0.2")
		// installAgent created cluster 1; a new cluster gets the next id.
		r := e.ok("POST", "/api/cluster", map[string]string{"name": "prod"})
		if keysOf(t, r.Data) != "createTime,id,name,updateTime" || !strings.Contains(r.raw, `"id":2`) {
			t.Fatalf("cluster: %s", r.raw)
		}
		if r := e.do("POST", "/api/cluster", map[string]string{"name": "prod"}, e.token); r.status != 409 {
			t.Fatalf("duplicate cluster: %d", r.status)
		}
		if r := e.ok("GET", "/api/cluster", nil); len(list(t, r.Data)) != 2 || !strings.Contains(r.raw, `"name":"cluster-1"`) {
			t.Fatalf("installAgent with clusterId 1 must create the cluster: %s", r.raw)
		}
		for _, m := range []string{"GET", "POST"} {
			r := e.ok(m, "/api/process/currentProcess", nil)
			if keysOf(t, r.Data) != processKeys {
				t.Fatalf("currentProcess keys: %s", r.raw)
			}
			var p struct {
				ID          int64  `json:"id"`
				ProcessType string `json:"processType"`
				ProcessStep int    `json:"processStep"`
				Finish      string `json:"finish"`
				CreateTime  string `json:"createTime"`
			}
			json.Unmarshal(r.Data, &p)
			if p.ID != pid || p.ProcessType != "INSTALL_AGENT" || p.ProcessStep != 0 || p.Finish != "NO" {
				t.Fatalf("currentProcess: %s", r.raw)
			}
			if _, err := time.Parse("2006-01-02T15:04:05.000+00:00", p.CreateTime); err != nil {
				t.Fatalf("createTime format: %q", p.CreateTime)
			}
		}
		// Another user has no current process and cannot drive this one.
		if r := e.do("GET", "/api/process/currentProcess", nil, e.other); string(r.Data) != "null" {
			t.Fatalf("bob's current process: %s", r.raw)
		}
		if r := e.do("POST", fmt.Sprintf("/api/process/installComplete/%d", pid), nil, e.other); r.status != 403 {
			t.Fatalf("bob completing admin's process: %d %s", r.status, r.raw)
		}
		var tasks []TaskView
		for _, m := range []string{"GET", "POST"} {
			r := e.ok(m, fmt.Sprintf("/api/process/%d/currentTasks", pid), nil)
			l := list(t, r.Data)
			if len(l) != 2 || keysOf(t, l[0]) != taskKeys {
				t.Fatalf("currentTasks: %s", r.raw)
			}
			json.Unmarshal(r.Data, &tasks)
		}
		if tasks[0].TaskType != "INSTALL_AGENT" || tasks[0].Status != "SUBMITTED" || tasks[0].TaskRole != nil || tasks[0].Finish != "NO" {
			t.Fatalf("task: %+v", tasks[0])
		}
		// Before step 0 is done the next step is refused.
		infos := map[string]any{"processId": pid, "installInfos": []map[string]any{
			{"host": "10.0.0.1", "role": "FE", "feNodeType": "FOLLOWER"}, {"host": "10.0.0.1", "role": "BE"},
			{"host": "10.0.0.2", "role": "BE"}, {"host": "10.0.0.2", "role": "BROKER"}}}
		if r := e.do("POST", "/api/agent/installService", infos, e.token); r.status != 409 || *r.Code != 409 || !strings.Contains(r.Msg, "INSTALL_AGENT") {
			t.Fatalf("installService before agents: %d %s", r.status, r.raw)
		}
		e.finishStep(pid, 0, store.StatusSuccess)
		if r := e.ok("GET", "/api/process/currentProcess", nil); !strings.Contains(string(r.Data), `"processStep":1`) {
			t.Fatalf("processStep after step 0: %s", r.raw)
		}
		// This manager looks no checksum up: without packageSha256 the
		// package is refused unless the request allows it unverified.
		if r := e.do("POST", "/api/agent/installService", infos, e.token); r.status != 400 ||
			!strings.Contains(r.Msg, "packageSha256 is required") || !strings.Contains(r.Msg, `"allowUnverifiedPackage": true`) {
			t.Fatalf("installService without a checksum: %d %s", r.status, r.raw)
		}
		infos["allowUnverifiedPackage"] = true
		e.ok("POST", "/api/agent/installService", infos)
		r = e.ok("GET", "/api/server/roleList?clusterId=1", nil)
		roles := list(t, r.Data)
		if len(roles) != 4 || keysOf(t, roles[0]) != "clusterId,feNodeType,host,id,installDir,register,role" {
			t.Fatalf("roleList: %s", r.raw)
		}
		if !strings.Contains(r.raw, `"installDir":"/usr/local/doris/fe"`) || !strings.Contains(r.raw, `"register":"NO"`) {
			t.Fatalf("roleList values: %s", r.raw)
		}
		e.finishStep(pid, 1, store.StatusSuccess)
		e.ok("POST", "/api/agent/deployConfig", map[string]any{"processId": fmt.Sprint(pid), "deployConfigs": []map[string]any{
			{"hosts": []string{"10.0.0.1"}, "role": "FE", "conf": "http_port = 8030\n"},
			{"hosts": []string{"10.0.0.1", "10.0.0.2"}, "role": "BE", "conf": "be_port = 9060\n"},
			{"hosts": []string{"10.0.0.2"}, "role": "BROKER", "conf": "broker_ipc_port = 8000\n"}}})
		e.finishStep(pid, 2, store.StatusSuccess)
		starts := map[string]any{"processId": pid, "dorisStarts": []map[string]any{
			{"host": "10.0.0.1", "role": "FE"}, {"host": "10.0.0.1", "role": "BE"}, {"host": "10.0.0.2", "role": "BE"}, {"host": "10.0.0.2", "role": "BROKER"}}}
		e.ok("POST", "/api/agent/startService", starts)
		e.finishStep(pid, 3, store.StatusSuccess)
		e.ok("POST", fmt.Sprintf("/api/process/back/%d", pid), nil)
		if e.stopper.calls != 1 {
			t.Fatalf("back must call the stopper once, got %d", e.stopper.calls)
		}
		if r := e.ok("GET", "/api/process/currentProcess", nil); !strings.Contains(string(r.Data), `"processType":"DEPLOY_CONFIG"`) {
			t.Fatalf("after back: %s", r.raw)
		}
		e.ok("POST", "/api/agent/startService", starts)
		r = e.ok("GET", fmt.Sprintf("/api/process/%d/currentTasks", pid), nil)
		json.Unmarshal(r.Data, &tasks)
		// Fail one task: retry and skip work on it; info and log show it.
		e.finishStep(pid, 3, store.StatusSuccess)
		failed := tasks[1].ID
		e.st.DB().Model(&store.Task{}).Where("id = ?", failed).Updates(map[string]any{"status": store.StatusFailure, "response": "port 9060 in use"})
		e.st.AppendTaskLog(context.Background(), failed, []byte("starting be\nport 9060 in use\n"))
		r = e.ok("GET", fmt.Sprintf("/api/process/task/info/%d", failed), nil)
		if keysOf(t, r.Data) != taskKeys || !strings.Contains(r.raw, `"response":"port 9060 in use"`) {
			t.Fatalf("task info: %s", r.raw)
		}
		r = e.ok("GET", fmt.Sprintf("/api/process/task/log/%d", failed), nil)
		if keysOf(t, r.Data) != "log,logPath" || !strings.Contains(r.raw, "port 9060 in use") {
			t.Fatalf("task log: %s", r.raw)
		}
		if r := e.do("POST", fmt.Sprintf("/api/process/task/retry/%d", tasks[0].ID), nil, e.token); r.status != 409 {
			t.Fatalf("retry of a SUCCESS task: %d %s", r.status, r.raw)
		}
		e.ok("POST", fmt.Sprintf("/api/process/task/retry/%d", failed), nil)
		r = e.ok("GET", fmt.Sprintf("/api/process/task/info/%d", failed), nil)
		if !strings.Contains(r.raw, `"status":"SUBMITTED"`) {
			t.Fatalf("after retry: %s", r.raw)
		}
		e.st.DB().Model(&store.Task{}).Where("id = ?", failed).Update("status", store.StatusFailure)
		e.ok("POST", fmt.Sprintf("/api/process/task/skip/%d", failed), nil)
		skipped := func() map[int64]string {
			r := e.ok("POST", fmt.Sprintf("/api/process/%d/currentTasks", pid), nil)
			var ts []TaskView
			json.Unmarshal(r.Data, &ts)
			out := map[int64]string{}
			for _, tk := range ts {
				out[tk.ID] = tk.Status + "/" + tk.Skip
			}
			if len(out) != len(tasks) {
				t.Fatalf("currentTasks must list every task, the skipped one too: %s", r.raw)
			}
			return out
		}
		if got := skipped()[failed]; got != "FAILURE/YES" {
			t.Fatalf("the skipped task in currentTasks: %s", got)
		}
		// Unskip: it runs again.
		e.ok("POST", fmt.Sprintf("/api/process/task/unskip/%d", failed), nil)
		if got := skipped()[failed]; got != "SUBMITTED/NO" {
			t.Fatalf("the unskipped task in currentTasks: %s", got)
		}
		if r := e.do("POST", fmt.Sprintf("/api/process/task/unskip/%d", failed), nil, e.token); r.status != 409 || !strings.Contains(r.Msg, "not skipped") {
			t.Fatalf("unskip of a task that is not skipped: %d %s", r.status, r.raw)
		}
		e.st.DB().Model(&store.Task{}).Where("id = ?", failed).Update("status", store.StatusFailure)
		e.ok("POST", fmt.Sprintf("/api/process/task/skip/%d", failed), map[string]any{"taskId": failed})
		e.ok("POST", "/api/agent/buildCluster", map[string]any{"processId": pid, "feHosts": []string{"10.0.0.1"}, "beHosts": []string{"10.0.0.1"}})
		// Too late to unskip a task of START_SERVICE.
		if r := e.do("POST", fmt.Sprintf("/api/process/task/unskip/%d", failed), nil, e.token); r.status != 409 || !strings.Contains(r.Msg, "BUILD_CLUSTER") {
			t.Fatalf("unskip after the step: %d %s", r.status, r.raw)
		}
		e.finishStep(pid, 4, store.StatusSuccess)
		// installComplete answers the process as it ended.
		r = e.ok("POST", fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"processId": pid, "hosts": []string{"10.0.0.1"}})
		if keysOf(t, r.Data) != processKeys || !strings.Contains(string(r.Data), `"status":"SUCCESS"`) || !strings.Contains(string(r.Data), `"finish":"YES"`) ||
			!strings.Contains(string(r.Data), fmt.Sprintf(`"id":%d`, pid)) {
			t.Fatalf("installComplete: %s", r.raw)
		}
		if r := e.ok("GET", "/api/process/currentProcess", nil); string(r.Data) != "null" {
			t.Fatalf("after complete: %s", r.raw)
		}
		if r := e.do("POST", "/api/agent/buildCluster", map[string]any{"processId": pid, "feHosts": []string{"10.0.0.1"}, "beHosts": []string{}}, e.token); r.status != 409 {
			t.Fatalf("a complete process must be read-only: %d", r.status)
		}
		// Agents and hardware as reported by agents.
		now := time.Now()
		e.st.DB().Create(&store.Agent{ClusterID: 1, Host: "10.0.0.1", Port: 9602, RegisterTime: &now, LastReportedTime: &now,
			Hardware:   `{"cpu":"Intel(R) Xeon(R)","cores":8,"totalMemoryBytes":16642998272,"totalMemory":"15.5 GiB","disks":[{"mount":"/","totalBytes":1,"freeBytes":1}]}`,
			CertSerial: "TOPSECRET-SERIAL", CertIssuer: "TOPSECRET-ISSUER"})
		r = e.ok("GET", "/api/server/agentList?clusterId=1", nil)
		ags := list(t, r.Data)
		if len(ags) != 1 || keysOf(t, ags[0]) != "host,id,lastReportedTime,port,registerTime,status" || !strings.Contains(r.raw, `"port":9602`) {
			t.Fatalf("agentList: %s", r.raw)
		}
		r = e.ok("GET", "/api/agent/hardware/1", nil)
		hw := list(t, r.Data)
		if len(hw) != 1 || keysOf(t, hw[0]) != "cores,cpu,disks,host,totalMemory" || !strings.Contains(r.raw, `"totalMemory":"15.5 GiB"`) {
			t.Fatalf("hardware: %s", r.raw)
		}
		// No secret ever comes back.
		for _, p := range []string{"/api/server/agentList?clusterId=1", "/api/agent/hardware/1", "/api/process/task/info/1",
			fmt.Sprintf("/api/process/%d/currentTasks", pid), "/api/server/roleList?clusterId=1"} {
			r := e.ok("GET", p, nil)
			for _, s := range []string{"PRIVATE KEY", "TOPSECRET", "sshKey"} {
				if strings.Contains(r.raw, s) {
					t.Fatalf("%s leaks %q: %s", p, s, r.raw)
				}
			}
		}
		var p store.Process
		e.st.DB().First(&p, pid)
		if len(p.Credentials) != 0 {
			t.Fatal("credentials kept after installComplete")
		}
	})
}

func TestCredentialsSealedAtRest(t *testing.T) {
	e := newEnv(t, "")
	pid := e.installAgent("10.0.0.1")
	var p store.Process
	e.st.DB().First(&p, pid)
	if len(p.Credentials) == 0 || bytes.Contains(p.Credentials, []byte("PRIVATE KEY")) || bytes.Contains(p.Credentials, []byte("root")) {
		t.Fatalf("credentials not sealed: %q", p.Credentials)
	}
	var tk store.Task
	e.st.DB().Where("process_id = ?", pid).First(&tk)
	if strings.Contains(tk.Input, "PRIVATE") || strings.Contains(tk.Input, "sshKey") {
		t.Fatalf("task input holds the key: %s", tk.Input)
	}
}

// A package URL's password is kept sealed, and what the API answers about
// the process and its tasks shows neither the password nor its sealed form.
func TestPackageURLPasswordNeverShown(t *testing.T) {
	e := newEnv(t, "")
	r := e.ok("POST", "/api/server/installAgent", map[string]any{
		"clusterId": 1, "packageUrl": "https://u:s3cret@127.0.0.1:1/x.tar.gz", "installDir": "/usr/local/doris",
		"hosts": []string{"10.0.0.1"}, "user": "root", "port": 22, "sshKey": e.key})
	var pid int64
	if err := json.Unmarshal(r.Data, &pid); err != nil || pid <= 0 {
		t.Fatalf("installAgent data: %s", r.raw)
	}
	e.finishStep(pid, 0, store.StatusSuccess)
	e.ok("POST", "/api/agent/installService", map[string]any{"processId": pid, "allowUnverifiedPackage": true,
		"installInfos": []map[string]any{{"host": "10.0.0.1", "role": "FE", "feNodeType": "FOLLOWER"}}})
	var p store.Process
	e.st.DB().First(&p, pid)
	var tasks []store.Task
	e.st.DB().Where("process_id = ?", pid).Order("id").Find(&tasks)
	if !secret.IsSealedURL(p.PackageURL) || len(tasks) != 2 || !strings.Contains(tasks[1].Input, secret.SealedPrefix) {
		t.Fatalf("stored: %q, tasks %+v", p.PackageURL, tasks)
	}
	for _, path := range []string{"/api/process/currentProcess", "/api/process?clusterId=1",
		fmt.Sprintf("/api/process/%d/currentTasks", pid), fmt.Sprintf("/api/process/task/info/%d", tasks[1].ID),
		fmt.Sprintf("/api/process/task/log/%d", tasks[1].ID), "/api/server/roleList?clusterId=1"} {
		r := e.do("GET", path, nil, e.token)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		if strings.Contains(r.raw, "s3cret") || strings.Contains(r.raw, secret.SealedPrefix) {
			t.Fatalf("%s shows the password: %s", path, r.raw)
		}
	}
}

func TestEnvelopesForAuthAndRouting(t *testing.T) {
	e := newEnv(t, "")
	cases := []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", "GET", "/api/process/currentProcess", "", 401},
		{"bad token", "GET", "/api/process/currentProcess", "dm_wrong", 401},
		{"no token on plugins", "GET", "/api/plugins/", "", 401},
		{"unknown api route", "GET", "/api/nope", e.token, 404},
		{"unknown route", "GET", "/nope", "", 404},
		{"wrong method", "DELETE", "/api/process/currentProcess", e.token, 405},
		{"GET on a POST endpoint", "GET", "/api/server/installAgent", e.token, 405},
		{"bad path id", "GET", "/api/process/task/info/abc", e.token, 400},
		{"zero path id", "GET", "/api/process/task/info/0", e.token, 400},
		{"unknown task", "GET", "/api/process/task/info/42", e.token, 404},
		{"unknown task log", "GET", "/api/process/task/log/42", e.token, 404},
		{"unknown process tasks", "GET", "/api/process/42/currentTasks", e.token, 404},
		{"missing clusterId", "GET", "/api/server/agentList", e.token, 400},
		{"bad clusterId", "GET", "/api/server/roleList?clusterId=x", e.token, 400},
		{"unknown cluster", "GET", "/api/server/agentList?clusterId=9", e.token, 404},
		{"unknown cluster hardware", "GET", "/api/agent/hardware/9", e.token, 404},
		{"retry unknown task", "POST", "/api/process/task/retry/42", e.token, 404},
		{"skip unknown task", "POST", "/api/process/task/skip/42", e.token, 404},
		{"back unknown process", "POST", "/api/process/back/42", e.token, 404},
		{"complete unknown process", "POST", "/api/process/installComplete/42", e.token, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, nil, c.token)
			if r.status != c.status || r.Code == nil || *r.Code != c.status || r.Msg == "" {
				t.Fatalf("got %d %s, want %d envelope", r.status, r.raw, c.status)
			}
			if !strings.HasPrefix(r.ctype, "application/json") {
				t.Fatalf("content type %q", r.ctype)
			}
		})
	}
	// The agent API is never part of the REST API (it has its own
	// mutual-TLS listener); plugins are mounted behind a user token.
	if r := e.do("POST", "/agent-api/v1/register", "{}", ""); r.status != 404 {
		t.Fatalf("agent api on the REST router: %d %s", r.status, r.raw)
	}
	if r := e.ok("GET", "/api/plugins/", nil); !strings.Contains(string(r.Data), `"pluginsDir"`) {
		t.Fatalf("plugins: %d %s", r.status, r.raw)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		// A process at INSTALL_SERVICE on cluster 1 with hosts 10.0.0.1 and .2.
		pid := e.installAgent("10.0.0.1", "10.0.0.2")
		e.finishStep(pid, 0, store.StatusSuccess)
		e.ok("POST", "/api/agent/installService", map[string]any{"processId": pid, "packageSha256": strings.Repeat("ab", 32),
			"installInfos": []map[string]any{{"host": "10.0.0.1", "role": "FE"}, {"host": "10.0.0.2", "role": "BE"}}})
		agent := func(mod func(m map[string]any)) map[string]any {
			m := map[string]any{"clusterId": 2, "packageUrl": "http://h/p.tgz", "installDir": "/opt/doris",
				"hosts": []string{"10.0.0.9"}, "user": "root", "sshPort": 22, "sshKey": e.key}
			mod(m)
			return m
		}
		bigConf := strings.Repeat("x", 256<<10+1)
		huge := `{"processId":1,"pad":"` + strings.Repeat("y", 1<<20) + `"}`
		cases := []struct {
			name, path string
			body       any
			status     int
			msg        string
		}{
			{"malformed json", "/api/server/installAgent", `{"clusterId":`, 400, "request body"},
			{"empty body", "/api/server/installAgent", "", 400, "empty"},
			{"trailing data", "/api/server/installAgent", `{} {}`, 400, "after"},
			{"hosts not a list", "/api/server/installAgent", agent(func(m map[string]any) { m["hosts"] = "10.0.0.9" }), 400, "hosts"},
			{"port not a number", "/api/server/installAgent", agent(func(m map[string]any) { m["sshPort"] = "abc" }), 400, "sshPort"},
			{"clusterId not a number", "/api/server/installAgent", agent(func(m map[string]any) { m["clusterId"] = "one" }), 400, "clusterId"},
			{"missing clusterId", "/api/server/installAgent", agent(func(m map[string]any) { delete(m, "clusterId") }), 400, "clusterId"},
			{"missing port", "/api/server/installAgent", agent(func(m map[string]any) { delete(m, "sshPort") }), 400, "sshPort"},
			{"ports differ", "/api/server/installAgent", agent(func(m map[string]any) { m["port"] = 2222 }), 400, "port"},
			{"missing key", "/api/server/installAgent", agent(func(m map[string]any) { delete(m, "sshKey") }), 400, "sshKey"},
			{"port out of range", "/api/server/installAgent", agent(func(m map[string]any) { m["sshPort"] = 70000 }), 400, "sshPort"},
			{"invalid host", "/api/server/installAgent", agent(func(m map[string]any) { m["hosts"] = []string{"10.0.0.9 && reboot"} }), 400, "hosts[0]"},
			{"relative installDir", "/api/server/installAgent", agent(func(m map[string]any) { m["installDir"] = "doris" }), 400, "installDir"},
			{"unclean installDir", "/api/server/installAgent", agent(func(m map[string]any) { m["installDir"] = "/opt//doris" }), 400, "installDir"},
			{"system installDir", "/api/server/installAgent", agent(func(m map[string]any) { m["installDir"] = "/etc" }), 400, "operating system"},
			{"parent of system folders", "/api/server/installAgent", agent(func(m map[string]any) { m["installDir"] = "/var/lib" }), 400, "holds /var/lib/"},
			{"strict without fingerprints", "/api/server/installAgent", agent(func(m map[string]any) { m["strictHostKeys"] = true }), 400, "strictHostKeys"},
			{"second process of the user", "/api/server/installAgent", agent(func(m map[string]any) {}), 409, "unfinished process"},
			{"body over 1 MiB", "/api/server/installAgent", huge, 413, "larger"},
			{"missing processId", "/api/agent/deployConfig", map[string]any{"deployConfigs": []any{}}, 400, "processId"},
			{"unknown processId", "/api/agent/deployConfig", map[string]any{"processId": 999, "deployConfigs": []map[string]any{
				{"hosts": []string{"10.0.0.1"}, "role": "FE", "conf": "a"}}}, 404, "999"},
			{"step out of order", "/api/agent/startService", map[string]any{"processId": pid, "dorisStarts": []map[string]any{
				{"host": "10.0.0.1", "role": "FE"}}}, 409, "DEPLOY_CONFIG"},
			{"same step again", "/api/agent/installService", map[string]any{"processId": pid, "installInfos": []map[string]any{
				{"host": "10.0.0.1", "role": "FE"}}}, 409, "INSTALL_SERVICE"},
			{"unknown role", "/api/agent/deployConfig", map[string]any{"processId": pid, "deployConfigs": []map[string]any{
				{"hosts": []string{"10.0.0.1"}, "role": "COMPUTE", "conf": "a"}}}, 400, "role"},
			{"conf over 256 KiB", "/api/agent/deployConfig", map[string]any{"processId": pid, "deployConfigs": []map[string]any{
				{"hosts": []string{"10.0.0.1"}, "role": "FE", "conf": bigConf}}}, 400, "256 KiB"},
			{"buildCluster without beHosts", "/api/agent/buildCluster", map[string]any{"processId": pid, "feHosts": []string{"10.0.0.1"}}, 400, "beHosts"},
			{"buildCluster with a quote in adminPassword", "/api/agent/buildCluster", map[string]any{"processId": pid, "feHosts": []string{"10.0.0.1"},
				"beHosts": []string{}, "adminPassword": "abc'defgh1"}, 400, "adminPassword"},
			{"bad cluster name", "/api/cluster", map[string]any{"name": "a b;c"}, 400, "name"},
			{"missing cluster name", "/api/cluster", map[string]any{}, 400, "name"},
		}
		counts := func() string {
			var p, tk, c, ro int64
			e.st.DB().Model(&store.Process{}).Count(&p)
			e.st.DB().Model(&store.Task{}).Count(&tk)
			e.st.DB().Model(&store.Cluster{}).Count(&c)
			e.st.DB().Model(&store.AgentRole{}).Count(&ro)
			var v store.Process
			e.st.DB().First(&v, pid)
			return fmt.Sprintf("processes %d tasks %d clusters %d roles %d version %d", p, tk, c, ro, v.Version)
		}
		before := counts()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.do("POST", c.path, c.body, e.token)
				if r.status != c.status || r.Code == nil || *r.Code != c.status {
					t.Fatalf("got %d %s, want %d", r.status, truncate(r.raw, 300), c.status)
				}
				if !strings.Contains(r.Msg, c.msg) {
					t.Fatalf("message %q does not name %q", r.Msg, c.msg)
				}
				if strings.Contains(r.raw, "PRIVATE KEY") {
					t.Fatal("error echoes the key")
				}
				if after := counts(); after != before {
					t.Fatalf("a refused request wrote: %s -> %s", before, after)
				}
			})
		}
	})
}

func TestConcurrentStepCallsOneWins(t *testing.T) {
	e := newEnv(t, "")
	pid := e.installAgent("10.0.0.1")
	e.finishStep(pid, 0, store.StatusSuccess)
	body := map[string]any{"processId": pid, "packageSha256": strings.Repeat("ab", 32), "installInfos": []map[string]any{{"host": "10.0.0.1", "role": "FE"}}}
	const n = 6
	statuses := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			j, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/agent/installService", bytes.NewReader(j))
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	got := map[int]int{}
	for i := 0; i < n; i++ {
		got[<-statuses]++
	}
	if got[200] != 1 || got[409] != n-1 {
		t.Fatalf("statuses %v: want one 200 and the rest 409", got)
	}
}
