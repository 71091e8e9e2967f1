package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/dorismanager/dorismanager/internal/netguard/netguardtest"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
)

type okAction struct{}

func (okAction) Run(context.Context, runner.Job) (runner.Outcome, error) {
	return runner.Outcome{Response: "agent installed"}, nil
}
func (okAction) Idempotent() bool { return true }

func startServer(t *testing.T, cfg Config) (*Server, string, func()) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.AgentListen = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	b, err := os.ReadFile(s.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	return s, strings.TrimSpace(string(b)), stop
}

func call(t *testing.T, s *Server, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.Addr().String()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func installAgentBody(t *testing.T) string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	b, _ := ssh.MarshalPrivateKey(priv, "")
	j, _ := json.Marshal(map[string]any{"clusterId": 1, "hosts": []string{"10.0.0.1"}, "user": "root", "sshPort": 22,
		"sshKey": string(pem.EncodeToMemory(b)), "packageUrl": "http://x/y.tgz", "installDir": "/opt/doris"})
	return string(j)
}

// waitTask polls the store until the first task of the process ended.
func waitTask(t *testing.T, s *Server) store.Task {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		tasks, err := s.Store().TasksOfStep(context.Background(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) == 1 && (tasks[0].Status == store.StatusSuccess || tasks[0].Status == store.StatusFailure) {
			return tasks[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("task did not end: %+v", tasks)
		}
		time.Sleep(delay)
	}
}

func TestServeAuthAndNoActionRegistered(t *testing.T) {
	s, tok, stop := startServer(t, Config{})
	defer stop()
	if code, _ := call(t, s, "GET", "/api/process/currentProcess", "", ""); code != 401 {
		t.Fatalf("without token: %d", code)
	}
	if code, body := call(t, s, "GET", "/api/process/currentProcess", tok, ""); code != 200 || !strings.Contains(body, `"data":null`) {
		t.Fatalf("with token: %d %s", code, body)
	}
	if code, body := call(t, s, "POST", "/api/server/installAgent", tok, installAgentBody(t)); code != 200 {
		t.Fatalf("installAgent: %d %s", code, body)
	}
	task := waitTask(t, s)
	if task.Status != store.StatusFailure || !strings.Contains(task.Response, "no action is registered for task type INSTALL_AGENT") {
		t.Fatalf("task without action: %+v", task)
	}
}

func TestExtendPlugsInActionsAndHandlers(t *testing.T) {
	var got Deps
	s, tok, stop := startServer(t, Config{Extend: func(ctx context.Context, d Deps) (Extensions, error) {
		got = d
		return Extensions{
			Actions:  runner.Actions{"INSTALL_AGENT": okAction{}},
			AgentAPI: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "agents") }),
			Background: []func(context.Context) error{func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			}},
		}, nil
	}})
	defer stop()
	if got.Store == nil || got.Secrets == nil || got.Notify == nil || got.ListenAddr == nil || got.PKI == nil || got.AgentAddr == nil {
		t.Fatalf("deps: %+v", got)
	}
	// The agent API is served on its own listener, to agent certificates
	// only, and not on the REST listener.
	if code, _ := call(t, s, "POST", "/agent-api/v1/heartbeat", "", "{}"); code != http.StatusNotFound {
		t.Fatalf("agent api on the REST listener: %d", code)
	}
	key, _ := pki.NewKey()
	is, err := s.PKI().Issue(pki.Request{PublicKey: key.Public(), CommonName: "a", Hosts: []string{"127.0.0.1"}, Role: pki.Agent, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pki.EncodeKey(key)
	agentCert, _ := tls.X509KeyPair(is.PEM, kb)
	agentURL := "https://" + s.AgentAddr().String() + "/agent-api/v1/heartbeat"
	for name, tc := range map[string]struct {
		certs []tls.Certificate
		ok    bool
	}{"agent certificate": {[]tls.Certificate{agentCert}, true}, "no certificate": {nil, false}} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.PKI().Pool(), Certificates: tc.certs}}}
		resp, err := hc.Post(agentURL, "application/json", strings.NewReader("{}"))
		if tc.ok {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "agents" {
				t.Fatalf("%s: %s", name, b)
			}
		} else if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %d", name, resp.StatusCode)
		}
	}
	if resp, err := http.Post("http://"+s.AgentAddr().String()+"/agent-api/v1/heartbeat", "application/json", strings.NewReader("{}")); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "agents" {
			t.Fatal("the agent endpoint answered plain HTTP")
		}
	}
	call(t, s, "POST", "/api/server/installAgent", tok, installAgentBody(t))
	if task := waitTask(t, s); task.Status != store.StatusSuccess || task.Response != "agent installed" {
		t.Fatalf("task: %+v", task)
	}
}

