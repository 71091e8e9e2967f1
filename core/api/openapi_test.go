package api

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/api/openapi"
	"github.com/dorismanager/dorismanager/core/api/openapi/openapitest"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// Every test of this package serves the API through newAPIServer, which
// checks each answer (and each accepted request) against the OpenAPI
// document: the document cannot drift from what the handlers do.

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if code == 0 && wholeRun() {
		code = checkCoverage()
	}
	os.Exit(code)
}

var spec = sync.OnceValues(func() (*openapitest.Validator, error) { return openapitest.New(openapi.Document()) })

func mustSpec(t testing.TB) *openapitest.Validator {
	t.Helper()
	v, err := spec()
	if err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	return v
}

// checkedElsewhere are operations whose successful answers another
// package's tests check against the document: pinning needs an accepted
// plugin binary, which core/pluginhost's tests build and sign.
var checkedElsewhere = map[string]string{
	"POST /api/plugins/pin":                      "core/pluginhost TestHTTPHandler",
	"DELETE /api/plugins/pin/{clusterId}/{role}": "core/pluginhost TestHTTPHandler",
}

// checked counts the answers validated per operation and status, over
// the whole run (tests run in parallel with each other's servers).
var checked = struct {
	sync.Mutex
	n map[string]map[int]int
}{n: map[string]map[int]int{}}

// newAPIServer serves h for a test; every exchange is checked against the
// OpenAPI document and a mismatch fails the test.
func newAPIServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	v := mustSpec(t)
	srv := httptest.NewServer(openapitest.Middleware(func(x openapitest.Exchange) {
		if err := checkExchange(v, x); err != nil {
			t.Errorf("%s %s answered %d, which the OpenAPI document (core/api/openapi/openapi.json) does not allow: %v\nrequest body: %s\nanswer: %s",
				x.Method, x.URL.RequestURI(), x.Status, err, truncate(string(x.RequestBody), 300), truncate(string(x.Body), 600))
		}
	})(h))
	t.Cleanup(srv.Close)
	return srv
}

// checkExchange validates one exchange and counts it.
func checkExchange(v *openapitest.Validator, x openapitest.Exchange) error {
	op, err := v.Check(x)
	name := "(no operation)"
	if op != nil {
		name = op.String()
	}
	if op == nil {
		err = checkUnrouted(v, x)
	}
	if err != nil {
		return err
	}
	checked.Lock()
	if checked.n[name] == nil {
		checked.n[name] = map[int]int{}
	}
	checked.n[name][x.Status]++
	checked.Unlock()
	return nil
}

// checkUnrouted judges an answer to a request no operation serves: chi's
// 404 or 405, or under /api the guard's refusal, which comes first.
func checkUnrouted(v *openapitest.Validator, x openapitest.Exchange) error {
	allowed := map[int]bool{http.StatusNotFound: true, http.StatusMethodNotAllowed: true}
	if x.URL.Path == "/api" || strings.HasPrefix(x.URL.Path, "/api/") {
		allowed[http.StatusUnauthorized], allowed[http.StatusTooManyRequests] = true, true
	}
	if !allowed[x.Status] {
		return fmt.Errorf("no operation serves it, yet it answered %d", x.Status)
	}
	if err := v.CheckSchema("Error", x.Body); err != nil {
		return err
	}
	var env struct{ Code int }
	if err := json.Unmarshal(x.Body, &env); err != nil || env.Code != x.Status {
		return fmt.Errorf("error code %d is not the status %d", env.Code, x.Status)
	}
	return nil
}

// wholeRun: no -run or -skip narrowed the tests (nor -list replaced
// them), so every operation should have been exercised.
func wholeRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// checkCoverage fails a whole run in which an operation of the document
// got no successful answer from any test: its success schema would be
// checked by nothing.
func checkCoverage() int {
	v, err := spec()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var missing []string
	for _, op := range v.Operations() {
		ok := false
		for status := range checked.n[op.String()] {
			ok = ok || status/100 == 2
		}
		if !ok && checkedElsewhere[op.String()] == "" {
			missing = append(missing, op.String())
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: no test got a validated 2xx answer from these operations of the OpenAPI document; add a test that calls each with success:\n  %s\n",
			strings.Join(missing, "\n  "))
		return 1
	}
	return 0
}

// The document has an operation for every route of the router, and the
// router a route for every operation.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	a := newAccessEnv(t)
	v := mustSpec(t)
	documented := map[string]bool{}
	for _, op := range v.Operations() {
		documented[op.String()] = true
	}
	walked := map[string]bool{}
	for _, r := range routes(t, a.router) {
		name := r.method + " " + routePath(r.pattern)
		walked[name] = true
		if !documented[name] {
			t.Errorf("route %s has no operation in core/api/openapi/openapi.json: document it", name)
		}
	}
	for name := range documented {
		if !walked[name] {
			t.Errorf("operation %s of the OpenAPI document names no route: remove it or serve it", name)
		}
	}
}

// routePath is a route pattern as the document writes it: the root of a
// mounted router (/api/plugins/) without its trailing slash.
func routePath(pattern string) string {
	if pattern != "/" {
		return strings.TrimSuffix(pattern, "/")
	}
	return pattern
}

