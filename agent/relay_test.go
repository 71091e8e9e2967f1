package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// A download via the manager goes to the manager's relay with the agent's
// certificate over mutual TLS, resumes a transfer that broke off where it
// stopped, and checks the package's sum.
func TestDownloadViaManagerResumes(t *testing.T) {
	cfg, ca := testConfig(t, "127.0.0.1")
	cfg.HeartbeatSeconds, cfg.MaxDownloadBytes = 1, 1<<20
	body := []byte(strings.Repeat("package bytes ", 5000))
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])

	var mu sync.Mutex
	var ranges, agents []string
	mgr := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := len(ranges) == 0
		ranges = append(ranges, r.Header.Get("Range"))
		agents = append(agents, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.URL.RequestURI())
		mu.Unlock()
		if first {
			// Promise the whole package, send a third, and hang up.
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:len(body)/3])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(body)))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mgr.TLSConfig = ca.AgentEndpointTLS()
	go func() { _ = mgr.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { mgr.Close() })
	cfg.ServerURL = "https://" + ln.Addr().String()
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)

	dest := filepath.Join(t.TempDir(), "pkg.tar")
	req := wire.Download{RequestID: "r1", TaskID: "42", URL: "http://mirror.invalid/doris.tar.gz", SHA256: want, Dest: dest, ViaManager: true}
	_, lines := call(t, srv, wire.DownloadPath, req)
	last := lines[len(lines)-1]
	if last.Download == nil || last.Download.SHA256 != want || last.Download.Bytes != int64(len(body)) {
		t.Fatalf("download via the manager: %+v", last)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(body) {
		t.Errorf("dest holds %d bytes, want the package's %d", len(got), len(body))
	}
	mu.Lock()
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=%d-", len(body)/3) {
		t.Errorf("Range headers %q, want none then bytes=%d-", ranges, len(body)/3)
	}
	if !strings.HasPrefix(agents[0], "test-agent "+wire.PackagesPath+want+"?task=42") {
		t.Errorf("request %q, want the agent's certificate and the package's path", agents[0])
	}
	mu.Unlock()

	// A sum the manager's bytes do not have fails and leaves no part to
	// resume from.
	bad := strings.Repeat("0", 64)
	_, lines = call(t, srv, wire.DownloadPath, wire.Download{RequestID: "r2", TaskID: "42", URL: "http://mirror.invalid/other.tar.gz",
		SHA256: bad, Dest: dest + "2", ViaManager: true})
	last = lines[len(lines)-1]
	if last.Download != nil || !strings.Contains(last.Error, "SHA-256 is "+want) {
		t.Errorf("wrong sum via the manager: %+v", last)
	}
	parts, _ := filepath.Glob(filepath.Join(cfg.DataDir, "cache", "*.part"))
	if len(parts) != 0 {
		t.Errorf("parts left after a refused package: %v", parts)
	}
	// No sum, no download via the manager.
	resp, _ := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "r3", TaskID: "42", URL: "http://mirror.invalid/x", Dest: dest + "3", ViaManager: true})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("via the manager without sha256: HTTP %d, want 400", resp.StatusCode)
	}
}
