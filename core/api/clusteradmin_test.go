package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/clusteradmin"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/test/mysqlsim"
)

// adminEnv is the API with the admin-account calls, over a cluster whose
// one FE (a mysqlsim server) got its root password from SECURE_CLUSTER.
type adminEnv struct {
	*env
	fe      *mysqlsim.Server
	cluster int64
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	fe := mysqlsim.Start(t, map[string]string{"root": ""})
	fe.SetResult("SHOW FRONTENDS", mysqlsim.Result{Columns: []string{"Host", "QueryPort", "IsMaster"},
		Rows: [][]string{{"127.0.0.1", fmt.Sprint(fe.Port()), "true"}}})
	if err := st.UpsertRole(ctx, &store.AgentRole{ClusterID: c.ID, Host: "127.0.0.1", Role: "FE", Master: true,
		Ports: fmt.Sprintf(`{"query_port":%d}`, fe.Port())}); err != nil {
		t.Fatal(err)
	}
	exec := roleexec.New(roleexec.Config{Store: st, Accounts: clusteradmin.Accounts{Store: st, Secrets: box}})
	t.Cleanup(exec.Close)
	admin := clusteradmin.New(clusteradmin.Config{Store: st, Secrets: box, SQL: exec})
	e := &env{t: t, st: st}
	e.srv = newAPIServer(t, New(Config{Store: st, Engine: process.New(process.Config{Store: st, Sealer: box}), Admin: admin}))
	t.Cleanup(e.srv.Close)
	if e.token, _, err = auth.CreateToken(ctx, st, auth.TokenSpec{User: "admin", Role: auth.Admin}); err != nil {
		t.Fatal(err)
	}
	ae := &adminEnv{env: e, fe: fe, cluster: c.ID}
	if _, err := admin.Run(ctx, runner.Job{Task: store.Task{Input: task.Encode(task.Cluster{ClusterID: c.ID})}, Log: &strings.Builder{}}); err != nil {
		t.Fatal(err)
	}
	return ae
}

// The generated password is revealed once; every later call is refused
// with 409 and told how to set a new one.
func TestRevealAdminPasswordOnce(t *testing.T) {
	e := newAdminEnv(t)
	path := fmt.Sprintf("/api/cluster/%d/adminPassword/reveal", e.cluster)
	if r := e.do(http.MethodPost, path, nil, ""); r.status != http.StatusUnauthorized || strings.Contains(r.raw, e.fe.Password("root")) {
		t.Fatalf("without a token: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data struct {
			ClusterID int64  `json:"clusterId"`
			User      string `json:"user"`
			Password  string `json:"password"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reveal: %d %v, Cache-Control %q", resp.StatusCode, err, resp.Header.Get("Cache-Control"))
	}
	if got.Data.ClusterID != e.cluster || got.Data.User != "root" || got.Data.Password == "" || got.Data.Password != e.fe.Password("root") {
		t.Fatalf("reveal answered %+v, want root and the password set on the FE", got.Data)
	}
	for i := 0; i < 2; i++ {
		r := e.do(http.MethodPost, path, nil, e.token)
		if r.status != http.StatusConflict || !strings.Contains(r.Msg, "already revealed; set a new one with") || strings.Contains(r.raw, got.Data.Password) {
			t.Fatalf("reveal again: %d %s", r.status, r.raw)
		}
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/api/cluster/999/adminPassword/reveal", http.StatusNotFound},
		{"/api/cluster/x/adminPassword/reveal", http.StatusBadRequest},
	} {
		if r := e.do(http.MethodPost, c.path, nil, e.token); r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.path, r.status, r.raw, c.status)
		}
	}
	if r := e.do(http.MethodGet, path, nil, e.token); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET reveal: %d", r.status)
	}
}

// PUT credentials records an account only after a login with it worked;
// a refused login is a 400 that does not echo the password.
func TestSetCredentials(t *testing.T) {
	e := newAdminEnv(t)
	path := fmt.Sprintf("/api/cluster/%d/credentials", e.cluster)
	pw := e.fe.Password("root")
	for _, c := range []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"login refused", map[string]string{"user": "root", "password": "Wrong-Secret-77"}, 400, "refuses a login as root"},
		{"no user", map[string]string{"password": "x"}, 400, "user is required"},
		{"empty password", map[string]string{"user": "root", "password": ""}, 400, "password is required"},
		{"not JSON", "{", 400, "request body"},
		{"misspelt field", map[string]string{"user": "root", "pasword": "Wrong-Secret-77"}, 400, `unknown field "pasword" in request body: did you mean "password"?`},
		{"unknown cluster", map[string]string{"user": "root", "password": pw}, 404, "999"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := path
			if c.status == 404 {
				p = "/api/cluster/999/credentials"
			}
			r := e.do(http.MethodPut, p, c.body, e.token)
			if r.status != c.status || !strings.Contains(r.Msg, c.msg) || strings.Contains(r.raw, "Wrong-Secret-77") || strings.Contains(r.raw, pw) {
				t.Fatalf("%d %s, want %d naming %q without the password", r.status, r.raw, c.status, c.msg)
			}
		})
	}
	// The operator changes the password on the cluster, then tells the manager.
	e.fe.SetPassword("root", "Operators-Own-1")
	r := e.ok(http.MethodPut, path, map[string]string{"user": "root", "password": "Operators-Own-1"})
	if strings.Contains(r.raw, "Operators-Own-1") || !strings.Contains(r.raw, `"user":"root"`) {
		t.Fatalf("answer %s: want the user, never the password", r.raw)
	}
	rec, err := e.st.GetAdminAccount(context.Background(), e.cluster)
	if err != nil || rec.Generated || strings.Contains(string(rec.Password), "Operators-Own-1") {
		t.Fatalf("record %+v %v: want an operator's sealed password", rec, err)
	}
	if r := e.do(http.MethodPost, fmt.Sprintf("/api/cluster/%d/adminPassword/reveal", e.cluster), nil, e.token); r.status != http.StatusConflict || !strings.Contains(r.Msg, "not generated") {
		t.Fatalf("reveal of an operator's password: %d %s", r.status, r.raw)
	}
}
