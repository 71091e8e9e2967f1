package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/hashicorp/go-hclog"
)

// Which changes make a request another request (same = false) and which
// leave it the same work (same = true).
func TestRequestHashCoversTheWork(t *testing.T) {
	exec := func(m func(*wire.Exec)) string {
		r := wire.Exec{RequestID: "r", TaskID: "7", Argv: []string{"sh", "-c", "echo hi"}, Env: map[string]string{"A": "1", "B": "2"},
			Dir: "/tmp", Stdin: []byte("in"), TimeoutSeconds: 10}
		m(&r)
		return execHash(r)
	}
	dl := func(m func(*wire.Download)) string {
		r := wire.Download{RequestID: "r", TaskID: "7", URL: "http://h/p.tgz", SHA256: "ab", Dest: "/opt/x", Unpack: true, MaxBytes: 1 << 20}
		m(&r)
		return downloadHash(r)
	}
	wr := func(m func(*wire.WriteFile), mode os.FileMode) string {
		r := wire.WriteFile{RequestID: "r", Path: "/etc/x", Data: []byte("data")}
		m(&r)
		return writeHash(r, mode)
	}
	same := func(*wire.Exec) {}
	cases := []struct {
		name string
		a, b string
		same bool
	}{
		{"exec: identical", exec(same), exec(same), true},
		{"exec: timeout is a limit, not the work", exec(same), exec(func(r *wire.Exec) { r.TimeoutSeconds = 99 }), true},
		{"exec: requestId is the key, not the work", exec(same), exec(func(r *wire.Exec) { r.RequestID = "other" }), true},
		{"exec: default open-files limit", exec(same), exec(func(r *wire.Exec) { r.NoFile = DefaultNoFile }), true},
		{"exec: argv", exec(same), exec(func(r *wire.Exec) { r.Argv = []string{"sh", "-c", "echo bye"} }), false},
		{"exec: argv split differently", exec(func(r *wire.Exec) { r.Argv = []string{"ab", "c"} }), exec(func(r *wire.Exec) { r.Argv = []string{"a", "bc"} }), false},
		{"exec: env value", exec(same), exec(func(r *wire.Exec) { r.Env = map[string]string{"A": "1", "B": "3"} }), false},
		{"exec: env key moved into value", exec(func(r *wire.Exec) { r.Env = map[string]string{"AB": ""} }), exec(func(r *wire.Exec) { r.Env = map[string]string{"A": "B"} }), false},
		{"exec: dir", exec(same), exec(func(r *wire.Exec) { r.Dir = "/" }), false},
		{"exec: stdin", exec(same), exec(func(r *wire.Exec) { r.Stdin = []byte("other") }), false},
		{"exec: open-files limit", exec(same), exec(func(r *wire.Exec) { r.NoFile = 1024 }), false},
		{"exec: detach", exec(same), exec(func(r *wire.Exec) { r.Detach = true }), false},
		{"exec: task (its log)", exec(same), exec(func(r *wire.Exec) { r.TaskID = "8" }), false},
		{"download: limits", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.MaxBytes = 5; r.TimeoutSeconds = 3 }), true},
		{"download: checksum case", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.SHA256 = " AB " }), true},
		{"download: url", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.URL = "http://h/q.tgz" }), false},
		{"download: checksum", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.SHA256 = "cd" }), false},
		{"download: sha512", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.SHA512 = "ef" }), false},
		{"download: sha512 case", dl(func(r *wire.Download) { r.SHA512 = "ef" }), dl(func(r *wire.Download) { r.SHA512 = " EF" }), true},
		{"download: sha512 is not sha256", dl(func(r *wire.Download) { r.SHA256 = ""; r.SHA512 = "ab" }), dl(func(*wire.Download) {}), false},
		{"download: dest", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.Dest = "/opt/y" }), false},
		{"download: unpack", dl(func(*wire.Download) {}), dl(func(r *wire.Download) { r.Unpack = false }), false},
		{"write: identical", wr(func(*wire.WriteFile) {}, 0o644), wr(func(*wire.WriteFile) {}, 0o644), true},
		{"write: data", wr(func(*wire.WriteFile) {}, 0o644), wr(func(r *wire.WriteFile) { r.Data = []byte("datb") }, 0o644), false},
		{"write: path", wr(func(*wire.WriteFile) {}, 0o644), wr(func(r *wire.WriteFile) { r.Path = "/etc/y" }, 0o644), false},
		{"write: mode", wr(func(*wire.WriteFile) {}, 0o644), wr(func(*wire.WriteFile) {}, 0o600), false},
		{"kinds differ", exec(func(r *wire.Exec) { r.Argv = nil; r.Env = nil; r.Dir = ""; r.Stdin = nil; r.TaskID = "" }),
			dl(func(r *wire.Download) { *r = wire.Download{} }), false},
	}
	for _, c := range cases {
		if (c.a == c.b) != c.same {
			t.Errorf("%s: same hash = %v, want %v", c.name, c.a == c.b, c.same)
		}
	}
}

