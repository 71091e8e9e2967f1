package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/store"
)

// Requests are timed under their route pattern and a known method, so
// neither ids in paths nor made-up methods add series.
func TestHTTPMetricsLabels(t *testing.T) {
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := metrics.NewRegistry()
	srv := newAPIServer(t, New(Config{Store: st, Metrics: reg,
		Ready: []Check{{Name: "x", Check: func(context.Context) error { return errors.New("x is down: start x") }}}}))
	defer srv.Close()
	send := func(method, path string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path string
		code         int
		series       string
	}{
		{"GET", "/healthz", 200, `{method="GET",route="/healthz",code="200"}`},
		{"GET", "/readyz", 503, `{method="GET",route="/readyz",code="503"}`},
		{"GET", "/api/process/task/log/918273", 401, `{method="GET",route="/api/*",code="401"}`},
		{"GET", "/nothing/here/564738", 404, `{method="GET",route="unmatched",code="404"}`},
		{"BREW", "/healthz", 405, `{method="OTHER",route="unmatched",code="405"}`},
	} {
		if code := send(tc.method, tc.path); code != tc.code {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, code, tc.code)
		}
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != metrics.ContentType {
			t.Errorf("/metrics content type %q", ct)
		}
		m, err := metricstest.Parse(strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if got := m["dorismanager_http_request_duration_seconds_count"+tc.series]; got != 1 {
			t.Errorf("%s %s: series %s = %v, want 1\n%s", tc.method, tc.path, tc.series, got, b)
		}
		for _, id := range []string{"918273", "564738", "BREW"} {
			if strings.Contains(string(b), id) {
				t.Errorf("/metrics carries %q", id)
			}
		}
	}
}