func TestRestartKeepsTokenAndData(t *testing.T) {
	dir := t.TempDir()
	s, tok, stop := startServer(t, Config{DataDir: dir})
	call(t, s, "POST", "/api/cluster", tok, `{"name":"keep"}`)
	stop()
	s, tok2, stop := startServer(t, Config{DataDir: dir})
	defer stop()
	if tok2 != tok {
		t.Fatal("admin token changed across restarts")
	}
	if _, body := call(t, s, "GET", "/api/cluster", tok, ""); !strings.Contains(body, `"name":"keep"`) {
		t.Fatalf("cluster lost: %s", body)
	}
}

// --tls auto serves the API with the manager's certificate, which a client
// trusting the CA bundle accepts and whose fingerprint is reported.
func TestTLSAuto(t *testing.T) {
	s, tok, stop := startServer(t, Config{TLSAuto: true})
	defer stop()
	c, err := s.PKI().ManagerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if s.TLSFingerprint() == "" || s.TLSFingerprint() != pki.Fingerprint(c.Leaf) {
		t.Fatalf("fingerprint %q", s.TLSFingerprint())
	}
	bundle, err := os.ReadFile(filepath.Join(s.cfg.DataDir, pki.Dir, pki.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+s.Addr().String()+"/api/process/currentProcess", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("over TLS: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + s.Addr().String() + "/api/process/currentProcess"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `"code"`) {
			t.Fatalf("plain HTTP got an API answer: %s", b)
		}
	}
}

// Plain HTTP on an address others can reach is warned about; on loopback
// it is not.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		listen string
		warn   bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		var out syncBuffer
		log := hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})
		_, _, stop := startServer(t, Config{Listen: tc.listen, Logger: log})
		stop()
		if got := strings.Contains(out.String(), "[WARN]  THE API IS PLAIN HTTP ON A NON-LOOPBACK ADDRESS"); got != tc.warn {
			t.Errorf("listen %s: warned %v, want %v:\n%s", tc.listen, got, tc.warn, out.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Many idle connections are closed by the read-header and idle timeouts,
// the connection cap bounds the open files meanwhile, and they come back
// to where they were.
func TestIdleConnectionsClosedAndFilesBounded(t *testing.T) {
	const maxConns = 200
	s, _, stop := startServer(t, Config{HTTP: netguard.Limits{ReadHeaderTimeout: time.Second,
		IdleTimeout: time.Second, MaxConns: maxConns}})
	defer stop()
	netguardtest.IdleFlood(t, s.Addr().String(), 500, maxConns, "GET /no-such-page HTTP/1.1\r\nHost: manager\r\n\r\n")
}

// --secret-key-file puts the key outside the data dir.
func TestSecretKeyFileOutsideDataDir(t *testing.T) {
	dataDir, keyFile := t.TempDir(), filepath.Join(t.TempDir(), "keys", "manager.key")
	_, _, stop := startServer(t, Config{DataDir: dataDir, SecretKeyFile: keyFile})
	stop()
	if st, err := os.Stat(keyFile); err != nil || st.Size() != 32 {
		t.Fatalf("key file %s: %v", keyFile, err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "secret.key")); err == nil {
		t.Fatal("a key was written into the data dir as well")
	}
}

// A SQLite data dir is served by one manager at a time (its runner takes
// over every task left RUNNING at start); the lock goes with the manager.
func TestOneManagerPerSQLiteDataDir(t *testing.T) {
	dir := t.TempDir()
	s, tok, stop := startServer(t, Config{DataDir: dir, Actions: runner.Actions{"INSTALL_AGENT": okAction{}}})
	if _, err := New(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", AgentListen: "127.0.0.1:0"}); err == nil ||
		!strings.Contains(err.Error(), "another dorismanager serve uses the data dir") {
		t.Fatalf("second manager on the data dir: %v", err)
	}
	if code, body := call(t, s, "POST", "/api/server/installAgent", tok, installAgentBody(t)); code != 200 {
		t.Fatalf("installAgent: %d %s", code, body)
	}
	if task := waitTask(t, s); task.ExecutorID != s.ManagerID() || !strings.HasPrefix(s.ManagerID(), hostname(t)+"-") {
		t.Fatalf("task ran by %q, manager id %q", task.ExecutorID, s.ManagerID())
	}
	stop()
	_, _, stop = startServer(t, Config{DataDir: dir})
	stop()
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTaskLeaseTooShort(t *testing.T) {
	_, err := New(context.Background(), Config{DataDir: t.TempDir(), TaskLease: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "--task-lease 500ms: give at least 1s") {
		t.Fatalf("got %v", err)
	}
}
