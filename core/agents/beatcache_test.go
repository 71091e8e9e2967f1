package agents

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/store"
)

// Heartbeats within the cache's TTL answer from what the first one read
// (a role recorded meanwhile reaches the agent only after the TTL, or
// at once without a cache); a reinstall through this manager revokes the
// old certificate for heartbeats at once, cache or not.
func TestBeatCache(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ttl        time.Duration
		wantCached bool
	}{
		{"cached", time.Hour, true},
		{"off", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setupWith(t, func(c *Config) { c.Catalogue = &roles{}; c.BeatCacheTTL = tc.ttl })
			ctx := context.Background()
			cfg := e.install(t, "127.0.0.1", idA)
			reg := wire.Register{AgentID: idA, Host: "127.0.0.1", Port: 9602, Version: "t", Processes: []wire.Process{}}
			if code, msg, err := e.post(t, cfg.CertFile, wire.RegisterPath, reg); err != nil || code != http.StatusOK {
				t.Fatalf("register: %d %s %v", code, msg, err)
			}
			beat := wire.Heartbeat{AgentID: idA, Processes: []wire.Process{}}
			pidFiles := func() []wire.PidFile {
				t.Helper()
				var out wire.Beat
				code, msg, err := e.postData(t, cfg.CertFile, wire.HeartbeatPath, beat, &out)
				if err != nil || code != http.StatusOK {
					t.Fatalf("heartbeat: %d %s %v", code, msg, err)
				}
				return out.PidFiles
			}
			if got := pidFiles(); len(got) != 0 {
				t.Fatalf("pid files before any role: %+v", got)
			}
			fe := store.AgentRole{ClusterID: 1, Host: "127.0.0.1", Role: "FE", InstallDir: filepath.Join(t.TempDir(), "fe")}
			if err := e.st.UpsertRole(ctx, &fe); err != nil {
				t.Fatal(err)
			}
			if got := pidFiles(); (len(got) == 0) != tc.wantCached {
				t.Errorf("pid files after FE was recorded: %+v; want them from the cache: %v", got, tc.wantCached)
			}
			// Reinstall: the old certificate is refused at once.
			e.install(t, "127.0.0.1", idA)
			if code, _, err := e.post(t, cfg.CertFile, wire.HeartbeatPath, beat); err != nil || code != http.StatusUnauthorized {
				t.Errorf("heartbeat with the revoked certificate: %d %v, want 401", code, err)
			}
		})
	}
}

// postData is post that also decodes the envelope's data into out.
func (e *env) postData(t testing.TB, certFile, path string, body, out any) (int, string, error) {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), Certificates: []tls.Certificate{c}}}}
	raw, _ := json.Marshal(body)
	resp, err := hc.Post(e.url+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var env wire.Envelope[json.RawMessage]
	_ = json.NewDecoder(resp.Body).Decode(&env)
	if len(env.Data) > 0 {
		_ = json.Unmarshal(env.Data, out)
	}
	return resp.StatusCode, env.Msg, nil
}
