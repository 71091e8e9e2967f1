package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// TestMutualTLS checks the trust between the manager and the agents on
// real test hosts: the agents' configs point at the manager with https and
// hold no bearer secret; an agent's port gives no API answer to plain
// HTTP, anonymous TLS, another CA's certificate, an agent's certificate or
// an expired one; the manager refuses an agent certificate presented for
// another host or agent. Then one agent renews its certificate at every
// heartbeat and the CA is rotated and the rotation finished while the
// wizard goes on: every agent stays connected and the cluster comes up.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{ManagerArgs: []string{"--agent-cert-lifetime", "1h"}})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	hosts := s.Hosts.Hosts
	bundle, err := s.CABundle()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)

	// The agents' configs.
	confs := map[string]wire.Config{}
	for _, h := range hosts {
		p, _ := sandbox.OnHost(h, sandbox.AgentHome+"/conf/agent.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var cfg wire.Config
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.ServerURL != s.AgentURL || bytes.Contains(b, []byte(`"token"`)) || cfg.CertFile == "" || cfg.CAFile == "" {
			t.Errorf("agent config on %s: %s", h.Name, b)
		}
		kp, _ := sandbox.OnHost(h, cfg.CertFile)
		if fi, err := os.Stat(kp); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file on %s: %v %v", h.Name, fi, err)
		}
		confs[h.Addr] = cfg
	}
	if t.Failed() {
		t.FailNow()
	}
	pairOf := func(h *testhosts.Host) tls.Certificate {
		t.Helper()
		p, _ := sandbox.OnHost(h, confs[h.Addr].CertFile)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(b, b)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// What an agent's port answers.
	h1, h2 := hosts[0], hosts[1]
	other, err := pki.Open(t.TempDir(), pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	foreignManager, err := other.ManagerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	expiredManager := expiredCert(t, s.DataDir, pki.Manager, "expired manager", h2.Addr)
	agentURL := "https://" + net.JoinHostPort(h2.Addr, "9602") + wire.HealthPath
	if st, body, err := get("http://"+net.JoinHostPort(h2.Addr, "9602")+wire.HealthPath, nil); err == nil && (st == 200 || strings.Contains(body, `"agentId"`)) {
		t.Errorf("plain HTTP to the agent got an API answer: %d %s", st, body)
	} else {
		t.Logf("plain HTTP: %d %q %v", st, strings.TrimSpace(body), err)
	}
	for name, cfg := range map[string]*tls.Config{
		"anonymous TLS": {RootCAs: pool},
		// Sent even though the agent asks for certificates of its CA only.
		"another CA's manager certificate": {RootCAs: pool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return foreignManager, nil
		}},
		"h1's agent certificate":         {RootCAs: pool, Certificates: []tls.Certificate{pairOf(h1)}},
		"an expired manager certificate": {RootCAs: pool, Certificates: []tls.Certificate{expiredManager}},
	} {
		if st, body, err := get(agentURL, cfg); err == nil {
			t.Errorf("%s: the agent answered %d %s", name, st, body)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}

	// What the manager's agent endpoint answers.
	endpoint := s.AgentURL
	ids := map[string]string{}
	for _, h := range hosts {
		p, _ := sandbox.OnHost(h, sandbox.AgentHome+"/data/agent-id")
		b, _ := os.ReadFile(p)
		ids[h.Addr] = strings.TrimSpace(string(b))
	}
	as := func(h *testhosts.Host) *tls.Config {
		return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pairOf(h)}}
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		path string
		body any
		want int
	}{
		{"h1's certificate registering for h2", as(h1), wire.RegisterPath, wire.Register{AgentID: ids[h1.Addr], Host: h2.Addr, Port: 9602}, 403},
		{"h1's certificate registering as h2's agent", as(h1), wire.RegisterPath, wire.Register{AgentID: ids[h2.Addr], Host: h2.Addr, Port: 9602}, 403},
		{"h1's certificate beating as h2's agent", as(h1), wire.HeartbeatPath, wire.Heartbeat{AgentID: ids[h2.Addr]}, 403},
	} {
		st, body, err := post(endpoint+tc.path, tc.cfg, tc.body)
		if err != nil || st != tc.want {
			t.Errorf("%s: %d %s %v, want %d", tc.name, st, body, err, tc.want)
		}
	}
	expiredAgent := expiredCert(t, s.DataDir, pki.Agent, ids[h1.Addr], h1.Addr)
	if st, body, err := post(endpoint+wire.HeartbeatPath, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{expiredAgent}},
		wire.Heartbeat{AgentID: ids[h1.Addr]}); err == nil {
		t.Errorf("an expired agent certificate: %d %s", st, body)
	}
	if st, body, err := post(strings.Replace(endpoint, "https://", "http://", 1)+wire.HeartbeatPath, nil, wire.Heartbeat{}); err == nil && strings.Contains(body, `"code"`) {
		t.Errorf("the agent endpoint answered plain HTTP: %d %s", st, body)
	}
	if t.Failed() {
		t.FailNow()
	}

	// h1's agent renews its certificate at every heartbeat from now on
	// (a twentieth of its one-hour lifetime is past at once).
	before := serialOf(t, pairOf(h1))
	p, _ := sandbox.OnHost(h1, sandbox.AgentHome+"/conf/agent.json")
	cfg := confs[h1.Addr]
	cfg.RenewFraction = 0.05
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.KillAgent(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.StartAgent(ctx, h1); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{before: true}
	waitUntil(ctx, t, "h1's agent renews twice", func() bool {
		seen[serialOf(t, pairOf(h1))] = true
		return len(seen) >= 3
	})

	// A CA rotation while the wizard installs the services.
	out := dm(t, s, "ca", "rotate")
	t.Log(out)
	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "every agent renews onto the new CA", func() bool {
		st := dm(t, s, "ca", "status")
		return strings.Count(st, "from the signing CA") == len(hosts)
	})
	mustStep(ctx, t, c, pid)
	t.Log(dm(t, s, "ca", "rotate", "--finish"))
	// The API's certificate now comes from the new CA: a client made now
	// trusts the new bundle.
	waitUntil(ctx, t, "the API serves the new CA's certificate", func() bool {
		c = s.Client()
		_, err := c.AgentList(ctx, plan.ClusterID)
		return err == nil
	})
	mark := time.Now().Add(time.Second)
	waitUntil(ctx, t, "every agent beats after the rotation", func() bool {
		as, err := c.AgentList(ctx, plan.ClusterID)
		if err != nil || len(as) != len(hosts) {
			return false
		}
		for _, a := range as {
			at, ok := apiTime(a.LastReportedTime)
			if a.Status != "RUNNING" || !ok || at.Before(mark) {
				return false
			}
		}
		return true
	})
	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster after the wizard: %v", err)
	}
	if !strings.Contains(dm(t, s, "ca", "status"), "from the signing CA") || strings.Contains(dm(t, s, "ca", "status"), "previous CA") {
		t.Errorf("CA status after the rotation:\n%s", dm(t, s, "ca", "status"))
	}
}

