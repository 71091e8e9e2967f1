package agentclient

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/agenttest"
)

func TestMain(m *testing.M) {
	agent.RunHelper()
	os.Exit(m.Run())
}

// newAgent makes an agent with a certificate from a fresh CA.
func newAgent(t *testing.T) (*agent.Agent, *pki.Authority) {
	t.Helper()
	a, ca, _ := agenttest.New(t, wire.Config{MaxDownloadBytes: 1 << 20})
	return a, ca
}

// start returns the agent's API handler, without its TLS, for the tests
// of retries and streams.
func start(t *testing.T) http.Handler {
	a, _ := newAgent(t)
	return a.Handler()
}

// serveTLS runs the agent on loopback with its mutual TLS.
func serveTLS(t *testing.T) (string, *pki.Authority) {
	a, ca := newAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String(), ca
}

// Over mutual TLS the client works with the manager's certificate, and a
// refused handshake is named as such, at once, not as a gone agent.
func TestMutualTLS(t *testing.T) {
	base, ca := serveTLS(t)
	ctx := context.Background()
	if _, err := New(base, WithTLS(ca.ClientTLS("127.0.0.1", nil))).Health(ctx); err != nil {
		t.Fatal(err)
	}
	other, err := pki.Open(t.TempDir(), pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	var gone *AgentGoneError
	for name, cfg := range map[string]*tls.Config{
		"another CA's manager":        other.ClientTLS("127.0.0.1", nil),
		"certificate of another host": ca.ClientTLS("10.9.9.9", nil),
		"no client certificate":       {RootCAs: ca.Pool()},
		"agent refused by check":      ca.ClientTLS("127.0.0.1", func(*x509.Certificate) error { return errors.New("not this one") }),
	} {
		_, err := New(base, WithTLS(cfg), WithRetries(2), WithBackoff(time.Millisecond)).Health(ctx)
		if !errors.Is(err, ErrHandshake) || errors.As(err, &gone) {
			t.Errorf("%s: %v, want ErrHandshake", name, err)
		}
	}
}

func TestClient(t *testing.T) {
	srv := httptest.NewServer(start(t))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL)
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x", "f.txt")
	if err := c.WriteFile(ctx, WriteFileRequest{RequestID: "w1", Path: p, Data: []byte("0123456789")}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.ReadFile(ctx, p, 4); err != nil || string(b) != "6789" {
		t.Fatalf("tail read %q %v", b, err)
	}
	if _, err := c.ReadFile(ctx, filepath.Join(dir, "nope"), 0); !errors.Is(err, sdk.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	var out bytes.Buffer
	res, err := c.Exec(ctx, ExecRequest{RequestID: "e1", TaskID: "5", Command: sdk.Command{Argv: []string{"sh", "-c", "echo hi; exit 4"}}}, &out)
	if err != nil || res.ExitCode != 4 || out.String() != "hi\n" || !strings.HasSuffix(res.LogPath, "task-5.log") {
		t.Fatalf("exec %+v %q %v", res, out.String(), err)
	}
	if _, err := c.Exec(ctx, ExecRequest{RequestID: "e2", Command: sdk.Command{Argv: []string{"sleep", "5"}, Timeout: 100 * time.Millisecond}}, nil); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("timeout: %v", err)
	}
}

// A connection cut in the middle of a stream is retried with the same
// requestId, and the command still runs once.
func TestRetryAfterDrop(t *testing.T) {
	h := start(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Let the agent start the command, then drop the connection.
			ctx, cancel := context.WithCancel(r.Context())
			go func() { time.Sleep(50 * time.Millisecond); cancel() }()
			h.ServeHTTP(httptest.NewRecorder(), r.WithContext(ctx))
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "count")
	c := New(srv.URL, WithBackoff(10*time.Millisecond))
	res, err := c.Exec(context.Background(), ExecRequest{RequestID: "once", Command: sdk.Command{Argv: []string{"sh", "-c", `sleep 0.3; echo ran >> "$1"`, "sh", file}}}, nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if calls.Load() < 2 {
		t.Fatalf("no retry happened (%d calls)", calls.Load())
	}
	b, _ := os.ReadFile(file)
	if n := strings.Count(string(b), "ran"); n != 1 {
		t.Fatalf("ran %d times", n)
	}
}

// An agent that is not running is named as such once the retries are spent.
func TestAgentGone(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c := New(base, WithRetries(2), WithBackoff(time.Millisecond))
	_, err := c.Exec(context.Background(), ExecRequest{RequestID: "x", Command: sdk.Command{Argv: []string{"true"}}}, nil)
	var gone *AgentGoneError
	if !errors.As(err, &gone) || !strings.Contains(err.Error(), "agent on 127.0.0.1 is not running or not reachable") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("want the agent named as gone, with the cause: %v", err)
	}
	// An agent that answers with an error is not gone.
	live := httptest.NewServer(start(t))
	defer live.Close()
	if _, err := New(live.URL).ReadFile(context.Background(), "/no/such/file", 0); err == nil || errors.As(err, &gone) {
		t.Fatalf("a live agent reported gone: %v", err)
	}
}

// TestKeepAlive pins how a silent host is noticed: probes start after the
// configured silence and the connection breaks after three more intervals,
// about twice the setting (30 s by default).
func TestKeepAlive(t *testing.T) {
	cases := []struct {
		in             time.Duration
		idle, interval time.Duration
	}{
		{DefaultKeepAlive, 15 * time.Second, 5 * time.Second},
		{0, 15 * time.Second, 5 * time.Second},
		{30 * time.Second, 30 * time.Second, 10 * time.Second},
		{2 * time.Second, 2 * time.Second, time.Second}, // TCP counts whole seconds
	}
	for _, c := range cases {
		got := keepAlive(c.in)
		if !got.Enable || got.Idle != c.idle || got.Interval != c.interval || got.Count != 3 {
			t.Errorf("keepAlive(%v) = %+v, want idle %v, interval %v, 3 probes", c.in, got, c.idle, c.interval)
		}
	}
}

// TestRetriesOption: a request whose connection keeps dropping is sent
// WithRetries+1 times, then fails.
func TestRetriesOption(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	for _, retries := range []int{0, 3} {
		n.Store(0)
		c := New(srv.URL, WithRetries(retries), WithBackoff(time.Millisecond))
		if _, err := c.Health(context.Background()); err == nil {
			t.Fatalf("retries %d: want an error from a server that drops every connection", retries)
		}
		if got := n.Load(); got != int32(retries+1) {
			t.Errorf("retries %d: sent %d times, want %d", retries, got, retries+1)
		}
	}
}

// The agent's 409 for a request id reused for another request surfaces as
// ErrRequestIDReused, saying so, for every kind of call; nothing is retried.
func TestRequestIDReused(t *testing.T) {
	srv := httptest.NewServer(start(t))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL, WithBackoff(time.Millisecond))
	dir := t.TempDir()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.URL.Path)) }))
	defer files.Close()
	exec := func(id, word string) error {
		_, err := c.Exec(ctx, ExecRequest{RequestID: id, Command: sdk.Command{Argv: []string{"echo", word}}}, nil)
		return err
	}
	write := func(id, data string) error {
		return c.WriteFile(ctx, WriteFileRequest{RequestID: id, Path: filepath.Join(dir, "f"), Data: []byte(data)})
	}
	download := func(id, name string) error {
		_, err := c.Download(ctx, DownloadRequest{RequestID: id, Download: sdk.Download{URL: files.URL + "/" + name, Dest: filepath.Join(dir, "d")}}, nil)
		return err
	}
	cases := []struct {
		name          string
		first, second func() error
		reused        bool
	}{
		{"exec, same", func() error { return exec("e", "a") }, func() error { return exec("e", "a") }, false},
		{"exec, other command", func() error { return exec("e", "a") }, func() error { return exec("e", "b") }, true},
		{"write, other data", func() error { return write("w", "a") }, func() error { return write("w", "b") }, true},
		{"download, other url", func() error { return download("d", "a") }, func() error { return download("d", "b") }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.first(); err != nil {
				t.Fatal(err)
			}
			err := tc.second()
			if got := errors.Is(err, ErrRequestIDReused); got != tc.reused {
				t.Fatalf("second call: %v; reused = %v, want %v", err, got, tc.reused)
			}
			if tc.reused && !strings.Contains(err.Error(), "request id was reused for another request") {
				t.Fatalf("message does not say what happened: %v", err)
			}
		})
	}
}

