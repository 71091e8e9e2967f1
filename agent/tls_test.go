package agent

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/pki"
)

// testConfig makes a CA, issues an agent certificate for host and writes
// it with the bundle into a temp dir, as sshboot does on a host.
func testConfig(t *testing.T, host string) (wire.Config, *pki.Authority) {
	t.Helper()
	ca, err := pki.Open(t.TempDir(), pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := wire.Config{ServerURL: "https://127.0.0.1:1", DataDir: filepath.Join(dir, "data"),
		CertFile: filepath.Join(dir, "agent.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	pair := issue(t, ca, pki.Agent, "test-agent", host)
	if err := os.WriteFile(cfg.CertFile, pair, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.CAFile, ca.Bundle(), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, ca
}

// issue returns a certificate and its key as one PEM.
func issue(t *testing.T, ca *pki.Authority, role pki.Role, cn, host string) []byte {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.Request{PublicKey: key.Public(), CommonName: cn, Hosts: []string{host}, Role: role, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pki.EncodeKey(key)
	return append(is.PEM, kb...)
}

func pair(t *testing.T, b []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The agent's port answers only a client presenting the manager's
// certificate from the agent's CA over TLS 1.3: plain HTTP, anonymous TLS,
// another CA's manager certificate and an agent certificate get no API
// answer.
func TestPortAnswersOnlyTheManager(t *testing.T) {
	cfg, ca := testConfig(t, "127.0.0.1")
	a, addr, _ := serveAgent(t, cfg)

	other, err := pki.Open(t.TempDir(), pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ca.ManagerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	foreign := issue(t, other, pki.Manager, "m", "127.0.0.1")
	health := func(scheme string, tc *tls.Config) (int, string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get(scheme + "://" + addr + wire.HealthPath)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	status, body, err := health("https", &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{*mgr}})
	var env wire.Envelope[wire.Health]
	if err != nil || status != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil || env.Data.AgentID != a.ID() {
		t.Fatalf("the manager's certificate: %d %s %v", status, body, err)
	}

	// Plain HTTP: the TLS server's canned "client sent an HTTP request to
	// an HTTPS server", never the API.
	status, body, err = health("http", nil)
	if err == nil && (status == http.StatusOK || strings.Contains(body, a.ID())) {
		t.Errorf("plain HTTP got an API answer: %d %s", status, body)
	}
	t.Logf("plain HTTP: %d %q %v", status, strings.TrimSpace(body), err)

	for name, tc := range map[string]*tls.Config{
		"anonymous TLS": {RootCAs: ca.Pool()},
		// Sent even though the agent asks for certificates of its CA only.
		"another CA's manager certificate": {RootCAs: ca.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := pair(t, foreign)
			return &c, nil
		}},
		"an agent certificate of the same CA": {RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair(t, issue(t, ca, pki.Agent, "x", "127.0.0.1"))}},
		"TLS 1.2":                             {RootCAs: ca.Pool(), Certificates: []tls.Certificate{*mgr}, MaxVersion: tls.VersionTLS12},
	} {
		status, body, err := health("https", tc)
		if err == nil {
			t.Errorf("%s: answered %d %s", name, status, body)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestLoadConfigRefusesOldOrPlain(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		conf, want string
	}{
		"token config": {`{"serverURL":"http://10.0.0.1:9601","token":"abc","dataDir":"/d","host":"10.0.0.2"}`, "https://"},
		"http manager": {`{"serverURL":"http://10.0.0.1:9603","certFile":"/c","caFile":"/a","dataDir":"/d","host":"10.0.0.2"}`, "https://"},
		"no cert":      {`{"serverURL":"https://10.0.0.1:9603","dataDir":"/d","host":"10.0.0.2"}`, "certFile and caFile"},
		"bad fraction": {`{"serverURL":"https://10.0.0.1:9603","certFile":"/c","caFile":"/a","dataDir":"/d","host":"10.0.0.2","renewFraction":1.5}`, "renewFraction"},
		"good":         {`{"serverURL":"https://10.0.0.1:9603","certFile":"/c","caFile":"/a","dataDir":"/d","host":"10.0.0.2"}`, ""},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(tc.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(p)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
}
