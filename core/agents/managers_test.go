package agents

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// serveSecond starts a second registry on e's store and CA (another
// manager on the same database) and returns its agent endpoint URL.
func (e *env) serveSecond(t *testing.T) (*Registry, string) {
	t.Helper()
	return e.serveOther(t, e.st)
}

// serveOther is serveSecond on another connection to the database (st).
func (e *env) serveOther(t *testing.T, st *store.Store) (*Registry, string) {
	t.Helper()
	reg, err := New(Config{Store: st, PKI: e.ca, HeartbeatSeconds: 1})
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

// On PostgreSQL a registration at another manager ends the wait through
// its notification, not by the record's reads (made rare here).
func TestWaitRegisteredHearsOtherManagers(t *testing.T) {
	dsn := pgtest.Start(t)
	open := func() *store.Store {
		st, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	e := setupOn(t, open(), func(c *Config) { c.FlushInterval = 10 * time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lctx, stopListen := context.WithCancel(ctx)
	listened := make(chan error, 1)
	go func() { listened <- e.reg.Listen(lctx) }()
	defer func() { stopListen(); <-listened }()
	if _, err := e.st.CreateCluster(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	// Listening before the agent registers (a notification sent before
	// is lost, and then only the rare read would end the wait).
	waitFor(ctx, t, "the registry listening", func() bool {
		var n int64
		e.st.DB().Raw(`SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN ' || ?`, store.AgentsChannel).Scan(&n)
		return n > 0
	})
	_, otherURL := e.serveOther(t, open())
	cfg := e.install(t, "127.0.0.1", idA)
	cfg.ServerURL = otherURL
	run(t, cfg)
	if _, err := e.reg.WaitRegistered(ctx, 1, "127.0.0.1"); err != nil {
		t.Fatalf("the other manager's notification did not end the wait: %v", err)
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
