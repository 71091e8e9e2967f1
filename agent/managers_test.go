package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/pki"
)

// fakeManager is a manager's agent endpoint on loopback (the CA's manager
// certificate, agent certificates required): it counts registrations and
// heartbeats and names the managers it is told to in every answer.
type fakeManager struct {
	srv  *http.Server
	ln   net.Listener
	url  string
	mu   sync.Mutex
	regs int
	hbs  int
	name []string // Beat.Managers of its answers
	got  chan string
}

func startFakeManager(t *testing.T, ca *pki.Authority) *fakeManager {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeManager{ln: ln, url: "https://" + ln.Addr().String(), got: make(chan string, 100)}
	m.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		var data any
		switch r.URL.Path {
		case wire.RegisterPath:
			m.regs++
			data = wire.Registered{AgentID: 1, HeartbeatSeconds: 1, Beat: wire.Beat{Managers: m.name}}
		case wire.HeartbeatPath:
			m.hbs++
			data = wire.Beat{Managers: m.name}
		}
		m.mu.Unlock()
		_ = json.NewEncoder(w).Encode(wire.Envelope[any]{Msg: "success", Data: data})
		m.got <- r.URL.Path
	})}
	go func() { _ = m.srv.Serve(tls.NewListener(ln, ca.AgentEndpointTLS())) }()
	t.Cleanup(func() { _ = m.srv.Close() })
	return m
}

func (m *fakeManager) counts() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.regs, m.hbs
}

// wait returns when the manager got a call to path, failing after a minute.
func (m *fakeManager) wait(t *testing.T, path string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case p := <-m.got:
			if p == path {
				return
			}
		case <-deadline:
			t.Fatalf("%s got no %s", m.url, path)
		}
	}
}

// An agent configured with two managers reports to the first; once that
// one is gone (its port closed) its heartbeats go to the second, which
// already knows it (the registration is in the shared store), so it does
// not register again.
func TestHeartbeatFailsOverToTheNextManager(t *testing.T) {
	cfg, ca := testConfig(t, "127.0.0.1")
	first, second := startFakeManager(t, ca), startFakeManager(t, ca)
	cfg.ServerURL, cfg.ServerURLs = first.url, []string{first.url, second.url}
	cfg.HeartbeatSeconds = 1
	a, _, _ := serveAgent(t, cfg)

	first.wait(t, wire.HeartbeatPath)
	if regs, hbs := second.counts(); regs != 0 || hbs != 0 {
		t.Fatalf("the second manager got calls while the first answered: %d registrations, %d heartbeats", regs, hbs)
	}
	_ = first.srv.Close()
	second.wait(t, wire.HeartbeatPath)
	// The report loop sends one call at a time: by the next beat the
	// agent has made the second manager current.
	second.wait(t, wire.HeartbeatPath)
	if regs, _ := second.counts(); regs != 0 {
		t.Errorf("the agent registered again at the second manager (%d times); its registration is the store's", regs)
	}
	if got := a.managers.current(); got != second.url {
		t.Errorf("current manager = %s, want %s", got, second.url)
	}
}

// A manager's answer naming another manager adds it to those the agent
// fails over to: an agent configured with one manager reaches a second
// it learned of when the first is gone.
func TestAgentLearnsManagersFromAnswers(t *testing.T) {
	cfg, ca := testConfig(t, "127.0.0.1")
	first, second := startFakeManager(t, ca), startFakeManager(t, ca)
	first.name = []string{first.url, second.url, "http://plain.example:1"}
	cfg.ServerURL = first.url
	cfg.HeartbeatSeconds = 1
	a, _, stop := serveAgent(t, cfg)

	first.wait(t, wire.HeartbeatPath)
	_ = first.srv.Close()
	second.wait(t, wire.HeartbeatPath)
	for _, u := range a.managers.order() {
		if u == "http://plain.example:1" {
			t.Errorf("a plain http manager URL was taken: %v", a.managers.order())
		}
	}

	// Restarted with the same config, whose only manager is gone, the
	// agent finds the one it learned (kept in its data dir).
	stop()
	serveAgent(t, cfg)
	second.wait(t, wire.RegisterPath)
}

func TestManagerURLsFromConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  wire.Config
		want []string
	}{
		"old config, one URL":   {wire.Config{ServerURL: "https://a:1"}, []string{"https://a:1"}},
		"list with the current": {wire.Config{ServerURL: "https://a:1", ServerURLs: []string{"https://a:1/", "https://b:1", ""}}, []string{"https://a:1", "https://b:1"}},
		"list only":             {wire.Config{ServerURLs: []string{"https://b:1", "https://c:1"}}, []string{"https://b:1", "https://c:1"}},
	} {
		got := tc.cfg.ManagerURLs()
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", name, got, tc.want)
			}
		}
	}
}

// serveAgent starts an agent made from cfg on a loopback port. It answers
// the agent, its address and a stop that ends Serve and waits for it
// (idempotent; also run at cleanup).
func serveAgent(t *testing.T, cfg wire.Config) (*Agent, string, func()) {
	t.Helper()
	a, err := New(cfg, nil)
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
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return a, ln.Addr().String(), stop
}
