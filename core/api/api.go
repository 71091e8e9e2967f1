// Package api is the manager's REST API: every endpoint of the API document
// plus clusters, tokens, grants and the audit log, with one envelope for
// every answer. Every /api/ route has an access rule (access.go) that the
// guard checks before its handler runs.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/core/api/openapi"
	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/console"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/go-chi/chi/v5"
	"github.com/hashicorp/go-hclog"
)

// Config wires the router.
type Config struct {
	Store  *store.Store
	Engine *process.Engine
	Logger hclog.Logger
	// Plugins, if set, is mounted at /api/plugins, admin-only.
	Plugins http.Handler
	// AuthLimiter, if set, blocks a client address for a while after
	// repeated failed authentication on /api.
	AuthLimiter *netguard.AuthLimiter
	// Metrics, if set, receives dorismanager_http_request_duration_seconds
	// and is served at /metrics.
	Metrics *metrics.Registry
	// Ready are the conditions /readyz checks.
	Ready []Check
	// Operations, if set, serves the day-2 endpoints under /api/cluster/{clusterId}/.
	Operations *Operations
	// Admin, if set, serves the reveal and credentials calls of clusters'
	// admin accounts.
	Admin AdminAccounts
	// Sessions are the web console's sessions (nil: those in Store).
	Sessions *auth.Sessions
}

// New returns the HTTP handler of the whole API.
func New(cfg Config) http.Handler {
	a := &api{st: cfg.Store, e: cfg.Engine, log: cfg.Logger}
	if a.log == nil {
		a.log = hclog.NewNullLogger()
	}
	a.metrics = newHTTPMetrics(cfg.Metrics)
	r := chi.NewRouter()
	r.Use(a.recoverer, a.accessLog)
	// Probes and metrics carry no secrets (states, counts and latencies
	// only), so they need no token: probers and Prometheus have none.
	r.Get("/healthz", healthz)
	r.Get("/readyz", readyz(cfg.Ready))
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics.Handler(a.log.Named("metrics")))
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpx.Fail(w, httpx.NotFound("no endpoint %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpx.Fail(w, httpx.Errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
	})
	// The web console: its pages and assets are public (they hold no
	// data); everything they show comes from /api through the session.
	r.Get("/", console.Shell)
	r.Get("/console/assets/{file}", console.Asset)
	root := r
	sessions := cfg.Sessions
	if sessions == nil {
		sessions = auth.NewSessions(cfg.Store)
	}
	authn := auth.NewAuthenticator(cfg.Store, cfg.AuthLimiter, sessions, a.log.Named("auth"))
	r.Route("/api", func(r chi.Router) {
		r.Use(a.guard(root, authn))
		r.Get("/openapi.json", serveOpenAPI)
		r.Post("/session", openSession(sessions))
		r.Get("/session", sessionInfo)
		r.Delete("/session", closeSession(sessions))
		r.Post("/server/installAgent", a.installAgent)
		r.Get("/server/agentList", a.agentList)
		r.Get("/server/roleList", a.roleList)
		r.Post("/agent/installService", step(a.installService))
		r.Post("/agent/deployConfig", step(a.deployConfig))
		r.Post("/agent/startService", step(a.startService))
		r.Post("/agent/buildCluster", step(a.buildCluster))
		r.Get("/agent/hardware/{clusterId}", a.hardware)
		r.Post("/process/installComplete/{processId}", a.installComplete)
		r.Get("/process", a.listProcesses)
		r.Get("/process/currentProcess", a.currentProcess)
		r.Post("/process/currentProcess", a.currentProcess)
		r.Get("/process/{processId}/currentTasks", a.currentTasks)
		r.Post("/process/{processId}/currentTasks", a.currentTasks)
		r.Get("/process/task/info/{taskId}", a.taskInfo)
		r.Get("/process/task/log/{taskId}", a.taskLog)
		r.Post("/process/task/retry/{taskId}", a.onID("taskId", a.e.Retry))
		r.Post("/process/task/skip/{taskId}", a.onID("taskId", a.e.Skip))
		r.Post("/process/task/unskip/{taskId}", a.onID("taskId", a.e.Unskip))
		r.Post("/process/back/{processId}", a.onID("processId", a.e.Back))
		r.Post("/cluster", a.createCluster)
		r.Get("/cluster", a.listClusters)
		r.Get("/tokens", a.listTokens)
		r.Post("/tokens", a.createToken)
		r.Delete("/tokens/{tokenId}", a.revokeToken)
		r.Put("/users/{user}/grants/{clusterId}", a.grant)
		r.Delete("/users/{user}/grants/{clusterId}", a.revokeGrant)
		r.Get("/audit", a.listAudit)
		r.Get("/cluster/{clusterId}/hostKeys", a.listHostKeys)
		r.Post("/cluster/{clusterId}/hostKeys", a.changeHostKey)
		r.Post("/cluster/{clusterId}/adminPassword/reveal", revealAdminPassword(cfg.Admin))
		r.Put("/cluster/{clusterId}/credentials", setCredentials(cfg.Admin))
		if cfg.Operations != nil {
			cfg.Operations.routes(r)
		}
		if cfg.Plugins != nil {
			r.Mount("/plugins", cfg.Plugins)
		}
	})
	return r
}

