package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/server"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// With --log-format json every line the manager writes, from every
// package, is one JSON object; with the real extensions and no plugins
// installed /readyz answers 503 and says what to do.
func TestJSONLogsAndNotReadyWithoutPlugins(t *testing.T) {
	var out syncBuffer
	log, err := newLogger("debug", "json", &out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", AgentListen: "127.0.0.1:0", DataDir: t.TempDir(),
		PluginsDir: t.TempDir(), Logger: log, Extend: extendWith([]agentclient.Option{}, pki.AgentLifetime, relayManager)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	resp, err := http.Get("http://" + srv.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no role plugin is loaded") ||
		!strings.Contains(string(body), "plugins install") {
		t.Errorf("/readyz without plugins: %d %s", resp.StatusCode, body)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("too few log lines: %q", out.String())
	}
	modules := map[string]bool{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		if m["@message"] == nil || m["@level"] == nil || m["@timestamp"] == nil {
			t.Errorf("log line without @message, @level or @timestamp: %q", l)
		}
		if mod, ok := m["@module"].(string); ok {
			modules[mod] = true
		}
	}
	if !modules["dorismanager"] || !modules["dorismanager.runner"] {
		t.Errorf("want lines of the server and the runner, got modules %v", modules)
	}
}

func TestNewLoggerRefusesUnknown(t *testing.T) {
	for _, tc := range []struct{ level, format, want string }{
		{"info", "xml", "--log-format"},
		{"loud", "json", "--log-level"},
	} {
		if _, err := newLogger(tc.level, tc.format, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newLogger(%q, %q) = %v, want an error naming %s", tc.level, tc.format, err, tc.want)
		}
	}
}
