package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dorismanager/dorismanager/core/audit"
	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
)

// access is what a route asks of its caller.
type access struct {
	// role is the least role needed; "" for a public route (outside /api).
	role auth.Role
	// scoped: the role is needed on every cluster the request names
	// (clusterId in the path, query or body; the cluster of a processId
	// or taskId), and the request must name one.
	scoped bool
	// change: the call changes state, and is always audited.
	change bool
}

var (
	public      = access{}
	anyRead     = access{role: auth.Viewer}                               // what the handler shows depends on the caller
	clusterRead = access{role: auth.Viewer, scoped: true}                 // read a granted cluster
	clusterAct  = access{role: auth.Operator, scoped: true, change: true} // run or change a granted cluster
	operatorAct = access{role: auth.Operator, change: true}               // make something new (a cluster, granted to its maker)
	adminRead   = access{role: auth.Admin}
	adminAct    = access{role: auth.Admin, change: true}
	ownSession  = access{role: auth.Viewer, change: true} // sign in or out of the console: any token, audited
)

// rules is the access model of every route, by "METHOD pattern" (chi's
// route pattern). A route without a rule is refused, to everyone; the
// tests walk the router and fail for a route without one.
var rules = map[string]access{
	"GET /healthz": public,
	"GET /readyz":  public,
	"GET /metrics": public,

	// The web console's page and assets: no data in them (the page asks
	// /api for everything, through the session).
	"GET /":                      public,
	"GET /console/assets/{file}": public,
	// The console's session: opened with a token as any call is checked,
	// then its cookie stands for that token (state changes need its CSRF
	// token, see auth.checkCSRF).
	"POST /api/session":   ownSession,
	"GET /api/session":    anyRead,
	"DELETE /api/session": ownSession,

	// The OpenAPI document: the API's shape, no secret in it. Still any
	// token's read rather than public: every /api path wants a token (one
	// rule a proxy or a reader can rely on), and every token may read it.
	"GET /api/openapi.json": anyRead,

	// The install wizard.
	"POST /api/server/installAgent":                 clusterAct,
	"POST /api/agent/installService":                clusterAct,
	"POST /api/agent/deployConfig":                  clusterAct,
	"POST /api/agent/startService":                  clusterAct,
	"POST /api/agent/buildCluster":                  clusterAct,
	"POST /api/process/installComplete/{processId}": clusterAct,
	"POST /api/process/task/retry/{taskId}":         clusterAct,
	"POST /api/process/task/skip/{taskId}":          clusterAct,
	"POST /api/process/task/unskip/{taskId}":        clusterAct,
	"POST /api/process/back/{processId}":            clusterAct,
	// The caller's own unfinished process (POST reads, as the API document has them).
	"GET /api/process/currentProcess":  anyRead,
	"POST /api/process/currentProcess": anyRead,
	// Progress and inventory.
	"GET /api/process":                           clusterRead,
	"GET /api/process/{processId}/currentTasks":  clusterRead,
	"POST /api/process/{processId}/currentTasks": clusterRead,
	"GET /api/process/task/info/{taskId}":        clusterRead,
	"GET /api/process/task/log/{taskId}":         clusterRead,
	"GET /api/server/agentList":                  clusterRead,
	"GET /api/server/roleList":                   clusterRead,
	"GET /api/agent/hardware/{clusterId}":        clusterRead,
	// Day-2 operations (each starts a process of its cluster) and status.
	"GET /api/cluster/{clusterId}/status":   clusterRead,
	"POST /api/cluster/{clusterId}/stop":    clusterAct,
	"POST /api/cluster/{clusterId}/start":   clusterAct,
	"POST /api/cluster/{clusterId}/restart": clusterAct,
	"POST /api/cluster/{clusterId}/scaleIn": clusterAct,
	"POST /api/cluster/{clusterId}/upgrade": clusterAct,
	"POST /api/cluster/{clusterId}/config":  clusterAct,
	"POST /api/cluster/{clusterId}/destroy": clusterAct,
	// Host keys of a cluster: a change needs the old fingerprint too.
	"GET /api/cluster/{clusterId}/hostKeys":  clusterRead,
	"POST /api/cluster/{clusterId}/hostKeys": clusterAct,
	// The cluster's database admin account: revealed once (to an admin), or set.
	"POST /api/cluster/{clusterId}/adminPassword/reveal": adminAct,
	"PUT /api/cluster/{clusterId}/credentials":           clusterAct,
	// Clusters: the list shows the caller's granted ones (all to an admin).
	"GET /api/cluster":  anyRead,
	"POST /api/cluster": operatorAct,

	// Access control and the audit log.
	"GET /api/tokens":                             adminRead,
	"POST /api/tokens":                            adminAct,
	"DELETE /api/tokens/{tokenId}":                adminAct,
	"PUT /api/users/{user}/grants/{clusterId}":    adminAct,
	"DELETE /api/users/{user}/grants/{clusterId}": adminAct,
	"GET /api/audit":                              adminRead,
}

