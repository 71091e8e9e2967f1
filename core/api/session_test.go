package api

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/console"
)

// sessionCall is one request of the session tests: any headers, the
// session cookie when given.
func (a *accessEnv) sessionCall(method, path string, body any, cookie string, hdr map[string]string) (reply, *http.Response) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: cookie})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: string(raw)}
	_ = json.Unmarshal(raw, &r)
	return r, resp
}

type sessionData struct {
	User      string  `json:"user"`
	Role      string  `json:"role"`
	Session   bool    `json:"session"`
	CSRFToken *string `json:"csrfToken"`
}

// signIn opens a session with token and returns the cookie's value and
// the CSRF token.
func (a *accessEnv) signIn(token string) (string, string) {
	a.t.Helper()
	r, resp := a.sessionCall(http.MethodPost, "/api/session", nil, "", map[string]string{"Authorization": "Bearer " + token})
	if r.status != http.StatusOK {
		a.t.Fatalf("sign in: %d %s", r.status, r.raw)
	}
	var d sessionData
	if err := json.Unmarshal(r.Data, &d); err != nil || d.CSRFToken == nil || *d.CSRFToken == "" || !d.Session {
		a.t.Fatalf("sign in answered %s (%v)", r.Data, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == auth.SessionCookie {
			return c.Value, *d.CSRFToken
		}
	}
	a.t.Fatalf("sign in set no %s cookie: %v", auth.SessionCookie, resp.Header["Set-Cookie"])
	return "", ""
}

// Signing in takes a token as every call does: bad, expired and revoked
// ones are refused saying so; a good one gets a cookie that is not the
// token and that a script cannot read.
func TestSessionSignIn(t *testing.T) {
	a := newAccessEnv(t)
	for _, tc := range []struct {
		name, token string
		status      int
		msg         string
	}{
		{"no token", "", 401, "missing API token"},
		{"unknown token", "dm_0123456789abcdef0123456789abcdef", 401, "unknown API token"},
		{"expired token", a.expired, 401, "expired at"},
		{"revoked token", a.revoked, 401, "was revoked at"},
		{"viewer", a.viewer, 200, ""},
		{"operator", a.operator, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			r, resp := a.sessionCall(http.MethodPost, "/api/session", nil, "", hdr)
			if r.status != tc.status || r.Code == nil || (tc.status != 200) != (*r.Code != 0) {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tc.status)
			}
			if tc.status != 200 {
				if !strings.Contains(r.Msg, tc.msg) {
					t.Errorf("message %q does not say %q", r.Msg, tc.msg)
				}
				if len(resp.Cookies()) != 0 {
					t.Errorf("a refused sign-in set cookies: %v", resp.Header["Set-Cookie"])
				}
				return
			}
			set := strings.Join(resp.Header["Set-Cookie"], "\n")
			var c *http.Cookie
			for _, k := range resp.Cookies() {
				if k.Name == auth.SessionCookie {
					c = k
				}
			}
			switch {
			case c == nil:
				t.Fatalf("no session cookie: %q", set)
			case !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/":
				t.Errorf("cookie flags: %q, want HttpOnly, SameSite=Strict, Path=/", set)
			case c.Secure:
				t.Errorf("cookie over plain HTTP is Secure, which a browser would drop: %q", set)
			case len(c.Value) < 40 || strings.Contains(set, tc.token) || strings.Contains(r.raw, tc.token):
				t.Errorf("the cookie %q or the answer holds the token or is too short", set)
			}
		})
	}
}

// Over TLS the cookie is Secure; the cookie that signs out expires at once.
func TestSessionCookieFlags(t *testing.T) {
	tlsReq, _ := http.NewRequest(http.MethodPost, "https://manager:9601/api/session", nil)
	tlsReq.TLS = &tls.ConnectionState{}
	plain, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9601/api/session", nil)
	for _, tc := range []struct {
		name   string
		r      *http.Request
		maxAge int
		secure bool
	}{
		{"tls", tlsReq, 0, true},
		{"plain", plain, 0, false},
		{"delete", tlsReq, -1, true},
	} {
		c := auth.SessionCookieFor(tc.r, "id", tc.maxAge)
		if c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge != tc.maxAge {
			t.Errorf("%s: cookie %s", tc.name, c.String())
		}
	}
}

