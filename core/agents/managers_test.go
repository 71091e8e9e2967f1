package agents

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// serveSecond starts a second registry on e's store and CA (another
// manager on the same database) and returns its agent endpoint URL.
func (e *env) serveSecond(t *testing.T) (*Registry, string) {
	t.Helper()
	reg, err := New(Config{Store: e.st, PKI: e.ca, HeartbeatSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/agent-api/v1/", reg.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(tls.NewListener(ln, e.ca.AgentEndpointTLS()))
	t.Cleanup(func() { srv.Close() })
	return reg, "https://" + ln.Addr().String()
}

// An install prepared by one manager ends its wait when the agent
// registers at another manager on the same database; a reinstall waits
// for the new agent, not the registration recorded before it.
func TestWaitRegisteredSeesOtherManagers(t *testing.T) {
	e := setup(t)
	_, otherURL := e.serveSecond(t)
	cfg := e.install(t, "127.0.0.1", idA)
	cfg.ServerURL = otherURL // the agent reaches only the other manager
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, stop := run(t, cfg)
	a, err := e.reg.WaitRegistered(ctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatalf("a registration at the other manager did not end the wait: %v", err)
	}
	if a.RegisterTime == nil || a.AgentUUID != idA {
		t.Fatalf("agent after the wait: %+v", a)
	}
	stop()

	// Reinstalled: until the new agent registers the wait goes on.
	cfg = e.install(t, "127.0.0.1", idA)
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := e.reg.WaitRegistered(short, 1, "127.0.0.1"); err == nil {
		t.Fatal("the wait after a reinstall ended on the earlier registration")
	}
	cfg.ServerURL = otherURL
	run(t, cfg)
	if _, err := e.reg.WaitRegistered(ctx, 1, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
}

// Every answer names the managers Config.Managers returns.
func TestAnswersNameTheManagers(t *testing.T) {
	e := setupWith(t, func(c *Config) {
		c.Managers = func() []string { return []string{"https://m1:9603", "https://m2:9603"} }
	})
	cert, err := e.ca.ManagerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	b := e.reg.answer(cert.Leaf, "")
	if len(b.Managers) != 2 || b.Managers[1] != "https://m2:9603" {
		t.Fatalf("answer's managers = %v", b.Managers)
	}
}
