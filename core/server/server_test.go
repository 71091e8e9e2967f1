package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/dorismanager/dorismanager/internal/netguard/netguardtest"
	"golang.org/x/crypto/ssh"
)

type okAction struct{}

func (okAction) Run(context.Context, runner.Job) (runner.Outcome, error) {
	return runner.Outcome{Response: "agent installed"}, nil
}
func (okAction) Idempotent() bool { return true }

func startServer(t *testing.T, cfg Config) (*Server, string, func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
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
	if got.Store == nil || got.Secrets == nil || got.Notify == nil || got.ListenAddr == nil {
		t.Fatalf("deps: %+v", got)
	}
	if _, body := call(t, s, "POST", "/agent-api/v1/heartbeat", "", "{}"); body != "agents" {
		t.Fatalf("agent api: %s", body)
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
