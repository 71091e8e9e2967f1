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

	"github.com/dorismanager/dorismanager/core/store"
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
	h := Middleware(st)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
