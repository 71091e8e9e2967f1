package agent

import (
	"encoding/json"
	"fmt"
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
			b, _ := json.Marshal(wire.Config{ServerURL: "https://10.0.0.1:9603", CertFile: "/c", CAFile: "/a", DataDir: "/d", Listen: c.listen, Host: c.host})
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

// Many idle connections are closed by the read-header and idle timeouts,
// the connection cap bounds the open files meanwhile, and they come back
// to where they were.
func TestIdleConnectionsClosedAndFilesBounded(t *testing.T) {
	const maxConns = 125
	cfg, _ := testConfig(t, "127.0.0.1")
	cfg.HeartbeatSeconds, cfg.ReadHeaderTimeoutSeconds, cfg.IdleTimeoutSeconds, cfg.MaxConns = 1, 1, 1, maxConns
	_, addr, _ := serveAgent(t, cfg)
	netguardtest.IdleFlood(t, addr, 500, maxConns,
		// Plain HTTP to the TLS port: answered with a 400 and closed.
		"GET "+wire.HealthPath+" HTTP/1.1\r\nHost: agent\r\n\r\n")
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
