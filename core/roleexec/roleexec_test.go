package roleexec

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestHostProbesOnlyReachClusterNodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"OK"}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	var log strings.Builder
	h := &agentHost{log: &log, logMu: &sync.Mutex{}, allowed: map[string]bool{u.Hostname(): true},
		sql: newSQLPool(nil), http: srv.Client()}
	defer h.sql.close()
	ctx := context.Background()

	cases := []struct {
		name, url, wantErr string
	}{
		{"cluster node", srv.URL + "/api/health", ""},
		{"other host", "http://192.0.2.1:8040/api/health", "not a node of this cluster"},
		{"not http", "file:///etc/passwd", "want http(s)"},
		{"garbage", "::", "want http(s)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := h.HTTPGet(ctx, c.url)
			if c.wantErr == "" {
				if err != nil || resp.Status != 200 || string(resp.Body) != `{"status":"OK"}` {
					t.Fatalf("got %+v, %v", resp, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
	for _, fe := range []string{"192.0.2.1:9030", "no-port"} {
		if _, err := h.Query(ctx, fe, "SHOW FRONTENDS"); err == nil {
			t.Errorf("Query to %s was allowed", fe)
		}
	}
	if strings.Contains(log.String(), "SHOW FRONTENDS") {
		t.Error("a refused query was logged as sent")
	}
}

func TestClusterViewMarksSkippedNodes(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.CreateCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.AgentRole{
		{ClusterID: c.ID, Host: "h1", Role: "FE", FENodeType: "FOLLOWER", Master: true, InstallDir: "/opt/doris/fe", Ports: `{"edit_log_port":9010}`},
		{ClusterID: c.ID, Host: "h2", Role: "BE", InstallDir: "/opt/doris/be"},
		{ClusterID: c.ID, Host: "h3", Role: "BE", InstallDir: "/opt/doris/be"},
		{ClusterID: c.ID, Host: "h3", Role: "BROKER", InstallDir: "/opt/doris/apache_hdfs_broker"},
	} {
		r := r
		if err := st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	p := store.Process{ClusterID: c.ID, UserID: 1, ProcessType: "DEPLOY_CONFIG", Step: 2, Status: store.ProcessRunning}
	if err := st.CreateProcess(ctx, &p); err != nil {
		t.Fatal(err)
	}
	// h2's BE install was skipped; h3's whole agent was.
	if err := st.CreateTasks(ctx, []store.Task{
		{ProcessID: p.ID, Step: 1, Host: "h2", TaskType: "INSTALL_BE", TaskRole: "BE", Status: store.StatusFailure, Skip: true},
		{ProcessID: p.ID, Step: 0, Host: "h3", TaskType: "INSTALL_AGENT", Status: store.StatusFailure, Skip: true},
	}); err != nil {
		t.Fatal(err)
	}
	e := New(Config{Store: st})
	defer e.Close()
	cl, err := e.clusterView(ctx, c.ID, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, n := range cl.Nodes {
		got[n.Host+"/"+n.Role] = n.Skipped
		if n.InstallDir != "/opt/doris" {
			t.Errorf("%s/%s: InstallDir %q, want the base /opt/doris", n.Host, n.Role, n.InstallDir)
		}
	}
	want := map[string]bool{"h1/FE": false, "h2/BE": true, "h3/BE": true, "h3/BROKER": true}
	for k, v := range want {
		if s, ok := got[k]; !ok || s != v {
			t.Errorf("%s: skipped=%v (present %v), want %v", k, s, ok, v)
		}
	}
	if cl.Nodes[0].Host != "h1" || cl.Nodes[0].Ports["edit_log_port"] != 9010 {
		t.Errorf("the master FE should come first with its ports: %+v", cl.Nodes[0])
	}
}