// Download hands the agent the SHA-512 to check and reports the one it
// computed; a mismatch comes back naming both sums, and a password in the
// URL is not in the error.
func TestDownloadSHA512(t *testing.T) {
	srv := httptest.NewServer(start(t))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL, WithBackoff(time.Millisecond))
	pkg := []byte("a package")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer files.Close()
	sum := sha512.Sum512(pkg)
	good := hex.EncodeToString(sum[:])
	dir := t.TempDir()
	res, err := c.Download(ctx, DownloadRequest{RequestID: "ok", Download: sdk.Download{URL: files.URL + "/p", SHA512: good, Dest: filepath.Join(dir, "ok")}}, nil)
	if err != nil || res.SHA512 != good {
		t.Fatalf("download with the right SHA-512: %+v, %v", res, err)
	}
	bad := strings.Repeat("0", 128)
	url := strings.Replace(files.URL, "http://", "http://u:pw-secret@", 1) + "/q"
	_, err = c.Download(ctx, DownloadRequest{RequestID: "bad", Download: sdk.Download{URL: url, SHA512: bad, Dest: filepath.Join(dir, "bad")}}, nil)
	if err == nil || !strings.Contains(err.Error(), "SHA-512 is "+good+", expected "+bad) || strings.Contains(err.Error(), "pw-secret") {
		t.Fatalf("download with a wrong SHA-512: %v; want the mismatch, without the password", err)
	}
}

func TestSetDesiredAndUninstall(t *testing.T) {
	srv := httptest.NewServer(start(t))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL, WithRetries(0))
	if err := c.SetDesired(ctx, wire.DesiredRole{Role: "FE", State: wire.DesiredStopped}); err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if err := c.SetDesired(ctx, wire.DesiredRole{Role: "FE", State: "up"}); !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Msg, "state") {
		t.Fatalf("bad state: %v, want a 400 naming the state", err)
	}
	// The test agent's data dir is not <installDir>/agent/data: refused.
	if err := c.Uninstall(ctx, wire.Uninstall{}); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("uninstall of a foreign layout: %v, want 400", err)
	}
}
