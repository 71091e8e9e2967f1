package wizard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/cli/progress"
	"github.com/dorismanager/dorismanager/cli/rest"
	"github.com/dorismanager/dorismanager/cli/topology"
)

// fakeManager answers the wizard's calls the way the manager does, with
// tasks that end at once: SUCCESS, or FAILURE the first time for the
// tasks named in failOnce ("TASKTYPE host"). Skipped tasks stay listed
// with skip "YES", as newer managers show them.
type fakeManager struct {
	mu       sync.Mutex
	failOnce map[string]bool
	step     int
	tasks    []rest.Task
	open     bool
	created  bool
	nextTask int64
	bodies   map[string]json.RawMessage // the last body of each POST path
	posts    []string
}

func (f *fakeManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodPost {
		f.bodies[r.URL.Path] = body
		f.posts = append(f.posts, r.URL.Path)
	}
	ok := func(data any) {
		_ = json.NewEncoder(w).Encode(map[string]any{"msg": "success", "code": 0, "data": data})
	}
	var req struct {
		Hosts        []string            `json:"hosts"`
		InstallInfos []rest.InstallInfo  `json:"installInfos"`
		Configs      []rest.DeployConfig `json:"deployConfigs"`
		Starts       []rest.HostRole     `json:"dorisStarts"`
		FEHosts      []string            `json:"feHosts"`
		BEHosts      []string            `json:"beHosts"`
	}
	_ = json.Unmarshal(body, &req)
	p := r.URL.Path
	switch {
	case p == "/api/cluster" && r.Method == http.MethodGet:
		if f.created {
			ok([]rest.Cluster{{ID: 1, Name: "demo"}})
			return
		}
		ok([]rest.Cluster{})
	case p == "/api/cluster":
		f.created = true
		ok(rest.Cluster{ID: 1, Name: "demo"})
	case p == "/api/process/currentProcess":
		if !f.open {
			ok(nil)
			return
		}
		st := f.step
		if f.allDone() {
			st++
		}
		ok(rest.Process{ID: 1, ClusterID: 1, ProcessType: Steps[f.step], ProcessStep: st})
	case p == "/api/server/roleList":
		ok([]rest.Role{})
	case p == "/api/server/installAgent":
		f.open = true
		f.newStep(0, func(add func(host, role, typ string)) {
			for _, h := range req.Hosts {
				add(h, "", "INSTALL_AGENT")
			}
		})
		ok(1)
	case p == "/api/agent/installService":
		f.newStep(1, func(add func(host, role, typ string)) {
			for _, i := range req.InstallInfos {
				add(i.Host, i.Role, "INSTALL_"+i.Role)
			}
		})
		ok(nil)
	case p == "/api/agent/deployConfig":
		f.newStep(2, func(add func(host, role, typ string)) {
			for _, c := range req.Configs {
				for _, h := range c.Hosts {
					add(h, c.Role, "DEPLOY_"+c.Role+"_CONFIG")
				}
			}
		})
		ok(nil)
	case p == "/api/agent/startService":
		f.newStep(3, func(add func(host, role, typ string)) {
			for _, s := range req.Starts {
				add(s.Host, s.Role, "START_"+s.Role)
			}
		})
		ok(nil)
	case p == "/api/agent/buildCluster":
		f.newStep(4, func(add func(host, role, typ string)) {
			for _, h := range req.FEHosts {
				add(h, "", "ADD_FE")
			}
			for _, h := range req.BEHosts {
				add(h, "", "ADD_BACKEND")
			}
		})
		ok(nil)
	case p == "/api/process/1/currentTasks":
		ok(f.tasks)
	case strings.HasPrefix(p, "/api/process/task/log/"):
		ok(rest.TaskLog{Log: "line 1\nline 2: why it failed\n"})
	case strings.HasPrefix(p, "/api/process/task/retry/"), strings.HasPrefix(p, "/api/process/task/skip/"):
		var id int64
		fmt.Sscan(p[strings.LastIndexByte(p, '/')+1:], &id)
		for i := range f.tasks {
			if f.tasks[i].ID == id {
				if strings.Contains(p, "retry") {
					f.tasks[i].Status = rest.TaskSuccess
				} else {
					f.tasks[i].Skip = "YES"
				}
			}
		}
		ok(nil)
	case p == "/api/process/installComplete/1":
		f.open = false
		ok(rest.Process{ID: 1, ClusterID: 1, Status: "SUCCESS", Finish: "YES"})
	case p == "/api/cluster/1/status":
		ok(rest.ClusterStatus{ClusterID: 1, Name: "demo", Nodes: []rest.NodeStatus{{Host: "10.0.0.11", Role: "FE", Status: "UP"}}})
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"msg": "no endpoint " + r.Method + " " + p, "code": 404})
	}
}

func (f *fakeManager) allDone() bool {
	for _, t := range f.tasks {
		if !t.Done() {
			return false
		}
	}
	return true
}

func (f *fakeManager) newStep(step int, make func(add func(host, role, typ string))) {
	f.step, f.tasks = step, nil
	now := rest.Time{Time: time.Now()}
	make(func(host, role, typ string) {
		f.nextTask++
		r := role
		t := rest.Task{ID: f.nextTask, ProcessID: 1, Host: host, TaskType: typ, TaskRole: &r, Status: rest.TaskSuccess, Skip: "NO",
			ProcessType: Steps[step], StartTime: now, EndTime: now}
		if f.failOnce[typ+" "+host] {
			delete(f.failOnce, typ+" "+host)
			t.Status = rest.TaskFailure
			msg := typ + " failed on " + host
			t.Response = &msg
		}
		f.tasks = append(f.tasks, t)
	})
}