// adminTrees are mounted handlers whose every route is admin-only (GET
// reads, other methods change).
var adminTrees = []string{"/api/plugins"}

// ruleFor returns the rule of a route pattern.
func ruleFor(method, pattern string) (access, bool) {
	if a, ok := rules[method+" "+pattern]; ok {
		return a, true
	}
	for _, t := range adminTrees {
		if pattern == t || strings.HasPrefix(pattern, t+"/") {
			if method == http.MethodGet {
				return adminRead, true
			}
			return adminAct, true
		}
	}
	return access{}, false
}

// target is what a request names: the clusters it acts on (directly or
// through a process or task) and, for the audit log, the ids and hosts.
type target struct {
	clusters []int64
	cluster  int64
	process  int64
	task     int64
	hosts    string
}

func (t *target) addCluster(id int64) {
	for _, c := range t.clusters {
		if c == id {
			return
		}
	}
	t.clusters = append(t.clusters, id)
	if t.cluster == 0 {
		t.cluster = id
	}
}

// record is the audit entry of one request, filled in as the request goes.
type record struct {
	entry store.AuditEntry
	note  string // what a successful call made, set by its handler
}

type recordKey struct{}

// noteProcess records the process a call started.
func noteProcess(ctx context.Context, id int64) {
	if rec, ok := ctx.Value(recordKey{}).(*record); ok {
		rec.entry.CreatedProcessID = id
	}
}

// noteCluster records the cluster a call made or acted on.
func noteCluster(ctx context.Context, id int64) {
	if rec, ok := ctx.Value(recordKey{}).(*record); ok {
		rec.entry.ClusterID = id
	}
}

// note says what a successful call made (never a secret).
func note(ctx context.Context, format string, args ...any) {
	if rec, ok := ctx.Value(recordKey{}).(*record); ok {
		rec.note = fmt.Sprintf(format, args...)
	}
}

func (rec *record) who(p auth.Principal) {
	rec.entry.UserID, rec.entry.UserName, rec.entry.TokenID, rec.entry.Role = p.User.ID, p.User.Name, p.TokenID, string(p.Role)
}

// captureWriter keeps the status and the head of the body of an answer.
type captureWriter struct {
	http.ResponseWriter
	status int
	head   []byte
}

const captureBytes = 4 << 10

func (c *captureWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *captureWriter) Write(p []byte) (int, error) {
	if n := captureBytes - len(c.head); n > 0 {
		c.head = append(c.head, p[:min(n, len(p))]...)
	}
	return c.ResponseWriter.Write(p)
}

