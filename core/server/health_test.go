package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/hashicorp/go-hclog"
)

// readyz answers 503 naming what is missing until role plugins are
// loaded, then 200; healthz answers throughout; neither needs a token.
func TestReadyz(t *testing.T) {
	pluginsErr := errors.New("no role plugin is loaded from /x: install them")
	ready := make(chan error, 1)
	ready <- pluginsErr
	s, _, stop := startServer(t, Config{Extend: func(context.Context, Deps) (Extensions, error) {
		return Extensions{PluginsReady: func() error {
			err := <-ready
			ready <- err
			return err
		}}, nil
	}})
	defer stop()
	for _, tc := range []struct {
		name    string
		plugins error
		code    int
		want    []string
	}{
		{"no plugins", pluginsErr, http.StatusServiceUnavailable,
			[]string{`"msg":"not ready: plugins: no role plugin is loaded from /x: install them"`, `"ready":false`,
				`{"name":"store","ok":true}`, `{"name":"plugins","ok":false,"error":"no role plugin`}},
		{"plugins", nil, http.StatusOK, []string{`"ready":true`, `{"name":"plugins","ok":true}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			<-ready
			ready <- tc.plugins
			code, body := call(t, s, "GET", "/readyz", "", "")
			if code != tc.code {
				t.Errorf("/readyz = %d %s, want %d", code, body, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("/readyz body %s lacks %s", body, w)
				}
			}
			if code, body := call(t, s, "GET", "/healthz", "", ""); code != http.StatusOK || !strings.Contains(body, `"status":"live"`) {
				t.Errorf("/healthz = %d %s", code, body)
			}
		})
	}
}

func TestReadyzWithoutPluginHost(t *testing.T) {
	s, _, stop := startServer(t, Config{})
	defer stop()
	if code, body := call(t, s, "GET", "/readyz", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "no role plugin") {
		t.Fatalf("/readyz without a plugin host = %d %s", code, body)
	}
	// Without agents both states read 0 rather than being absent.
	_, text := call(t, s, "GET", "/metrics", "", "")
	m, err := metricstest.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{`dorismanager_agents{state="RUNNING"}`, `dorismanager_agents{state="STOP"}`} {
		if v, ok := m[series]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0\n%s", series, v, ok, text)
		}
	}
}

// After some requests and a task, /metrics (no token) has the series of
// tasks, task durations, agents, HTTP routes (patterns, not paths) with
// sane values, and is not served on the agent endpoint.
func TestMetricsAfterRequestsAndATask(t *testing.T) {
	s, tok, stop := startServer(t, Config{Extend: func(ctx context.Context, d Deps) (Extensions, error) {
		if d.Metrics == nil {
			return Extensions{}, errors.New("no metrics registry in Deps")
		}
		return Extensions{Actions: runner.Actions{"INSTALL_AGENT": okAction{}},
			AgentAPI: http.NotFoundHandler()}, nil
	}})
	defer stop()
	ctx := context.Background()
	// Liveness comes from the last heartbeat's time: two recent, one long ago.
	now, old := time.Now(), time.Now().Add(-time.Hour)
	if err := s.Store().DB().WithContext(ctx).Create(&[]store.Agent{
		{ClusterID: 1, Host: "10.0.0.1", LastReportedTime: &now}, {ClusterID: 1, Host: "10.0.0.2", LastReportedTime: &old},
		{ClusterID: 2, Host: "10.0.0.3", LastReportedTime: &now}}).Error; err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, s, "POST", "/api/server/installAgent", tok, installAgentBody(t)); code != 200 {
		t.Fatalf("installAgent: %d %s", code, body)
	}
	task := waitTask(t, s)
	if task.Status != store.StatusSuccess {
		t.Fatalf("task: %+v", task)
	}
	for _, id := range []string{"123", "456"} {
		if code, _ := call(t, s, "GET", "/api/process/task/info/"+id, tok, ""); code != http.StatusNotFound {
			t.Fatalf("task info %s: %d", id, code)
		}
	}
	call(t, s, "GET", "/no/such/path/789", "", "")
	// Refused by the token check before the inner route matched: counted
	// under the /api/* pattern.
	call(t, s, "GET", "/api/process/currentProcess", "", "")

	code, text := call(t, s, "GET", "/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d %s", code, text)
	}
	m, err := metricstest.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	for series, want := range map[string]float64{
		`dorismanager_tasks{type="INSTALL_AGENT",status="SUCCESS"}`:                                                         1,
		`dorismanager_tasks_ended_total{type="INSTALL_AGENT",status="SUCCESS"}`:                                             1,
		`dorismanager_task_duration_seconds_count{type="INSTALL_AGENT"}`:                                                    1,
		`dorismanager_task_duration_seconds_bucket{type="INSTALL_AGENT",le="+Inf"}`:                                         1,
		`dorismanager_agents{state="RUNNING"}`:                                                                              2,
		`dorismanager_agents{state="STOP"}`:                                                                                 1,
		`dorismanager_http_request_duration_seconds_count{method="GET",route="/api/process/task/info/{taskId}",code="404"}`: 2,
		`dorismanager_http_request_duration_seconds_count{method="POST",route="/api/server/installAgent",code="200"}`:       1,
		`dorismanager_http_request_duration_seconds_count{method="GET",route="unmatched",code="404"}`:                       1,
		`dorismanager_http_request_duration_seconds_count{method="GET",route="/api/*",code="401"}`:                          1,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if d := m[`dorismanager_task_duration_seconds_sum{type="INSTALL_AGENT"}`]; d < 0 || d > 60 {
		t.Errorf("task duration sum %v s is not sane", d)
	}
	// Only series names and labels can carry an id: a sample's value (a
	// latency sum such as 0.012456) may contain the digits by chance.
	var series strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			series.WriteString(line[:i] + "\n")
		}
	}
	for _, id := range []string{"123", "456", "789", "10.0.0.1"} {
		if strings.Contains(series.String(), id) {
			t.Errorf("/metrics carries %q from a path or a row:\n%s", id, text)
		}
	}
	if strings.Contains(text, tok) {
		t.Error("/metrics carries the admin token")
	}

	// Not on the agent endpoint, even to an agent certificate.
	key, _ := pki.NewKey()
	is, err := s.PKI().Issue(pki.Request{PublicKey: key.Public(), CommonName: "a", Hosts: []string{"127.0.0.1"}, Role: pki.Agent, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pki.EncodeKey(key)
	cert, _ := tls.X509KeyPair(is.PEM, kb)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.PKI().Pool(), Certificates: []tls.Certificate{cert}}}}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		resp, err := hc.Get("https://" + s.AgentAddr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("agent endpoint %s = %d, want 404", p, resp.StatusCode)
		}
	}
}

// A store that does not answer fails the store check with what to do; the
// driver's error (which may name the database user) stays in the log.
func TestStoreCheckFailsWhenTheDatabaseIsGone(t *testing.T) {
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	checks := readyChecks(st, func() error { return nil }, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	if err := checks[0].Check(context.Background()); checks[0].Name != "store" || err != nil {
		t.Fatalf("%s check on an open store: %v", checks[0].Name, err)
	}
	st.Close()
	err = checks[0].Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--db") || strings.Contains(err.Error(), "closed") {
		t.Fatalf("store check on a closed store: %v", err)
	}
	if !strings.Contains(logs.String(), "database is closed") {
		t.Errorf("the driver's error was not logged: %q", logs.String())
	}
}
