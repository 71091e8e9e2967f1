package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if len(toks) != 1 || toks[0].Hash != HashToken(tok) || strings.Contains(toks[0].Hash, tok) {
		t.Fatalf("stored tokens: %+v", toks)
	}
	// A fresh database with the old file registers the same token again.
	st2 := newStore(t)
	if _, _, err := EnsureAdmin(ctx, st2, dir); err != nil {
		t.Fatal(err)
	}
	if u, err := st2.UserByTokenHash(ctx, HashToken(tok)); err != nil || u.Name != AdminUser {
		t.Fatalf("re-registered admin: %+v %v", u, err)
	}
	if _, err := os.Stat(filepath.Join(dir, AdminTokenFile+".tmp")); err == nil {
		t.Fatal("temp file left behind")
	}
}

func TestMiddleware(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	tok, err := CreateToken(ctx, st, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateToken(ctx, st, "bad name;"); err == nil {
		t.Fatal("bad user name accepted")
	}
	h := Middleware(st, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		w.Write([]byte(u.Name))
	}))
	cases := []struct {
		name, header string
		status       int
	}{
		{"none", "", 401},
		{"wrong scheme", "Basic " + tok, 401},
		{"unknown", "Bearer dm_nope", 401},
		{"empty", "Bearer ", 401},
		{"ok", "Bearer " + tok, 200},
		{"ok lower-case scheme", "bearer " + tok, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/x", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if c.status == 200 {
				if w.Body.String() != "alice" {
					t.Fatalf("user %q", w.Body.String())
				}
				return
			}
			var env struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Code != 401 || env.Msg == "" {
				t.Fatalf("envelope %s (%v)", w.Body.String(), err)
			}
		})
	}
}

// After MaxFailures refusals from one address within the window, that
// address gets 429 saying when to retry, even with a valid token, until
// the block ends; other addresses and successful requests are unaffected.
func TestMiddlewareBlocksRepeatedFailures(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	tok, err := CreateToken(ctx, st, "alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := netguard.NewAuthLimiter(netguard.AuthConfig{MaxFailures: 3, Window: time.Minute, Block: 5 * time.Minute,
		Now: func() time.Time { return now }})
	h := Middleware(st, lim)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
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
		{"valid between failures", 0, attacker, "Bearer " + tok, 200},
		{"third failure", 0, attacker, "Bearer dm_guess2", 401},
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