// guard authenticates every /api/ request, authorizes it by the rule of
// its route and the clusters it names, and writes the audit entry of
// every state-changing or refused call. root is the whole router: the
// route is looked up before the /api router matches it.
func (a *api) guard(root *chi.Mux, authn *auth.Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rctx := chi.NewRouteContext()
			path := r.URL.Path
			if r.URL.RawPath != "" {
				path = r.URL.RawPath
			}
			pattern := root.Find(rctx, r.Method, path)
			rule, known := ruleFor(r.Method, pattern)
			rec := &record{entry: store.AuditEntry{At: time.Now(), Remote: remoteHost(r), Method: r.Method, Route: pattern}}
			if pattern == "" {
				rec.entry.Route = "(no route) " + truncate(strings.ToValidUTF8(path, "?"), 200)
			}
			cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
			defer func() {
				if p := recover(); p != nil {
					cw.status = http.StatusInternalServerError
					rec.note = ""
					a.writeAudit(r, rec, rule, cw, "handler panicked")
					panic(p)
				}
				a.writeAudit(r, rec, rule, cw, "")
			}()
			p, err := authn.Check(cw, r)
			if err != nil {
				var ref *auth.Refusal
				if errors.As(err, &ref) {
					rec.who(ref.Who)
				}
				fail(cw, err)
				return
			}
			rec.who(p)
			if pattern == "" {
				next.ServeHTTP(cw, r) // chi answers 404 or 405
				return
			}
			if !known {
				a.log.Error("a route has no access rule and is refused to everyone", "method", r.Method, "route", pattern)
				fail(cw, httpx.Errorf(http.StatusForbidden, "%s %s has no access rule: it is refused until one is written", r.Method, pattern))
				return
			}
			t, terr := a.target(r, rctx, rule)
			rec.entry.ClusterID, rec.entry.ProcessID, rec.entry.TaskID, rec.entry.Hosts = t.cluster, t.process, t.task, t.hosts
			if err := authorize(p, rule, t, terr); err != nil {
				fail(cw, err)
				return
			}
			ctx := context.WithValue(auth.WithPrincipal(r.Context(), p), recordKey{}, rec)
			next.ServeHTTP(cw, r.WithContext(ctx))
		})
	}
}

// authorize checks p against rule for a request naming t (terr: what kept
// the target from being known).
func authorize(p auth.Principal, rule access, t target, terr error) error {
	if p.Role == auth.Admin {
		// Admins see every cluster; a bad id is answered by the handler.
		return nil
	}
	on := ""
	if len(t.clusters) > 0 {
		on = " on cluster " + strconv.FormatInt(t.clusters[0], 10)
	}
	if !p.Role.AtLeast(rule.role) {
		if !rule.scoped {
			on = ""
		}
		return httpx.Errorf(http.StatusForbidden, "this needs the %s role%s: token %d of %s has the %s role",
			rule.role, on, p.TokenID, p.User.Name, p.Role)
	}
	if !rule.scoped {
		return nil
	}
	if terr != nil {
		return terr
	}
	if len(t.clusters) == 0 {
		return httpx.BadRequest("the request names no cluster: give clusterId (or processId, taskId) as a positive id")
	}
	for _, c := range t.clusters {
		if !p.Clusters[c] {
			return httpx.Errorf(http.StatusForbidden, "this needs the %s role on cluster %d: %s is not granted cluster %d (an admin grants it: dorismanager grant %s %d)",
				rule.role, c, p.User.Name, c, p.User.Name, c)
		}
	}
	return nil
}

// target reads what r names: ids in the path (rctx, from the route lookup),
// clusterId in the query, clusterId and processId in a JSON body, and the
// hosts in the body; a process or task id is followed to its cluster. The
// body is read and put back for the handler. The error is what a caller
// whose access depends on the target is told.
func (a *api) target(r *http.Request, rctx *chi.Context, rule access) (target, error) {
	var t target
	var problem error
	setProblem := func(err error) {
		if problem == nil {
			problem = err
		}
	}
	for _, name := range []string{"clusterId", "processId", "taskId"} {
		s := rctx.URLParam(name)
		if s == "" {
			continue
		}
		n, ok := positiveID(s)
		if !ok {
			setProblem(httpx.BadRequest("%s %q in the path must be a positive number", name, truncate(s, 40)))
			continue
		}
		switch name {
		case "clusterId":
			t.addCluster(n)
		case "processId":
			t.process = n
		case "taskId":
			t.task = n
		}
	}
	if s := r.URL.Query().Get("clusterId"); s != "" {
		if n, ok := positiveID(s); ok {
			t.addCluster(n)
		} else {
			setProblem(httpx.BadRequest("query parameter clusterId %q must be a positive number", truncate(s, 40)))
		}
	}
	var bodyProcess int64
	if (rule.scoped || rule.change) && r.Body != nil && r.Body != http.NoBody {
		ids, hosts, err := peekBody(r)
		t.hosts = hosts
		if err != nil {
			setProblem(err)
		}
		if ids.cluster > 0 {
			t.addCluster(ids.cluster)
		}
		bodyProcess = ids.process
	}
	ctx := r.Context()
	if t.task != 0 {
		tk, err := a.st.GetTask(ctx, t.task)
		switch {
		case err == nil:
			t.process = tk.ProcessID
		case errors.Is(err, store.ErrNotFound):
			setProblem(httpx.NotFound("task %d does not exist", t.task))
		default:
			return t, fmt.Errorf("look up task %d: %w", t.task, err)
		}
	}
	for _, pid := range []int64{t.process, bodyProcess} {
		if pid == 0 {
			continue
		}
		if t.process == 0 {
			t.process = pid
		}
		p, err := a.st.GetProcess(ctx, pid)
		switch {
		case err == nil:
			t.addCluster(p.ClusterID)
		case errors.Is(err, store.ErrNotFound):
			setProblem(httpx.NotFound("process %d does not exist", pid))
		default:
			return t, fmt.Errorf("look up process %d: %w", pid, err)
		}
	}
	return t, problem
}