const topo = `cluster: demo
ssh: {user: root, keyFile: id}
package: {url: "http://repo/doris.tar.gz"}
installDir: /opt/doris
hosts:
  - {name: h1, address: 10.0.0.11}
  - {name: h2, address: 10.0.0.12}
fe:
  - host: h1
be:
  - host: h1
  - host: h2
`

func setup(t *testing.T, failOnce ...string) (*fakeManager, Options) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	top, err := topology.Parse([]byte(topo), dir)
	if err != nil {
		t.Fatal(err)
	}
	top.Path = "top.yaml"
	f := &fakeManager{failOnce: map[string]bool{}, bodies: map[string]json.RawMessage{}}
	for _, x := range failOnce {
		f.failOnce[x] = true
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := rest.New(rest.Config{Server: srv.URL, Getenv: func(k string) string {
		if k == rest.EnvToken {
			return "t"
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	return f, Options{Client: c, Topology: top, Printer: progress.NewPlain(io.Discard, nil), Resume: "dorismanager cluster deploy top.yaml",
		Poll: time.Millisecond, Settle: 5 * time.Millisecond, StatusWait: time.Second}
}

func hostsOf(t *testing.T, f *fakeManager, path, field string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(f.bodies[path], &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	switch field {
	case "deployConfigs":
		var cs []rest.DeployConfig
		_ = json.Unmarshal(m[field], &cs)
		for _, c := range cs {
			for _, h := range c.Hosts {
				out = append(out, c.Role+" "+h)
			}
		}
	case "dorisStarts":
		var ss []rest.HostRole
		_ = json.Unmarshal(m[field], &ss)
		for _, s := range ss {
			out = append(out, s.Role+" "+s.Host)
		}
	default:
		_ = json.Unmarshal(m[field], &out)
	}
	sort.Strings(out)
	return out
}

// A failed task skipped at the question leaves its node out of every later
// step; a retried one keeps it.
func TestAskSkipAndRetry(t *testing.T) {
	f, o := setup(t, "INSTALL_BE 10.0.0.12", "START_FE 10.0.0.11")
	var asked []string
	o.Ask = func(task rest.Task) (Action, error) {
		asked = append(asked, task.TaskType+" "+task.Host)
		if task.TaskType == "INSTALL_BE" {
			return Skip, nil
		}
		return Retry, nil
	}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"INSTALL_BE 10.0.0.12", "START_FE 10.0.0.11"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("asked about %v, want %v", asked, want)
	}
	if got, want := hostsOf(t, f, "/api/agent/deployConfig", "deployConfigs"), []string{"BE 10.0.0.11", "FE 10.0.0.11"}; !reflect.DeepEqual(got, want) {
		t.Errorf("deployConfig for %v, want %v (the skipped BE left out)", got, want)
	}
	if got, want := hostsOf(t, f, "/api/agent/startService", "dorisStarts"), []string{"BE 10.0.0.11", "FE 10.0.0.11"}; !reflect.DeepEqual(got, want) {
		t.Errorf("startService for %v, want %v", got, want)
	}
	if got := hostsOf(t, f, "/api/agent/buildCluster", "beHosts"); !reflect.DeepEqual(got, []string{"10.0.0.11"}) {
		t.Errorf("buildCluster beHosts %v", got)
	}
	if got := hostsOf(t, f, "/api/agent/buildCluster", "feHosts"); !reflect.DeepEqual(got, []string{"10.0.0.11"}) {
		t.Errorf("buildCluster feHosts %v (the retried FE kept)", got)
	}
	if res.Final == nil || res.Final.Status != "SUCCESS" || len(res.Status.Nodes) != 1 || !res.Created {
		t.Errorf("result %+v", res)
	}
}

// Without anyone to ask, a failure stops the walk; run again, it resumes
// the process at its step and retries the failed task.
func TestStopThenResume(t *testing.T) {
	f, o := setup(t, "DEPLOY_BE_CONFIG 10.0.0.12", "START_BE 10.0.0.12")
	_, err := Run(context.Background(), o)
	var st *Stopped
	if !errors.As(err, &st) || st.Step != "DEPLOY_CONFIG" || st.ProcessID != 1 || len(st.Failed) != 1 {
		t.Fatalf("first run: %v; want a stop at DEPLOY_CONFIG", err)
	}
	if want := "process 1 stopped at DEPLOY_CONFIG: task 8 failed (resume with: dorismanager cluster deploy top.yaml)"; err.Error() != want {
		t.Errorf("error %q\nwant %q", err, want)
	}
	// Resumed at DEPLOY_CONFIG: deployConfig is sent again (with the
	// file's confs), not retried task by task.
	before := len(f.posts)
	_, err = Run(context.Background(), o)
	if !errors.As(err, &st) || st.Step != "START_SERVICE" {
		t.Fatalf("second run: %v; want a stop at START_SERVICE", err)
	}
	if got := f.posts[before]; got != "/api/agent/deployConfig" {
		t.Errorf("the resumed DEPLOY_CONFIG began with %s, want deployConfig again", got)
	}
	// Resumed at START_SERVICE: the failed task is retried.
	before = len(f.posts)
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	if got := f.posts[before]; !strings.HasPrefix(got, "/api/process/task/retry/") {
		t.Errorf("the resumed START_SERVICE began with %s, want a retry", got)
	}
	if res.Created || res.Final == nil || res.Final.Status != "SUCCESS" {
		t.Errorf("third run's result %+v", res)
	}
	n := 0
	for _, p := range f.posts {
		if p == "/api/cluster" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d clusters created over three runs, want 1: %v", n, f.posts)
	}
}