// expiredCert issues, with the sandbox manager's CA and a clock two days
// back, a certificate that expired a day ago.
func expiredCert(t *testing.T, dataDir string, role pki.Role, cn, host string) tls.Certificate {
	t.Helper()
	ca, err := pki.Open(dataDir, pki.Options{Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey()
	is, err := ca.Issue(pki.Request{PublicKey: key.Public(), CommonName: cn, Hosts: []string{host}, Role: role, Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pki.EncodeKey(key)
	c, err := tls.X509KeyPair(is.PEM, kb)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serialOf(t *testing.T, c tls.Certificate) string {
	t.Helper()
	return pki.Serial(c.Leaf)
}

// dm runs the sandbox's dorismanager binary against its data dir.
func dm(t *testing.T, s *sandbox.Sandbox, args ...string) string {
	t.Helper()
	args = append(args, "--data-dir", s.DataDir)
	if s.Opts.DB != "" {
		args = append(args, "--db", s.Opts.DB)
	}
	out, err := exec.Command(filepath.Join(s.Opts.BinDir, "dorismanager"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dorismanager %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func waitUntil(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func client(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: deadline.D(10 * time.Second), Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(url string, cfg *tls.Config) (int, string, error) {
	resp, err := client(cfg).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), nil
}

func post(url string, cfg *tls.Config, body any) (int, string, error) {
	b, _ := json.Marshal(body)
	resp, err := client(cfg).Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, fmt.Sprintf("%s", rb), nil
}