// Each operation's x-access says what its rule in access.go says, and only
// public routes go without the bearer token.
func TestOpenAPIAccessIsTheRules(t *testing.T) {
	v := mustSpec(t)
	var doc struct {
		Security []map[string][]string `json:"security"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Security) != 2 || doc.Security[0]["bearer"] == nil || doc.Security[1]["session"] == nil {
		t.Fatalf("the document's security is %v, want the bearer scheme or the console's session", doc.Security)
	}
	for _, op := range v.Operations() {
		var x struct {
			Role    *string `json:"role"`
			Scoped  bool    `json:"scoped"`
			Audited bool    `json:"audited"`
		}
		b, _ := json.Marshal(op.Raw["x-access"])
		if err := json.Unmarshal(b, &x); err != nil || op.Raw["x-access"] == nil {
			t.Errorf("%s: x-access %s: %v", op, b, err)
			continue
		}
		pattern := op.Path
		if pattern == "/api/plugins" {
			pattern += "/" // the root of the mounted router
		}
		rule, ok := ruleFor(op.Method, pattern)
		if !ok {
			t.Errorf("%s has no rule in access.go", op)
			continue
		}
		role := ""
		if x.Role != nil {
			role = *x.Role
		}
		if role != string(rule.role) || x.Scoped != rule.scoped || x.Audited != rule.change {
			t.Errorf("%s: x-access %s, access.go says role %q scoped %v audited %v", op, b, rule.role, rule.scoped, rule.change)
		}
		sec, hasSec := op.Raw["security"].([]any)
		if public := rule.role == ""; public != (hasSec && len(sec) == 0) {
			t.Errorf("%s: public %v, but its security is %v", op, public, op.Raw["security"])
		}
	}
}

// The document is served as kept in the repository, to any token.
func TestOpenAPIServed(t *testing.T) {
	a := newAccessEnv(t)
	r := a.do("GET", "/api/openapi.json", nil, a.viewer)
	if r.status != 200 || r.raw != string(openapi.Document()) || !strings.HasPrefix(r.ctype, "application/json") {
		t.Fatalf("GET /api/openapi.json: %d %s %.100s", r.status, r.ctype, r.raw)
	}
	if r := a.do("GET", "/api/openapi.json", nil, ""); r.status != 401 {
		t.Fatalf("without a token: %d", r.status)
	}
}

// Every test server of this package checks its exchanges: a test that
// serves the API another way would escape the document.
func TestEveryTestServerChecksTheDocument(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) < 5 {
		t.Fatalf("test files: %v %v", files, err)
	}
	direct := regexp.MustCompile(`httptest\.NewServer\(|httptest\.NewUnstartedServer\(`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := len(direct.FindAll(b, -1))
		if f == "openapi_test.go" {
			n-- // newAPIServer's own
		}
		if n != 0 {
			t.Errorf("%s starts %d test server(s) without newAPIServer: their answers escape the OpenAPI document", f, n)
		}
	}
}

// The checks of an exchange fail on what drifts: an undeclared status, a
// field the schema does not have, a request the document refuses that
// the server accepted, and an unrouted answer that is not an error.
func TestExchangeChecksFail(t *testing.T) {
	v := mustSpec(t)
	ok := `{"msg":"success","code":0,"data":null}`
	u := func(s string) openapitest.Exchange {
		x := openapitest.Exchange{Method: "POST", Status: 200, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: []byte(ok)}
		x.URL, _ = url.Parse(s)
		return x
	}
	good := u("/api/process/task/retry/3")
	if err := checkExchange(v, good); err != nil {
		t.Fatalf("a good exchange: %v", err)
	}
	cases := map[string]func(x *openapitest.Exchange){
		"undeclared status": func(x *openapitest.Exchange) { x.Status = 418 },
		"extra field":       func(x *openapitest.Exchange) { x.Body = []byte(`{"msg":"success","code":0,"data":null,"more":1}`) },
		"data where none":   func(x *openapitest.Exchange) { x.Body = []byte(`{"msg":"success","code":0,"data":1}`) },
		"content type":      func(x *openapitest.Exchange) { x.Header.Set("Content-Type", "text/plain") },
		"error code":        func(x *openapitest.Exchange) { x.Status, x.Body = 409, []byte(`{"msg":"busy","code":400,"data":null}`) },
		"bad path id":       func(x *openapitest.Exchange) { x.URL.Path = "/api/process/task/retry/x" },
		"refused body accepted": func(x *openapitest.Exchange) {
			x.URL.Path, x.RequestBody = "/api/cluster", []byte(`{"name":"a b"}`)
			x.Body = []byte(`{"msg":"success","code":0,"data":{"id":1,"name":"a b","createTime":null,"updateTime":null}}`)
		},
		"unrouted success": func(x *openapitest.Exchange) { x.URL.Path = "/api/nothing" },
	}
	for name, change := range cases {
		x := u("/api/process/task/retry/3")
		change(&x)
		if err := checkExchange(v, x); err == nil {
			t.Errorf("%s: passed", name)
		}
	}
	// An operation's schemas accept its documented success.
	x := u("/api/cluster")
	x.RequestBody = []byte(`{"name":"c1"}`)
	x.Body = []byte(`{"msg":"success","code":0,"data":{"id":1,"name":"c1","createTime":"2021-08-10T11:07:34.000+00:00","updateTime":null}}`)
	if err := checkExchange(v, x); err != nil {
		t.Fatalf("createCluster: %v", err)
	}
}

// The role a documented operation needs is the rules' (for the docs).
func roleWords(op *openapitest.Operation) string {
	pattern := op.Path
	if pattern == "/api/plugins" {
		pattern += "/"
	}
	rule, ok := ruleFor(op.Method, pattern)
	if !ok {
		return ""
	}
	return accessWords(rule)
}

// accessWords says a rule as docs/API.md writes it.
func accessWords(rule access) string {
	switch {
	case rule.role == "":
		return "public (no token)"
	case rule.scoped:
		return string(rule.role) + " of the cluster"
	default:
		return string(rule.role)
	}
}