// serveOpenAPI answers the API's OpenAPI document as it is kept in the
// repository (core/api/openapi), outside the envelope, as tools expect it.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapi.Document())
}

type api struct {
	st      *store.Store
	e       *process.Engine
	log     hclog.Logger
	metrics *httpMetrics
}

func (a *api) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				httpx.Fail(w, fmt.Errorf("handler panicked: %v", p))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (a *api) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		a.metrics.observe(r, sw.status, d)
		a.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", d)
	})
}

// fail answers err with the fitting status.
func fail(w http.ResponseWriter, err error) {
	var pe *process.Error
	switch {
	case errors.As(err, &pe):
		status := map[process.Kind]int{process.KindInvalid: http.StatusBadRequest, process.KindNotFound: http.StatusNotFound,
			process.KindConflict: http.StatusConflict, process.KindForbidden: http.StatusForbidden}[pe.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		httpx.Fail(w, httpx.Errorf(status, "%s", pe.Msg))
	case errors.Is(err, store.ErrNotFound):
		httpx.Fail(w, httpx.NotFound("%v", err))
	default:
		httpx.Fail(w, err)
	}
}

// ID is an id sent as a JSON number or a numeric string ("processId":"1").
type ID int64

var int64Type = reflect.TypeOf(int64(0))

// UnmarshalJSON accepts 1, "1" and null.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*id = 0
		return nil
	}
	s := string(b)
	if len(b) > 1 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Ids may come as numbers or numeric strings; say which value was wrong.
		return &json.UnmarshalTypeError{Value: truncate(string(b), 40) + " (ids are numbers or numeric strings)", Type: int64Type}
	}
	*id = ID(n)
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// pathID reads a positive id from the URL path.
func pathID(r *http.Request, name string) (int64, error) {
	s := chi.URLParam(r, name)
	n, ok := positiveID(s)
	if !ok {
		return 0, httpx.BadRequest("%s %q in the path must be a positive number", name, truncate(s, 40))
	}
	return n, nil
}

// queryID reads a required positive id from the query string.
func queryID(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, httpx.BadRequest("query parameter %s is required", name)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, httpx.BadRequest("query parameter %s %q must be a positive number", name, truncate(s, 40))
	}
	return n, nil
}

// user is the authenticated caller's user id (the guard guarantees one).
func user(r *http.Request) int64 {
	p, _ := auth.PrincipalFrom(r.Context())
	return p.User.ID
}

// caller is the authenticated caller.
func caller(r *http.Request) auth.Principal {
	p, _ := auth.PrincipalFrom(r.Context())
	return p
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// nullable turns "" into JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func requireID(field string, id *ID) (int64, error) {
	if id == nil {
		return 0, httpx.BadRequest("%s is required", field)
	}
	if *id <= 0 {
		return 0, httpx.BadRequest("%s must be a positive number, not %d", field, *id)
	}
	return int64(*id), nil
}
