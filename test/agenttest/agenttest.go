// Package agenttest runs a real agent inside a test process, for the tests
// of the manager's side that talk to one: its certificate comes from a
// fresh CA, for 127.0.0.1.
package agenttest

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/pki"
)

// New makes an agent with cfg, whose empty DataDir, CertFile, CAFile and
// ServerURL are filled in (files under a temporary folder; the manager's
// URL one nothing listens on), writing its certificate and CA bundle. It
// returns the agent, the CA and the config used. The test binary's
// TestMain must call agent.RunHelper.
func New(t testing.TB, cfg wire.Config) (*agent.Agent, *pki.Authority, wire.Config) {
	t.Helper()
	ca, err := pki.Open(t.TempDir(), pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.Request{PublicKey: key.Public(), CommonName: "agent-1", Hosts: []string{"127.0.0.1"}, Role: pki.Agent, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fill := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	fill(&cfg.DataDir, filepath.Join(dir, "data"))
	fill(&cfg.CertFile, filepath.Join(dir, "agent.pem"))
	fill(&cfg.CAFile, filepath.Join(dir, "ca.pem"))
	fill(&cfg.ServerURL, "https://127.0.0.1:1")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{cfg.CertFile, append(is.PEM, kb...), 0o600}, {cfg.CAFile, ca.Bundle(), 0o644}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	a, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, ca, cfg
}

// Serve serves a's API over plain HTTP on loopback (its mutual TLS is
// tested in agent/) until the test ends, and returns its URL.
func Serve(t testing.TB, a *agent.Agent) string {
	t.Helper()
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}