// A state-changing call through the cookie needs the session's CSRF token
// and no other site's Origin or Sec-Fetch-Site; reads do not; bearer
// calls are as before.
func TestSessionCSRF(t *testing.T) {
	a := newAccessEnv(t)
	cookie, csrf := a.signIn(a.operator)
	self := a.srv.URL
	for i, tc := range []struct {
		name    string
		method  string
		cookie  bool
		bearer  bool
		hdr     map[string]string
		status  int
		msg     string
		changed bool
	}{
		{name: "read without token", method: "GET", cookie: true, status: 200},
		{name: "change without X-CSRF-Token", method: "POST", cookie: true, status: 403, msg: "missing X-CSRF-Token header"},
		{name: "change with a wrong X-CSRF-Token", method: "POST", cookie: true, hdr: map[string]string{"X-CSRF-Token": "not-it"}, status: 403, msg: "is not this session's CSRF token"},
		{name: "change from another Origin", method: "POST", cookie: true, hdr: map[string]string{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}, status: 403, msg: "Origin https://evil.example is not this manager"},
		{name: "change from another site", method: "POST", cookie: true, hdr: map[string]string{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}, status: 403, msg: "Sec-Fetch-Site is \"cross-site\""},
		{name: "change with the token", method: "POST", cookie: true, hdr: map[string]string{"X-CSRF-Token": csrf, "Origin": self, "Sec-Fetch-Site": "same-origin"}, status: 200, changed: true},
		{name: "bearer without CSRF token", method: "POST", bearer: true, status: 200, changed: true},
		{name: "bearer from another Origin", method: "POST", bearer: true, hdr: map[string]string{"Origin": "https://evil.example"}, status: 200, changed: true},
		{name: "bearer wins over a cookie", method: "POST", bearer: true, cookie: true, status: 200, changed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "csrf-" + string(rune('a'+i))
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			if tc.bearer {
				hdr["Authorization"] = "Bearer " + a.operator
			}
			c := ""
			if tc.cookie {
				c = cookie
			}
			var body any
			if tc.method == "POST" {
				body = map[string]string{"name": name}
			}
			r, _ := a.sessionCall(tc.method, "/api/cluster", body, c, hdr)
			if r.status != tc.status || r.Code == nil || (tc.status == 200) != (*r.Code == 0) || tc.status != 200 && *r.Code != tc.status {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tc.status)
			}
			if tc.msg != "" && !strings.Contains(r.Msg, tc.msg) {
				t.Errorf("message %q does not say %q", r.Msg, tc.msg)
			}
			cs, err := a.st.ListClusters(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			made := false
			for _, c := range cs {
				made = made || c.Name == name
			}
			if tc.method == "POST" && made != tc.changed {
				t.Errorf("cluster %s made: %v, want %v", name, made, tc.changed)
			}
		})
	}
	// The refusals are in the audit log, with the session's user.
	found := false
	for _, e := range a.entries() {
		found = found || e.Status == 403 && e.UserName == "" && strings.Contains(e.Reason, "X-CSRF-Token")
	}
	if !found {
		t.Errorf("no audit entry of a refused CSRF check")
	}
}

// Signing out ends the session: the cookie no longer works. A revoked
// token ends its sessions' use at once.
func TestSessionEnds(t *testing.T) {
	a := newAccessEnv(t)
	cookie, csrf := a.signIn(a.operator)
	r, _ := a.sessionCall(http.MethodGet, "/api/session", nil, cookie, nil)
	var d sessionData
	if json.Unmarshal(r.Data, &d); r.status != 200 || d.CSRFToken == nil || *d.CSRFToken != csrf || d.User != "olga" || !d.Session {
		t.Fatalf("GET /api/session through the cookie: %d %s", r.status, r.raw)
	}
	r, _ = a.sessionCall(http.MethodDelete, "/api/session", nil, cookie, nil)
	if r.status != 403 {
		t.Fatalf("sign-out without the CSRF token: %d %s, want 403", r.status, r.raw)
	}
	r, resp := a.sessionCall(http.MethodDelete, "/api/session", nil, cookie, map[string]string{"X-CSRF-Token": csrf})
	if r.status != 200 || !strings.Contains(string(r.Data), `"ended":true`) {
		t.Fatalf("sign out: %d %s", r.status, r.raw)
	}
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].Name != auth.SessionCookie || cs[0].MaxAge >= 0 {
		t.Errorf("sign-out did not delete the cookie: %v", resp.Header["Set-Cookie"])
	}
	r, _ = a.sessionCall(http.MethodGet, "/api/cluster", nil, cookie, nil)
	if r.status != 401 || !strings.Contains(r.Msg, "session has ended") {
		t.Errorf("after sign-out: %d %s, want 401 saying the session ended", r.status, r.raw)
	}

	cookie, _ = a.signIn(a.viewer)
	toks, err := a.st.ListTokens(t.Context(), "vera")
	if err != nil || len(toks) != 1 {
		t.Fatalf("vera's tokens: %v %v", toks, err)
	}
	if ok, err := a.st.RevokeToken(t.Context(), toks[0].ID, time.Now()); !ok || err != nil {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	r, _ = a.sessionCall(http.MethodGet, "/api/cluster", nil, cookie, nil)
	if r.status != 401 || !strings.Contains(r.Msg, "was revoked") {
		t.Errorf("after the token was revoked: %d %s, want 401", r.status, r.raw)
	}
}

// The console's page and files are served to anyone, with a policy that
// allows only the manager's own scripts.
func TestConsoleAssets(t *testing.T) {
	a := newAccessEnv(t)
	r := a.do(http.MethodGet, "/", nil, "")
	if r.status != 200 || !strings.HasPrefix(r.ctype, "text/html") || !strings.Contains(r.raw, `src="/console/assets/app.js"`) {
		t.Fatalf("GET /: %d %s %.200s", r.status, r.ctype, r.raw)
	}
	names := console.Names()
	if len(names) < 5 {
		t.Fatalf("console assets: %v", names)
	}
	for _, n := range names {
		r, resp := a.sessionCall(http.MethodGet, "/console/assets/"+n, nil, "", nil)
		want := "text/javascript"
		if strings.HasSuffix(n, ".css") {
			want = "text/css"
		}
		if r.status != 200 || !strings.HasPrefix(r.ctype, want) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: %d %s %v", n, r.status, r.ctype, resp.Header)
		}
	}
	for _, n := range []string{"index.html", "nothing.js", "..%2fconsole.go"} {
		if r := a.do(http.MethodGet, "/console/assets/"+n, nil, ""); r.status != 404 {
			t.Errorf("%s: %d %.200s, want 404", n, r.status, r.raw)
		}
	}
}
