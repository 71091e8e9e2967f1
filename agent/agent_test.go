package agent

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
)

func TestMain(m *testing.M) {
	RunHelper()
	os.Exit(m.Run())
}

// newAgent builds an agent with certificates from a fresh CA and serves its
// API without TLS for the tests of what the API does; tls_test.go tests
// the mutual TLS in front of it.
func newAgent(t *testing.T) (*Agent, *httptest.Server) {
	t.Helper()
	cfg, _ := testConfig(t, "127.0.0.1")
	cfg.HeartbeatSeconds, cfg.MaxDownloadBytes = 1, 1<<20
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv
}

func call(t *testing.T, srv *httptest.Server, path string, body any) (*http.Response, []wire.Line) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []wire.Line
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var l wire.Line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
	}
	return resp, lines
}

func TestExecOnce(t *testing.T) {
	_, srv := newAgent(t)
	file := filepath.Join(t.TempDir(), "count")
	req := wire.Exec{RequestID: "req-1", TaskID: "7", Argv: []string{"sh", "-c", `echo ran >> "$1"; echo out; ulimit -n`, "sh", file}}
	var wg sync.WaitGroup
	for range 3 { // concurrent duplicates wait for the one run
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, lines := call(t, srv, wire.ExecPath, req)
			last := lines[len(lines)-1]
			if last.Exec == nil || last.Exec.ExitCode != 0 || !strings.Contains(last.Exec.Output, "out") {
				t.Errorf("result %+v", last)
			}
		}()
	}
	wg.Wait()
	_, lines := call(t, srv, wire.ExecPath, req)
	if !lines[len(lines)-1].Replayed {
		t.Error("repeat not marked replayed")
	}
	b, _ := os.ReadFile(file)
	if got := strings.Count(string(b), "ran"); got != 1 {
		t.Fatalf("ran %d times", got)
	}
	lp := lines[len(lines)-1].Exec.LogPath
	if lb, err := os.ReadFile(lp); err != nil || !strings.Contains(string(lb), "out") {
		t.Fatalf("task log %s: %q %v", lp, lb, err)
	}
}

func TestExecTimeoutAndExit(t *testing.T) {
	_, srv := newAgent(t)
	_, lines := call(t, srv, wire.ExecPath, wire.Exec{RequestID: "t1", Argv: []string{"sleep", "30"}, TimeoutSeconds: 0.2})
	if r := lines[len(lines)-1].Exec; r == nil || !r.TimedOut {
		t.Fatalf("want timeout, got %+v", lines)
	}
	_, lines = call(t, srv, wire.ExecPath, wire.Exec{RequestID: "t2", Argv: []string{"sh", "-c", "exit 3"}})
	if r := lines[len(lines)-1].Exec; r == nil || r.ExitCode != 3 {
		t.Fatalf("want exit 3, got %+v", lines)
	}
	_, lines = call(t, srv, wire.ExecPath, wire.Exec{RequestID: "t3", Argv: []string{"no-such-program-xyz"}})
	if r := lines[len(lines)-1].Exec; r == nil || r.ExitCode != 127 {
		t.Fatalf("want exit 127, got %+v", lines)
	}
}

func TestFiles(t *testing.T) {
	_, srv := newAgent(t)
	p := filepath.Join(t.TempDir(), "a", "b", "c.conf")
	resp, _ := call(t, srv, wire.WriteFilePath, wire.WriteFile{RequestID: "w1", Path: p, Data: []byte("hello world"), Mode: 0o600})
	if resp.StatusCode != 200 {
		t.Fatalf("write: %d", resp.StatusCode)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v %v", fi, err)
	}
	resp, _ = call(t, srv, wire.ReadFilePath, wire.ReadFile{Path: filepath.Join(filepath.Dir(p), "missing")})
	if resp.StatusCode != 404 {
		t.Fatalf("missing file: %d", resp.StatusCode)
	}
}

func tgz(t *testing.T, name, body string) []byte {
	var raw bytes.Buffer
	zw := gzip.NewWriter(&raw)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	zw.Close()
	return raw.Bytes()
}

func TestDownload(t *testing.T) {
	_, srv := newAgent(t)
	pkg := tgz(t, "pkg/bin/x", "x")
	sum := sha256.Sum256(pkg)
	hits := 0
	var mu sync.Mutex
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 2<<20))
			return
		}
		w.Write(pkg)
	}))
	defer files.Close()
	dir := t.TempDir()
	for i, dest := range []string{"fe", "be"} {
		_, lines := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "d" + dest, URL: files.URL + "/p.tgz", SHA256: hex.EncodeToString(sum[:]), Dest: filepath.Join(dir, dest), Unpack: true})
		last := lines[len(lines)-1]
		if last.Download == nil || last.Download.Cached != (i == 1) {
			t.Fatalf("%s: %+v", dest, lines)
		}
		if _, err := os.Stat(filepath.Join(dir, dest, "pkg/bin/x")); err != nil {
			t.Fatal(err)
		}
	}
	if hits != 1 {
		t.Errorf("downloaded %d times", hits)
	}
	_, lines := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "bad", URL: files.URL + "/p2.tgz", SHA256: strings.Repeat("0", 64), Dest: filepath.Join(dir, "x")})
	if l := lines[len(lines)-1]; !strings.Contains(l.Error, "SHA-256") {
		t.Errorf("checksum mismatch: %+v", l)
	}
	_, lines = call(t, srv, wire.DownloadPath, wire.Download{RequestID: "big", URL: files.URL + "/big", Dest: filepath.Join(dir, "big")})
	if l := lines[len(lines)-1]; !strings.Contains(l.Error, "limit") {
		t.Errorf("size cap: %+v", l)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{16642998272: "15.5 GiB", 512: "512 B", 1536: "1.5 KiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
	h := Hardware("/tmp", "")
	if h.Cores == 0 || h.TotalMemoryBytes == 0 || len(h.Disks) == 0 {
		t.Errorf("hardware %+v", h)
	}
}

// A partial download left by an agent that died is removed by the next one.
func TestNewClearsPartialDownloads(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := testConfig(t, "127.0.0.1")
	cfg.DataDir = dir
	if _, err := New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "tmp", "dl-123")
	if err := os.WriteFile(left, []byte("half a package"), 0o600); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "agent-id")
	id, err := os.ReadFile(keep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("partial download still there: %v", err)
	}
	if again, err := os.ReadFile(keep); err != nil || string(again) != string(id) {
		t.Fatalf("identity changed: %q -> %q (%v)", id, again, err)
	}
}
