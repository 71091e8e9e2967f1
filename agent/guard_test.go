package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/internal/netguard/netguardtest"
)

func TestLoadConfigListen(t *testing.T) {
	cases := []struct {
		name, listen, host string
		want               string // "" for an error
	}{
		{"default is the host's address", "", "10.0.0.5", "10.0.0.5:9602"},
		{"IPv6 host", "", "fd00::5", "[fd00::5]:9602"},
		{"explicit address", "10.0.0.5:9700", "10.0.0.5", "10.0.0.5:9700"},
		{"every interface only when asked", ":9602", "10.0.0.5", ":9602"},
		{"nothing to bind to", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.json")
			b, _ := json.Marshal(wire.Config{ServerURL: "http://10.0.0.1:9601", Token: "t", DataDir: "/d", Listen: c.listen, Host: c.host})
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), "listen") {
					t.Fatalf("got listen %q, err %v: want an error naming listen", cfg.Listen, err)
				}
				return
			}
			if err != nil || cfg.Listen != c.want {
				t.Fatalf("listen %q, err %v: want %q", cfg.Listen, err, c.want)
			}
		})
	}
}

// Wrong tokens from one address get it blocked (429 with Retry-After),
// the right token included; requests with the right token before that
// are not counted.
func TestAuthFailuresBlock(t *testing.T) {
	a, err := New(wire.Config{Token: token, DataDir: t.TempDir(), ServerURL: "http://127.0.0.1:1", AuthMaxFailures: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler()
	steps := []struct {
		tok    string
		status int
	}{
		{token, 200}, {token, 200}, {token, 200}, {token, 200},
		{"", 401}, {"wrong", 401}, {token, 200}, {token + "x", 401},
		{"wrong", 429}, {token, 429},
	}
	for i, s := range steps {
		r, _ := http.NewRequest(http.MethodGet, wire.HealthPath, nil)
		r.RemoteAddr = "192.0.2.9:5000"
		if s.tok != "" {
			r.Header.Set("Authorization", "Bearer "+s.tok)
		}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, r)
		if w.status != s.status {
			t.Fatalf("step %d (token %q): status %d, want %d", i, s.tok, w.status, s.status)
		}
		if s.status == 429 && (w.header.Get("Retry-After") == "" || !strings.Contains(w.body.String(), "retry after")) {
			t.Fatalf("step %d: %s, Retry-After %q: want when to retry", i, w.body.String(), w.header.Get("Retry-After"))
		}
	}
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int)   { r.status = s }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}

// Many idle connections are closed by the read-header and idle timeouts,
// the connection cap bounds the open files meanwhile, and they come back
// to where they were.
func TestIdleConnectionsClosedAndFilesBounded(t *testing.T) {
	const maxConns = 125
	a, err := New(wire.Config{Token: token, DataDir: t.TempDir(), ServerURL: "http://127.0.0.1:1", HeartbeatSeconds: 1,
		ReadHeaderTimeoutSeconds: 1, IdleTimeoutSeconds: 1, MaxConns: maxConns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	netguardtest.IdleFlood(t, ln.Addr().String(), 500, maxConns,
		"GET "+wire.HealthPath+" HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer "+token+"\r\n\r\n")
}

func TestPickMounts(t *testing.T) {
	many := map[string]bool{"/": true}
	for i := range 100 {
		many[fmt.Sprintf("/a%03d", i)] = true
	}
	many["/z/data"] = true
	many["/"+strings.Repeat("x", wire.MaxPath)] = true
	cases := []struct {
		name     string
		want     map[string]bool
		first    []string
		n        int
		mustHave []string
		mustLack []string
	}{
		{"few", map[string]bool{"/": true, "/data": true}, nil, 2, []string{"/", "/data"}, nil},
		{"many: capped, root and the data dir kept", many, []string{"/z/data"}, wire.MaxDisks, []string{"/", "/z/data", "/a000"},
			[]string{"/a099", "/" + strings.Repeat("x", wire.MaxPath)}},
	}
	for _, c := range cases {
		got := pickMounts(c.want, c.first...)
		if len(got) != c.n {
			t.Errorf("%s: %d mounts, want %d", c.name, len(got), c.n)
		}
		for _, m := range c.mustHave {
			if !slices.Contains(got, m) {
				t.Errorf("%s: %s missing", c.name, m)
			}
		}
		for _, m := range c.mustLack {
			if slices.Contains(got, m) {
				t.Errorf("%s: %.20s... reported", c.name, m)
			}
		}
	}
}