type bodyIDs struct{ cluster, process int64 }

// peekBody reads the ids and hosts a JSON body names and puts the body
// back (as it was, so the handler decodes and bounds it itself).
func peekBody(r *http.Request) (bodyIDs, string, error) {
	var ids bodyIDs
	buf, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil {
		return ids, "", fmt.Errorf("read request body: %w", err)
	}
	if len(bytes.TrimSpace(buf)) == 0 {
		return ids, "", nil
	}
	if len(buf) > httpx.MaxBody {
		return ids, "", httpx.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", httpx.MaxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return ids, "", httpx.BadRequest("request body is not a JSON object: %v", err)
	}
	m, _ := v.(map[string]any)
	var perr error
	for name, dst := range map[string]*int64{"clusterId": &ids.cluster, "processId": &ids.process} {
		raw, ok := m[name]
		if !ok || raw == nil {
			continue
		}
		n, ok := jsonID(raw)
		if !ok && perr == nil {
			perr = httpx.BadRequest("%s must be a positive id", name)
		}
		*dst = n
	}
	return ids, hostsOf(v), perr
}

// jsonID reads a positive id sent as a number or a numeric string.
func jsonID(v any) (int64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, false
	}
	return positiveID(s)
}

func positiveID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// maxHosts bounds the hosts an entry keeps (bytes).
const maxHosts = 1000

// hostsOf collects the host names a body names (fields host, hosts,
// feHosts, beHosts... at any depth), each once, comma-separated.
func hostsOf(v any) string {
	seen := map[string]bool{}
	var out []string
	var walk func(key string, v any)
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && len(s) <= 253 && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	walk = func(key string, v any) {
		isHost := strings.HasSuffix(strings.ToLower(key), "host") || strings.HasSuffix(strings.ToLower(key), "hosts")
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(k, x[k])
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		case string:
			if isHost {
				add(x)
			}
		}
	}
	walk("", v)
	s := strings.Join(out, ",")
	if len(s) > maxHosts {
		s = s[:maxHosts-3] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// remoteHost is the client's address without its port.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return truncate(r.RemoteAddr, 64)
}

// writeAudit stores the entry of a state-changing call (whatever its
// outcome) or of a refused one (401, 403). Refusals of a blocked address
// (429) are not recorded: they come at the rate of whoever floods.
func (a *api) writeAudit(r *http.Request, rec *record, rule access, cw *captureWriter, reason string) {
	refused := cw.status == http.StatusUnauthorized || cw.status == http.StatusForbidden
	if !rule.change && !refused {
		return
	}
	rec.entry.Status = cw.status
	switch {
	case reason != "":
		rec.entry.Reason = reason
	case cw.status >= 400:
		var env struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(cw.head, &env) == nil {
			rec.entry.Reason = audit.Reason(env.Msg)
		}
	default:
		rec.entry.Reason = audit.Reason(rec.note)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := a.st.AddAudit(ctx, &rec.entry); err != nil {
		a.log.Error("audit entry not recorded", "method", rec.entry.Method, "route", rec.entry.Route,
			"user", rec.entry.UserName, "status", rec.entry.Status, "error", err)
	}
}
