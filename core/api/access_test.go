package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/clusterstatus"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/ops"
	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"golang.org/x/crypto/ssh"
)

// accessEnv is the whole router (with the real plugins and day-2
// handlers) and a
// cast: an admin, an operator and a viewer granted cluster 1 (not 2), and
// tokens that are expired or revoked. Cluster 1 has an unfinished
// process of the operator, cluster 2 one of the admin, each with a task.
type accessEnv struct {
	*env
	router            http.Handler
	operator, viewer  string
	expired, revoked  string
	process, task     map[int64]int64 // by cluster
	victimToken       int64           // a token the admin routes may revoke
	grantee           string          // a user the admin routes may grant
	clusterA, cluster int64
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
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
	e := &env{t: t, st: st, stopper: &stopper{}}
	eng := process.New(process.Config{Store: st, Sealer: box, Stopper: e.stopper, Catalogue: dorisRoles{}})
	pm, err := pluginhost.New(pluginhost.Config{Dir: t.TempDir(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	b, _ := ssh.MarshalPrivateKey(priv, "")
	e.key = string(pem.EncodeToMemory(b))
	a := &accessEnv{env: e, process: map[int64]int64{}, task: map[int64]int64{}}
	cache := clusterstatus.New(clusterstatus.Config{Store: st})
	opsEng := ops.New(ops.Config{Store: st, Master: cache.Master, Catalogue: dorisRoles{}.Catalogue})
	a.router = New(Config{Store: st, Engine: eng, Plugins: pm.Handler(), Metrics: metrics.NewRegistry(),
		Operations: &Operations{Engine: opsEng, Status: cache.Status}})
	e.srv = newAPIServer(t, a.router)
	t.Cleanup(e.srv.Close)
	ctx := context.Background()
	for _, name := range []string{"granted", "other"} {
		if _, err := st.CreateCluster(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(user string, role auth.Role, life time.Duration, clusters ...int64) (string, store.APIToken) {
		tok, rec, err := auth.CreateToken(ctx, st, auth.TokenSpec{User: user, Role: role, Clusters: clusters, Lifetime: life})
		if err != nil {
			t.Fatal(err)
		}
		return tok, rec
	}
	e.token, _ = mk("admin", auth.Admin, 0)
	a.operator, _ = mk("olga", auth.Operator, time.Hour, 1)
	a.viewer, _ = mk("vera", auth.Viewer, time.Hour, 1)
	var rec store.APIToken
	a.expired, rec = mk("olga", auth.Operator, time.Hour)
	past := time.Now().Add(-time.Minute)
	st.DB().Model(&store.APIToken{}).Where("id = ?", rec.ID).Update("expires_at", past)
	a.revoked, rec = mk("olga", auth.Operator, time.Hour)
	st.RevokeToken(ctx, rec.ID, time.Now())
	_, rec = mk("gary", auth.Viewer, time.Hour)
	a.victimToken, a.grantee = rec.ID, "gary"
	olga, _ := st.UserByName(ctx, "olga")
	admin, _ := st.UserByName(ctx, "admin")
	for cluster, owner := range map[int64]int64{1: olga.ID, 2: admin.ID} {
		p := store.Process{ClusterID: cluster, UserID: owner, ProcessType: "INSTALL_AGENT", Status: "RUNNING"}
		if err := st.CreateProcess(ctx, &p); err != nil {
			t.Fatal(err)
		}
		tasks := []store.Task{{ProcessID: p.ID, Host: "10.0.0.1", ProcessType: "INSTALL_AGENT", TaskType: "INSTALL_AGENT", Status: store.StatusFailure}}
		if err := st.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		a.process[cluster], a.task[cluster] = p.ID, tasks[0].ID
	}
	return a
}

type route struct{ method, pattern string }

func (r route) String() string { return r.method + " " + r.pattern }

// routes walks the router: every route it serves.
func routes(t *testing.T, h http.Handler) []route {
	t.Helper()
	var out []route
	err := chi.Walk(h.(chi.Routes), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, route{method, strings.ReplaceAll(pattern, "/*/", "/")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// request is a call of r about cluster c: the path's ids are c's (its
// process and task), clusterId is in the query, and a body names c and
// its process.
func (a *accessEnv) request(r route, c int64) (string, any) {
	path := strings.NewReplacer(
		"{clusterId}", fmt.Sprint(c), "{processId}", fmt.Sprint(a.process[c]), "{taskId}", fmt.Sprint(a.task[c]),
		"{tokenId}", fmt.Sprint(a.victimToken), "{user}", a.grantee, "{role}", "FE",
	).Replace(strings.TrimSuffix(r.pattern, "*"))
	path += fmt.Sprintf("?clusterId=%d", c)
	if r.method == http.MethodGet {
		return path, nil
	}
	return path, map[string]any{"clusterId": c, "processId": a.process[c]}
}

// refusedByGuard reports whether the answer is the guard's refusal.
func refusedByGuard(r reply) bool {
	return r.status == http.StatusUnauthorized || r.status == http.StatusForbidden && strings.Contains(r.Msg, "this needs the")
}

// Every route of the router has a rule, public exactly outside /api, and
// every rule names a route (a new endpoint without a rule fails here).
func TestEveryRouteHasARule(t *testing.T) {
	a := newAccessEnv(t)
	walked := map[string]bool{}
	for _, r := range routes(t, a.router) {
		walked[r.String()] = true
		rule, ok := ruleFor(r.method, r.pattern)
		if !ok {
			t.Errorf("%s has no access rule: add it to rules in access.go", r)
			continue
		}
		if inAPI := strings.HasPrefix(r.pattern, "/api/"); inAPI == (rule.role == "") {
			t.Errorf("%s: public=%v, but only routes outside /api are public", r, rule.role == "")
		}
		if rule.role == auth.Admin && rule.change != (r.method != http.MethodGet) {
			t.Errorf("%s: admin routes change state unless they are GETs", r)
		}
		if !rule.change && r.method != http.MethodGet && !postReads[r.String()] {
			t.Errorf("%s is not a GET yet not audited as a change: mark it change, or list it in postReads if the API document makes it a POST read", r)
		}
	}
	for k := range rules {
		if !walked[k] {
			t.Errorf("rule %q names no route", k)
		}
	}
	if len(walked) < 30 {
		t.Fatalf("walked only %d routes", len(walked))
	}
}

// postReads are the API document's reads by POST: not audited.
var postReads = map[string]bool{
	"POST /api/process/currentProcess":           true,
	"POST /api/process/{processId}/currentTasks": true,
}

// Every route, for every caller, on a granted and a not granted cluster:
// who is refused, with which status and message, and who gets through.
func TestAccessOfEveryRoute(t *testing.T) {
	a := newAccessEnv(t)
	type caller struct {
		name, token string
		role        auth.Role // "" for callers whose token is refused
	}
	callers := []caller{
		{"no token", "", ""}, {"expired", a.expired, ""}, {"revoked", a.revoked, ""},
		{"viewer", a.viewer, auth.Viewer}, {"operator", a.operator, auth.Operator}, {"admin", a.token, auth.Admin},
	}
	for _, r := range routes(t, a.router) {
		rule, _ := ruleFor(r.method, r.pattern)
		for _, c := range callers {
			for _, cluster := range []int64{1, 2} {
				name := fmt.Sprintf("%s/%s/cluster %d", r, c.name, cluster)
				path, body := a.request(r, cluster)
				got := a.do(r.method, path, body, c.token)
				if rule.role == "" {
					if got.status == http.StatusUnauthorized || got.status == http.StatusForbidden {
						t.Errorf("%s: a public route refused: %d %s", name, got.status, got.raw)
					}
					continue
				}
				// What the caller needs: the rule's role, on cluster 2 a
				// grant it lacks.
				var want int
				var msg []string
				switch {
				case c.role == "":
					want, msg = http.StatusUnauthorized, []string{"API token"}
				case c.role == auth.Admin:
				case !c.role.AtLeast(rule.role):
					want, msg = http.StatusForbidden, []string{"this needs the " + string(rule.role) + " role"}
					if rule.scoped {
						msg = append(msg, fmt.Sprintf("on cluster %d", cluster))
					}
				case rule.scoped && cluster == 2:
					want, msg = http.StatusForbidden, []string{"this needs the " + string(rule.role) + " role on cluster 2", "not granted cluster 2"}
				}
				// The same, said without the rules table: a viewer changes
				// nothing, only admins reach the admin routes, and nobody
				// but an admin reaches a cluster it is not granted.
				if mustRefuse(r, c.role, cluster) && got.status != http.StatusForbidden {
					t.Errorf("%s: the %s must be refused: %d %s", name, c.role, got.status, truncate(got.raw, 200))
				}
				if want == 0 {
					if refusedByGuard(got) {
						t.Errorf("%s: refused: %d %s", name, got.status, got.raw)
					}
					continue
				}
				if got.status != want || got.Code == nil || *got.Code != want {
					t.Errorf("%s: got %d %s, want %d", name, got.status, truncate(got.raw, 200), want)
					continue
				}
				for _, m := range msg {
					if !strings.Contains(got.Msg, m) {
						t.Errorf("%s: message %q does not say %q", name, got.Msg, m)
					}
				}
			}
		}
	}
}

// mustRefuse is the access model in plain words, independent of the
// rules table the guard uses.
func mustRefuse(r route, role auth.Role, cluster int64) bool {
	adminOnly := false
	for _, p := range []string{"/api/plugins", "/api/tokens", "/api/users", "/api/audit"} {
		adminOnly = adminOnly || r.pattern == p || strings.HasPrefix(r.pattern, p+"/")
	}
	changes := r.method != http.MethodGet && !postReads[r.String()]
	if r.pattern == "/api/session" {
		return false // anyone with a token signs in and out of the console
	}
	namesCluster := strings.Contains(r.pattern, "{clusterId}") || strings.Contains(r.pattern, "{processId}") ||
		strings.Contains(r.pattern, "{taskId}") || strings.HasPrefix(r.pattern, "/api/server/") ||
		r.pattern == "/api/process" || changes && r.pattern != "/api/cluster"
	switch role {
	case auth.Viewer:
		return adminOnly || changes || namesCluster && cluster == 2
	case auth.Operator:
		return adminOnly || namesCluster && cluster == 2
	}
	return false
}

// entries returns the audit log, oldest first.
func (a *accessEnv) entries() []store.AuditEntry {
	a.t.Helper()
	es, err := a.st.ListAudit(context.Background(), store.AuditQuery{Limit: store.MaxAuditPage})
	if err != nil {
		a.t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

// Every state-changing route leaves an entry, for an admin who gets
// through and for a viewer who is refused; reads leave none unless
// refused; a request without a token leaves one too.
func TestAuditOfEveryChangingRoute(t *testing.T) {
	a := newAccessEnv(t)
	changing := 0
	for _, r := range routes(t, a.router) {
		rule, _ := ruleFor(r.method, r.pattern)
		// Said without the rules table: every call but a GET (or one of
		// the document's POST reads) changes state.
		changes := r.method != http.MethodGet && !postReads[r.String()]
		path, body := a.request(r, 1)
		for _, c := range []struct{ user, token string }{{"admin", a.token}, {"vera", a.viewer}, {"", ""}} {
			before := len(a.entries())
			got := a.do(r.method, path, body, c.token)
			es := a.entries()
			refused := got.status == http.StatusUnauthorized || got.status == http.StatusForbidden
			if !changes && !refused {
				if len(es) != before {
					t.Errorf("%s by %q (%d): a read left an audit entry: %+v", r, c.user, got.status, es[len(es)-1])
				}
				continue
			}
			if len(es) != before+1 {
				t.Errorf("%s by %q (%d): %d audit entries, want one", r, c.user, got.status, len(es)-before)
				continue
			}
			e := es[len(es)-1]
			if e.Method != r.method || e.Route != r.pattern || e.Status != got.status || e.UserName != c.user || e.Remote != "127.0.0.1" || e.At.IsZero() {
				t.Errorf("%s by %q: entry %+v, answer %d", r, c.user, e, got.status)
			}
			if c.user != "" && e.TokenID == 0 {
				t.Errorf("%s by %q: no token id", r, c.user)
			}
			if got.status >= 400 && e.Reason != got.Msg {
				t.Errorf("%s by %q: reason %q, answer %q", r, c.user, e.Reason, got.Msg)
			}
			if rule.scoped && c.user != "" && e.ClusterID != 1 {
				t.Errorf("%s by %q: cluster %d, want 1", r, c.user, e.ClusterID)
			}
		}
		if changes {
			changing++
		}
	}
	if changing < 15 {
		t.Fatalf("only %d state-changing routes", changing)
	}
}

// An entry names the process and task behind an id and the cluster they
// belong to, the hosts of the request and the process it started; no
// secret of the request is kept.
func TestAuditEntryTargetsAndSecrets(t *testing.T) {
	a := newAccessEnv(t)
	a.ok("POST", fmt.Sprintf("/api/process/task/retry/%d", a.task[2]), nil)
	e := a.entries()
	last := e[len(e)-1]
	if last.ClusterID != 2 || last.ProcessID != a.process[2] || last.TaskID != a.task[2] || last.Status != 200 {
		t.Fatalf("retry entry: %+v", last)
	}
	// The admin's process on cluster 2 is finished first, so installAgent may start one.
	a.ok("POST", fmt.Sprintf("/api/process/installComplete/%d", a.process[2]), nil)
	const pass = "hunter2-passphrase"
	r := a.do("POST", "/api/server/installAgent", map[string]any{"clusterId": 3, "hosts": []string{"10.0.0.7", "10.0.0.8"},
		"user": "root", "sshPort": 22, "sshKey": a.key, "passphrase": pass, "packageUrl": "http://u:pw@10.0.0.1/d.tgz",
		"installDir": "/opt/doris"}, a.token)
	if r.status != 200 {
		t.Fatalf("installAgent: %d %s", r.status, r.raw)
	}
	// A refusal that echoes a secret is redacted too.
	a.do("POST", "/api/tokens", `{"user":"x y","role":"viewer","token":"dm_0123456789abcdef"}`, a.token)
	e = a.entries()
	var agent *store.AuditEntry
	for i := range e {
		if e[i].Route == "/api/server/installAgent" {
			agent = &e[i]
		}
	}
	if agent == nil || agent.ClusterID != 3 || agent.Hosts != "10.0.0.7,10.0.0.8" {
		t.Fatalf("installAgent entry: %+v", agent)
	}
	var pid int64
	json.Unmarshal(r.Data, &pid)
	if agent.CreatedProcessID != pid || pid == 0 {
		t.Fatalf("created process %d, entry says %d", pid, agent.CreatedProcessID)
	}
	raw, _ := json.Marshal(e)
	for _, s := range []string{"PRIVATE KEY", pass, "pw@", "dm_0123456789abcdef", a.token, a.operator} {
		if strings.Contains(string(raw), s) {
			t.Fatalf("the audit log holds %q: %s", s, raw)
		}
	}
}

// Tokens over REST: made by an admin (the secret answered once), listed
// without secrets, working with their role, refused once revoked.
func TestTokensOverREST(t *testing.T) {
	a := newAccessEnv(t)
	r := a.ok("POST", "/api/tokens", map[string]any{"user": "otto", "role": "operator", "clusters": []any{1, "2"}, "expires": "1d"})
	var made TokenView
	json.Unmarshal(r.Data, &made)
	if !strings.HasPrefix(made.Token, "dm_") || made.User != "otto" || made.Role != "operator" || fmt.Sprint(made.Clusters) != "[1 2]" ||
		made.ExpireTime == nil || time.Until(made.ExpireTime.Time) > 24*time.Hour {
		t.Fatalf("made: %s", r.raw)
	}
	if r := a.do("GET", "/api/agent/hardware/2", nil, made.Token); r.status != 200 {
		t.Fatalf("the new token on a granted cluster: %d %s", r.status, r.raw)
	}
	r = a.ok("GET", "/api/tokens", nil)
	if strings.Contains(r.raw, made.Token) || strings.Contains(r.raw, "hash") || strings.Contains(r.raw, `"token"`) {
		t.Fatalf("list shows a secret: %s", r.raw)
	}
	var all []TokenView
	json.Unmarshal(r.Data, &all)
	if len(all) != 7 || all[len(all)-1].ID != made.ID || all[len(all)-1].LastUsedTime == nil {
		t.Fatalf("list: %s", r.raw)
	}
	if r := a.ok("GET", "/api/tokens?user=otto", nil); len(list(t, r.Data)) != 1 {
		t.Fatalf("otto's tokens: %s", r.raw)
	}
	// Admin tokens never expire unless asked to.
	r = a.ok("POST", "/api/tokens", map[string]any{"user": "ada", "role": "admin"})
	if strings.Contains(r.raw, `"expireTime":"`) {
		t.Fatalf("admin token with an expiry: %s", r.raw)
	}
	bad := []struct {
		body any
		want string
	}{
		{map[string]any{"role": "viewer"}, "user"},
		{map[string]any{"user": "a b", "role": "viewer"}, "user"},
		{map[string]any{"user": "x"}, "role"},
		{map[string]any{"user": "x", "role": "root"}, "role"},
		{map[string]any{"user": "x", "role": "viewer", "expires": "soon"}, "expiry"},
		{map[string]any{"user": "x", "role": "viewer", "clusters": []int{0}}, "clusters[0]"},
		{map[string]any{"user": "x", "role": "admin", "clusters": []int{1}}, "clusters"},
		{map[string]any{"user": "x", "role": "viewer", "clusters": []int{9}}, "cluster 9"},
	}
	for _, b := range bad {
		r := a.do("POST", "/api/tokens", b.body, a.token)
		if r.status/100 != 4 || !strings.Contains(r.Msg, b.want) {
			t.Errorf("%v: %d %s, want a refusal naming %s", b.body, r.status, r.raw, b.want)
		}
	}
	if _, err := a.st.UserByName(context.Background(), "x"); err == nil {
		t.Fatal("a refused token made its user")
	}
	a.ok("DELETE", fmt.Sprintf("/api/tokens/%d", made.ID), nil)
	if r := a.do("GET", "/api/agent/hardware/2", nil, made.Token); r.status != 401 || !strings.Contains(r.Msg, "revoked") {
		t.Fatalf("revoked token: %d %s", r.status, r.raw)
	}
	a.ok("DELETE", fmt.Sprintf("/api/tokens/%d", made.ID), nil) // again: still revoked, no error
	if r := a.do("DELETE", "/api/tokens/999", nil, a.token); r.status != 404 {
		t.Fatalf("revoke of a missing token: %d", r.status)
	}
}

// Grants over REST change what an operator reaches; a cluster an operator
// makes is granted to it, and the cluster list shows only granted ones.
func TestGrantsAndOwnClusters(t *testing.T) {
	a := newAccessEnv(t)
	if r := a.do("GET", "/api/agent/hardware/2", nil, a.operator); r.status != 403 {
		t.Fatalf("before the grant: %d", r.status)
	}
	a.ok("PUT", "/api/users/olga/grants/2", nil)
	a.ok("PUT", "/api/users/olga/grants/2", nil)
	if r := a.do("GET", "/api/agent/hardware/2", nil, a.operator); r.status != 200 {
		t.Fatalf("after the grant: %d %s", r.status, r.raw)
	}
	a.ok("DELETE", "/api/users/olga/grants/2", nil)
	if r := a.do("GET", "/api/agent/hardware/2", nil, a.operator); r.status != 403 {
		t.Fatalf("after the revoke: %d", r.status)
	}
	for path, want := range map[string]int{"/api/users/olga/grants/2": 404, "/api/users/nobody/grants/1": 404, "/api/users/olga/grants/x": 400} {
		if r := a.do("DELETE", path, nil, a.token); r.status != want {
			t.Errorf("DELETE %s: %d %s, want %d", path, r.status, r.raw, want)
		}
	}
	if r := a.do("PUT", "/api/users/olga/grants/9", nil, a.token); r.status != 404 || !strings.Contains(r.Msg, "cluster 9") {
		t.Fatalf("grant of a missing cluster: %d %s", r.status, r.raw)
	}

	r := a.do("POST", "/api/cluster", map[string]string{"name": "olgas"}, a.operator)
	if r.status != 200 {
		t.Fatalf("operator makes a cluster: %d %s", r.status, r.raw)
	}
	var c ClusterView
	json.Unmarshal(r.Data, &c)
	if r := a.do("GET", fmt.Sprintf("/api/server/roleList?clusterId=%d", c.ID), nil, a.operator); r.status != 200 {
		t.Fatalf("the operator's own cluster: %d %s", r.status, r.raw)
	}
	if r := a.do("POST", "/api/cluster", map[string]string{"name": "veras"}, a.viewer); r.status != 403 || !strings.Contains(r.Msg, "operator role") {
		t.Fatalf("a viewer makes a cluster: %d %s", r.status, r.raw)
	}
	names := func(token string) string {
		r := a.do("GET", "/api/cluster", nil, token)
		var cs []ClusterView
		json.Unmarshal(r.Data, &cs)
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return strings.Join(out, ",")
	}
	for token, want := range map[string]string{a.token: "granted,other,olgas", a.operator: "granted,olgas", a.viewer: "granted"} {
		if got := names(token); got != want {
			t.Errorf("clusters: got %q, want %q", got, want)
		}
	}
	es := a.entries()
	if last := es[len(es)-1]; last.Route != "/api/cluster" || last.Status != 403 || last.UserName != "vera" {
		t.Fatalf("last entry: %+v", last)
	}
	var made store.AuditEntry
	for _, e := range es {
		if e.Route == "/api/cluster" && e.Status == 200 {
			made = e
		}
	}
	if made.ClusterID != c.ID || !strings.Contains(made.Reason, "olgas") {
		t.Fatalf("cluster creation entry: %+v", made)
	}
}

// The audit endpoint: admin-only, filtered, paged.
func TestAuditEndpoint(t *testing.T) {
	a := newAccessEnv(t)
	for i := 0; i < 5; i++ {
		a.do("POST", "/api/process/task/retry/"+fmt.Sprint(a.task[2]), nil, a.operator) // refused: cluster 2
	}
	a.do("GET", "/api/cluster", nil, "dm_guess")
	get := func(q string) (entries []AuditView, next *int64) {
		t.Helper()
		r := a.ok("GET", "/api/audit"+q, nil)
		var out struct {
			Entries []AuditView `json:"entries"`
			Next    *int64      `json:"next"`
		}
		if err := json.Unmarshal(r.Data, &out); err != nil {
			t.Fatalf("%s: %s", q, r.raw)
		}
		return out.Entries, out.Next
	}
	if es, next := get(""); len(es) != 6 || next != nil || es[0].Status != 401 || es[0].Route != "/api/cluster" {
		t.Fatalf("all: %+v %v", es, next)
	}
	es, next := get("?user=olga&outcome=refused&cluster=2&action=retry&since=1h&limit=3")
	if len(es) != 3 || next == nil || es[0].TaskID != a.task[2] || es[0].Role != "operator" || !strings.Contains(es[0].Reason, "cluster 2") {
		t.Fatalf("first page: %+v %v", es, next)
	}
	es, next = get(fmt.Sprintf("?user=olga&limit=3&before=%d", *next))
	if len(es) != 2 || next != nil {
		t.Fatalf("second page: %+v %v", es, next)
	}
	if es, _ := get("?outcome=ok"); len(es) != 0 {
		t.Fatalf("no successes: %+v", es)
	}
	if r := a.do("GET", "/api/audit?since=yesterday", nil, a.token); r.status != 400 || !strings.Contains(r.Msg, "since") {
		t.Fatalf("bad filter: %d %s", r.status, r.raw)
	}
	if r := a.do("GET", "/api/audit", nil, a.operator); r.status != 403 || !strings.Contains(r.Msg, "admin role") {
		t.Fatalf("operator reads the audit log: %d %s", r.status, r.raw)
	}
}

// A route without a rule is refused to everyone, admins included.
func TestRouteWithoutRuleIsRefused(t *testing.T) {
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok, _, err := auth.CreateToken(context.Background(), st, auth.TokenSpec{User: "admin", Role: auth.Admin})
	if err != nil {
		t.Fatal(err)
	}
	a := &api{st: st, log: nullLogger()}
	root := chi.NewRouter()
	root.Route("/api", func(r chi.Router) {
		r.Use(a.guard(root, auth.NewAuthenticator(st, nil, nil, nil)))
		r.Get("/unruled", func(w http.ResponseWriter, r *http.Request) { httpx.OK(w, "reached") })
		r.Get("/cluster", func(w http.ResponseWriter, r *http.Request) { httpx.OK(w, "reached") })
	})
	for path, want := range map[string]int{"/api/unruled": 403, "/api/cluster": 200} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		root.ServeHTTP(w, req)
		if w.Code != want || want == 403 && !strings.Contains(w.Body.String(), "no access rule") {
			t.Errorf("%s: %d %s, want %d", path, w.Code, w.Body.String(), want)
		}
	}
}

func nullLogger() hclog.Logger { return hclog.NewNullLogger() }
