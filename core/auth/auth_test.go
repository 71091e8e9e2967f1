package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
)

func newStore(t *testing.T) *store.Store {
	s, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustToken(t *testing.T, st *store.Store, spec TokenSpec) (string, store.APIToken) {
	t.Helper()
	tok, rec, err := CreateToken(context.Background(), st, spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok, rec
}

func TestEnsureAdminOnceAndOnlyHashStored(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	dir := t.TempDir()
	path, created, err := EnsureAdmin(ctx, st, dir)
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin: %v %v", created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	if _, created, _ := EnsureAdmin(ctx, st, dir); created {
		t.Fatal("second start made a new token")
	}
	var toks []store.APIToken
	st.DB().Find(&toks)
	if len(toks) != 1 || toks[0].Hash != HashToken(tok) || strings.Contains(toks[0].Hash, tok) ||
		toks[0].Role != string(Admin) || toks[0].ExpiresAt != nil {
		t.Fatalf("stored tokens: %+v", toks)
	}
	// A fresh database with the old file registers the same token again.
	st2 := newStore(t)
	if _, _, err := EnsureAdmin(ctx, st2, dir); err != nil {
		t.Fatal(err)
	}
	if tk, u, err := st2.TokenByHash(ctx, HashToken(tok)); err != nil || u.Name != AdminUser || tk.Role != string(Admin) {
		t.Fatalf("re-registered admin: %+v %+v %v", tk, u, err)
	}
	if _, err := os.Stat(filepath.Join(dir, AdminTokenFile+".tmp")); err == nil {
		t.Fatal("temp file left behind")
	}
}

func TestParseRoleAndLifetime(t *testing.T) {
	for in, want := range map[string]Role{"admin": Admin, " Operator": Operator, "VIEWER": Viewer, "root": "", "": ""} {
		got, err := ParseRole(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	day := 24 * time.Hour
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * day, true}, {"1d", day, true}, {"12h", 12 * time.Hour, true}, {"never", 0, true},
		{"3650d", 3650 * day, true}, {"3651d", 0, false}, {"0d", 0, false}, {"-1d", 0, false}, {"30s", 0, false},
		{"soon", 0, false}, {"", 0, false}, {"d", 0, false}, {"1.5d", 0, false},
	}
	for _, c := range cases {
		got, err := ParseLifetime(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	if DefaultLifetime(Admin) != 0 || DefaultLifetime(Operator) != 90*day || DefaultLifetime(Viewer) != 90*day {
		t.Fatal("default lifetimes")
	}
}

func TestCan(t *testing.T) {
	grants := map[int64]bool{1: true}
	cases := []struct {
		p       Principal
		need    Role
		cluster int64
		want    bool
	}{
		{Principal{Role: Admin}, Admin, 0, true},
		{Principal{Role: Admin}, Operator, 9, true},
		{Principal{Role: Operator, Clusters: grants}, Operator, 1, true},
		{Principal{Role: Operator, Clusters: grants}, Viewer, 1, true},
		{Principal{Role: Operator, Clusters: grants}, Operator, 2, false},
		{Principal{Role: Operator, Clusters: grants}, Admin, 1, false},
		{Principal{Role: Operator, Clusters: grants}, Operator, 0, true},
		{Principal{Role: Viewer, Clusters: grants}, Viewer, 1, true},
		{Principal{Role: Viewer, Clusters: grants}, Operator, 1, false},
		{Principal{Role: Viewer, Clusters: grants}, Viewer, 2, false},
		{Principal{Role: "", Clusters: grants}, Viewer, 1, false},
	}
	for _, c := range cases {
		if got := c.p.Can(c.need, c.cluster); got != c.want {
			t.Errorf("%s on %v: Can(%s, %d) = %v", c.p.Role, c.p.Clusters, c.need, c.cluster, got)
		}
	}
}

func TestCreateToken(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	c, _ := st.CreateCluster(ctx, "one")
	tok, rec := mustToken(t, st, TokenSpec{User: "alice", Role: Operator, Clusters: []int64{c.ID}, Lifetime: time.Hour})
	if !strings.HasPrefix(tok, "dm_") || rec.Hash != HashToken(tok) || rec.ExpiresAt == nil || time.Until(*rec.ExpiresAt) > time.Hour {
		t.Fatalf("token %q %+v", tok, rec)
	}
	u, _ := st.UserByName(ctx, "alice")
	if g, _ := st.GrantsOf(ctx, u.ID); len(g) != 1 || g[0] != c.ID {
		t.Fatalf("grants: %v", g)
	}
	bad := []TokenSpec{
		{User: "bad name;", Role: Viewer},
		{User: "", Role: Viewer},
		{User: "carol", Role: "root"},
		{User: "carol", Role: Viewer, Lifetime: -time.Hour},
		{User: "carol", Role: Viewer, Clusters: []int64{c.ID, 42}},
	}
	for _, spec := range bad {
		if _, _, err := CreateToken(ctx, st, spec); err == nil {
			t.Errorf("%+v accepted", spec)
		}
	}
	// A refused token leaves no user, grant or token behind.
	if _, err := st.UserByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user of a refused token: %v", err)
	}
	if rows, _ := st.ListTokens(ctx, ""); len(rows) != 1 {
		t.Fatalf("tokens: %+v", rows)
	}
}

// checkHandler answers the caller's user and role, or the refusal.
func checkHandler(a *Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Check(w, r)
		if err != nil {
			httpx.Fail(w, err)
			return
		}
		w.Write([]byte(p.User.Name + " " + string(p.Role)))
	})
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	c, _ := st.CreateCluster(ctx, "one")
	tok, _ := mustToken(t, st, TokenSpec{User: "alice", Role: Operator, Clusters: []int64{c.ID}, Lifetime: time.Hour})
	admin, _ := mustToken(t, st, TokenSpec{User: "root", Role: Admin})
	expired, _ := mustToken(t, st, TokenSpec{User: "alice", Role: Viewer, Lifetime: time.Hour})
	revoked, rrec := mustToken(t, st, TokenSpec{User: "bob", Role: Viewer, Lifetime: time.Hour})
	if _, err := st.RevokeToken(ctx, rrec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	noRole, nrec := mustToken(t, st, TokenSpec{User: "bob", Role: Viewer})
	st.DB().Model(&store.APIToken{}).Where("id = ?", nrec.ID).Update("role", "")
	a := NewAuthenticator(st, nil, nil, nil)
	base := time.Now()
	a.now = func() time.Time { return base }
	h := checkHandler(a)
	cases := []struct {
		name, header string
		later        time.Duration
		status       int
		want         string // body of a success, or a piece of the refusal
	}{
		{"none", "", 0, 401, "missing API token"},
		{"wrong scheme", "Basic " + tok, 0, 401, "missing API token"},
		{"unknown", "Bearer dm_nope", 0, 401, "unknown API token"},
		{"empty", "Bearer ", 0, 401, "missing"},
		{"ok", "Bearer " + tok, 0, 200, "alice operator"},
		{"ok lower-case scheme", "bearer " + tok, 0, 200, "alice operator"},
		{"admin", "Bearer " + admin, 0, 200, "root admin"},
		{"expired", "Bearer " + expired, 2 * time.Hour, 401, "expired at"},
		{"admin tokens do not expire", "Bearer " + admin, 20 * 365 * 24 * time.Hour, 200, "root admin"},
		{"revoked", "Bearer " + revoked, 0, 401, "revoked at"},
		{"no valid role", "Bearer " + noRole, 0, 401, "no valid role"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a.now = func() time.Time { return base.Add(c.later) }
			r := httptest.NewRequest("GET", "/api/x", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body.String())
			}
			if c.status == 200 {
				if w.Body.String() != c.want {
					t.Fatalf("caller %q, want %q", w.Body.String(), c.want)
				}
				return
			}
			var env struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Code != 401 || !strings.Contains(env.Msg, c.want) {
				t.Fatalf("envelope %s (%v), want a 401 saying %q", w.Body.String(), err, c.want)
			}
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate")
			}
		})
	}
	// The caller's grants come with it; last use is recorded.
	r := httptest.NewRequest("GET", "/api/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	a.now = time.Now
	p, err := a.Check(httptest.NewRecorder(), r)
	if err != nil || !p.Clusters[c.ID] || len(p.Clusters) != 1 || p.TokenID == 0 {
		t.Fatalf("principal %+v %v", p, err)
	}
	if rec, _ := st.GetToken(ctx, p.TokenID); rec.LastUsedAt == nil {
		t.Fatal("last use not recorded")
	}
	// An expired token's refusal says whose it was.
	r = httptest.NewRequest("GET", "/api/x", nil)
	r.Header.Set("Authorization", "Bearer "+revoked)
	_, err = a.Check(httptest.NewRecorder(), r)
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Who.User.Name != "bob" || ref.Who.TokenID != rrec.ID {
		t.Fatalf("refusal %#v", err)
	}
}

