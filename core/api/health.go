package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/go-chi/chi/v5"
)

// Check is one condition of readiness: Check returns nil when it holds,
// else an error saying what is wrong and what to do.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// checkTimeout bounds each readiness check, so a hung database makes
// /readyz answer 503 instead of hanging the prober.
const checkTimeout = 5 * time.Second

// CheckResult is one check's line in /readyz.
type CheckResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// healthz answers 200 while the process serves requests.
func healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.OK(w, map[string]string{"status": "live"})
}

// readyz runs every check: 200 when all hold, else 503 naming the failed
// ones in msg and listing every check in data.
func readyz(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		results := make([]CheckResult, 0, len(checks))
		var failed []string
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			err := c.Check(ctx)
			cancel()
			res := CheckResult{Name: c.Name, OK: err == nil}
			if err != nil {
				res.Error = err.Error()
				failed = append(failed, c.Name+": "+res.Error)
			}
			results = append(results, res)
		}
		data := map[string]any{"ready": len(failed) == 0, "checks": results}
		if len(failed) > 0 {
			httpx.Respond(w, http.StatusServiceUnavailable, httpx.Envelope{Msg: "not ready: " + strings.Join(failed, "; "),
				Code: http.StatusServiceUnavailable, Data: data})
			return
		}
		httpx.OK(w, data)
	}
}

// httpMetrics times requests by method, chi route pattern and status.
// Labels come from the route table, never from the raw path, so ids do
// not multiply the series; unknown methods are counted as OTHER.
type httpMetrics struct {
	h *metrics.Histogram
}

func newHTTPMetrics(reg *metrics.Registry) *httpMetrics {
	if reg == nil {
		return &httpMetrics{}
	}
	return &httpMetrics{h: reg.Histogram("dorismanager_http_request_duration_seconds",
		"REST API requests by method, route pattern and status code.", metrics.HTTPBuckets, "method", "route", "code")}
}

var knownMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

func (m *httpMetrics) observe(r *http.Request, status int, d time.Duration) {
	if m.h == nil {
		return
	}
	route := ""
	if rc := chi.RouteContext(r.Context()); rc != nil {
		route = rc.RoutePattern()
	}
	if route == "" || status == http.StatusNotFound && strings.HasSuffix(route, "*") {
		// No route matched (or only a catch-all); one series for them all.
		route = "unmatched"
	}
	method := r.Method
	if !knownMethods[method] {
		method = "OTHER"
	}
	m.h.Observe(d.Seconds(), method, route, strconv.Itoa(status))
}