// newLoggedAgent is newAgent with its log captured.
func newLoggedAgent(t *testing.T) (*Agent, *httptest.Server, *syncWriter) {
	t.Helper()
	logs := &syncWriter{w: &bytes.Buffer{}}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	cfg, _ := testConfig(t, "127.0.0.1")
	cfg.HeartbeatSeconds, cfg.MaxDownloadBytes = 1, 1<<20
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv, logs
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// A requestId answers only the request it was first used for: the same
// request again is replayed, another one under it is refused with 409 and
// does not run.
func TestReusedRequestID(t *testing.T) {
	pkg := tgz(t, "a/x", "hello")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer files.Close()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	run := func(word string) wire.Exec {
		return wire.Exec{RequestID: "x1", TaskID: "1", Argv: []string{"sh", "-c", `echo "$1" >> "$2"`, "sh", word, marker}}
	}
	cases := []struct {
		name          string
		path          string
		first, second any
		wantStatus    int // of the second
	}{
		{"exec again", wire.ExecPath, run("one"), run("one"), 200},
		{"exec with a longer timeout", wire.ExecPath, run("one"), func() wire.Exec { r := run("one"); r.TimeoutSeconds = 60; return r }(), 200},
		{"exec of another command", wire.ExecPath, run("one"), run("two"), 409},
		{"download of another url", wire.DownloadPath,
			wire.Download{RequestID: "d1", URL: files.URL + "/a.tgz", Dest: filepath.Join(dir, "a.tgz")},
			wire.Download{RequestID: "d1", URL: files.URL + "/b.tgz", Dest: filepath.Join(dir, "a.tgz")}, 409},
		{"download again", wire.DownloadPath,
			wire.Download{RequestID: "d1", URL: files.URL + "/a.tgz", Dest: filepath.Join(dir, "a.tgz")},
			wire.Download{RequestID: "d1", URL: files.URL + "/a.tgz", Dest: filepath.Join(dir, "a.tgz"), TimeoutSeconds: 5}, 200},
		{"write of other data", wire.WriteFilePath,
			wire.WriteFile{RequestID: "w1", Path: filepath.Join(dir, "f"), Data: []byte("one")},
			wire.WriteFile{RequestID: "w1", Path: filepath.Join(dir, "f"), Data: []byte("two")}, 409},
		{"write to another path", wire.WriteFilePath,
			wire.WriteFile{RequestID: "w1", Path: filepath.Join(dir, "f"), Data: []byte("one")},
			wire.WriteFile{RequestID: "w1", Path: filepath.Join(dir, "g"), Data: []byte("one")}, 409},
		{"write again", wire.WriteFilePath,
			wire.WriteFile{RequestID: "w1", Path: filepath.Join(dir, "f"), Data: []byte("one")},
			wire.WriteFile{RequestID: "w1", Path: filepath.Join(dir, "f"), Data: []byte("one")}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(marker)
			_, srv, logs := newLoggedAgent(t)
			if resp, lines := call(t, srv, c.path, c.first); resp.StatusCode != 200 || (len(lines) > 0 && lines[len(lines)-1].Error != "") {
				t.Fatalf("first request: HTTP %d %+v", resp.StatusCode, lines)
			}
			before, _ := os.ReadFile(marker)
			resp, lines := call(t, srv, c.path, c.second)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("second request: HTTP %d, want %d (%+v)", resp.StatusCode, c.wantStatus, lines)
			}
			after, _ := os.ReadFile(marker)
			if !bytes.Equal(before, after) {
				t.Fatalf("the second request ran: %q then %q", before, after)
			}
			if c.path == wire.WriteFilePath {
				if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "one" {
					t.Fatalf("file holds %q after the second write, want the first's data", b)
				}
				if _, err := os.Stat(filepath.Join(dir, "g")); err == nil {
					t.Fatal("the second write ran")
				}
			}
			if c.wantStatus == 200 && len(lines) > 0 && !lines[len(lines)-1].Replayed {
				t.Fatalf("the same request again was not answered from the record: %+v", lines)
			}
			refused := strings.Contains(logs.String(), "requestId was used for a different request")
			if refused != (c.wantStatus == 409) {
				t.Fatalf("warning logged = %v, want %v:\n%s", refused, c.wantStatus == 409, logs)
			}
		})
	}
}

// While a request runs, another request under its id is refused at once;
// the same request waits for the result.
func TestReusedRequestIDWhileRunning(t *testing.T) {
	a, srv, _ := newLoggedAgent(t)
	gate := filepath.Join(t.TempDir(), "go")
	first := wire.Exec{RequestID: "slow", Argv: []string{"sh", "-c", `while [ ! -f "$1" ]; do sleep 0.02; done; echo done`, "sh", gate}}
	done := make(chan []wire.Line, 1)
	go func() { _, lines := call(t, srv, wire.ExecPath, first); done <- lines }()
	for end := time.Now().Add(30 * time.Second); ; {
		a.results.mu.Lock()
		_, running := a.results.running["slow"]
		a.results.mu.Unlock()
		if running {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the first request did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	other := first
	other.Argv = []string{"sh", "-c", "echo other"}
	resp, _ := call(t, srv, wire.ExecPath, other)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("another request under a running id: HTTP %d, want 409", resp.StatusCode)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	lines := <-done
	if r := lines[len(lines)-1].Exec; r == nil || !strings.Contains(r.Output, "done") {
		t.Fatalf("first request: %+v", lines)
	}
}

// A record without a request hash (from an agent older than hashes)
// cannot be matched to a request: it is refused, not replayed.
func TestRecordWithoutHashRefused(t *testing.T) {
	a, srv, _ := newLoggedAgent(t)
	old, _ := json.Marshal(wire.Line{Exec: &wire.ExecResult{ExitCode: 0, Output: "old"}})
	if err := os.WriteFile(a.results.path("legacy"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	resp, _ := call(t, srv, wire.ExecPath, wire.Exec{RequestID: "legacy", Argv: []string{"touch", marker}})
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("HTTP %d, want 409", resp.StatusCode)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the refused request ran")
	}
}