// After MaxFailures refusals from one address within the window, that
// address gets 429 saying when to retry, even with a valid token, until
// the block ends; other addresses and successful requests are unaffected.
func TestCheckBlocksRepeatedFailures(t *testing.T) {
	st := newStore(t)
	tok, _ := mustToken(t, st, TokenSpec{User: "alice", Role: Viewer})
	expired, _ := mustToken(t, st, TokenSpec{User: "alice", Role: Viewer, Lifetime: time.Minute})
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := netguard.NewAuthLimiter(netguard.AuthConfig{MaxFailures: 4, Window: time.Minute, Block: 5 * time.Minute,
		Now: func() time.Time { return now }})
	a := NewAuthenticator(st, lim, nil, nil)
	a.now = func() time.Time { return time.Now().Add(time.Hour) } // the short-lived token has expired
	h := checkHandler(a)
	const attacker, other = "192.0.2.7:40000", "192.0.2.8:40000"
	steps := []struct {
		name   string
		wait   time.Duration
		from   string
		header string
		status int
	}{
		{"valid token", 0, attacker, "Bearer " + tok, 200},
		{"valid again (successes are not counted)", 0, attacker, "Bearer " + tok, 200},
		{"no token", 0, attacker, "", 401},
		{"unknown token", 0, attacker, "Bearer dm_guess1", 401},
		{"expired token", 0, attacker, "Bearer " + expired, 401},
		{"valid between failures", 0, attacker, "Bearer " + tok, 200},
		{"fourth failure", 0, attacker, "Bearer dm_guess2", 401},
		{"blocked, even a guess", 0, attacker, "Bearer dm_guess3", 429},
		{"blocked, even the valid token", time.Minute, attacker, "Bearer " + tok, 429},
		{"another address", 0, other, "Bearer " + tok, 200},
		{"another address, failing", 0, other, "Bearer dm_x", 401},
		{"block over", 4 * time.Minute, attacker, "Bearer " + tok, 200},
	}
	for _, s := range steps {
		now = now.Add(s.wait)
		r := httptest.NewRequest("GET", "/api/x", nil)
		r.RemoteAddr = s.from
		if s.header != "" {
			r.Header.Set("Authorization", s.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != s.status {
			t.Fatalf("%s: status %d, want %d (%s)", s.name, w.Code, s.status, w.Body.String())
		}
		if s.status == 429 {
			var env struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &env)
			if env.Code != 429 || !strings.Contains(env.Msg, "retry after") || w.Header().Get("Retry-After") == "" {
				t.Fatalf("%s: %s, Retry-After %q: want a 429 envelope saying when to retry", s.name, w.Body.String(), w.Header().Get("Retry-After"))
			}
		}
	}
}
