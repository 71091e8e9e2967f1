package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
)

// A few simulated agents against the real registry behind its mutual-TLS
// listener: every beat is acknowledged, and the store has their times.
func TestSimAgainstRegistry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ca, err := pki.Open(dir, pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCluster(ctx, "sim")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := Provision(ctx, st, ca, []int64{c.ID}, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := agents.New(agents.Config{Store: st, PKI: ca, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.StripPrefix("/agent-api/v1", reg.Handler()))
	srv.TLS = ca.AgentEndpointTLS()
	srv.StartTLS()
	defer srv.Close()
	defer reg.Close()

	sim, err := NewSim(SimConfig{URLs: []string{srv.URL}, ServerName: "127.0.0.1", Bundle: ca.Bundle(), Identities: ids, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.Register(ctx, 2); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	sim.Beat(bctx)
	cancel()
	reg.Flush(ctx)
	if e := sim.Errors(); len(e) != 0 {
		t.Errorf("errors %v, want none", e)
	}
	if sent, acked := sim.Sent.Load(), sim.Acked.Load(); sent == 0 || acked != sent {
		t.Errorf("sent %d, acked %d: want every beat acknowledged", sent, acked)
	}
	as, err := st.ListAgents(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != len(ids) {
		t.Fatalf("%d agents recorded, want %d", len(as), len(ids))
	}
	for _, a := range as {
		if a.Status != store.AgentRunning || a.LastReportedTime == nil || a.RegisterTime == nil {
			t.Errorf("agent %s: status %s, registered %v, last report %v; want RUNNING with both times", a.Host, a.Status, a.RegisterTime, a.LastReportedTime)
		}
	}
}

// A certificate the manager's record does not know is refused (401), and
// the simulator counts it as such.
func TestSimCountsRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ca, err := pki.Open(dir, pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCluster(ctx, "sim")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := Provision(ctx, st, ca, []int64{c.ID}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Provisioning again revokes the first certificate of the same host.
	if _, err := Provision(ctx, st, ca, []int64{c.ID}, 1, 1); err != nil {
		t.Fatal(err)
	}
	reg, err := agents.New(agents.Config{Store: st, PKI: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv := httptest.NewUnstartedServer(http.StripPrefix("/agent-api/v1", reg.Handler()))
	srv.TLS = ca.AgentEndpointTLS()
	srv.StartTLS()
	defer srv.Close()
	sim, err := NewSim(SimConfig{URLs: []string{srv.URL}, ServerName: "127.0.0.1", Bundle: ca.Bundle(), Identities: ids, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	err = sim.Register(ctx, 1)
	if err == nil || ErrorKind(err) != "HTTP 401" {
		t.Fatalf("register with a revoked certificate: %v (kind %q), want HTTP 401", err, kindOf(err))
	}
}

func kindOf(err error) string {
	if err == nil {
		return ""
	}
	return ErrorKind(err)
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&statusError{503, "x"}, "HTTP 503"},
		{fmt.Errorf("post: %w", &statusError{401, "revoked"}), "HTTP 401"},
		{context.DeadlineExceeded, "timeout"},
		{&net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}, "refused"},
		{errors.New("read: connection reset by peer"), "reset"},
		{fmt.Errorf("x: %w", errors.New("unexpected EOF")), "eof"},
		{errors.New("something else"), "other"},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestParseProc(t *testing.T) {
	// Field 2 holds spaces and a ")"; utime 150, stime 50 ticks.
	stat := []byte("1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 8 0 100 1000 200")
	d, err := parseStatCPU(stat)
	if err != nil || d != 2*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 2s", d, err)
	}
	if p := parentOf(stat); p != 1 {
		t.Errorf("parentOf = %d, want 1", p)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Error("parseStatCPU of a short line: no error")
	}
	rss, err := parseRSS([]byte("Name:\tx\nVmRSS:\t  2048 kB\nThreads:\t4\n"))
	if err != nil || rss != 2048<<10 {
		t.Errorf("parseRSS = %d, %v; want %d", rss, err, 2048<<10)
	}
	if _, err := parseRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("parseRSS without VmRSS: no error")
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(201-i)*time.Millisecond)
	}
	s := Summarize(d)
	if s.N != 200 || s.P50 != 100*time.Millisecond || s.P99 != 198*time.Millisecond || s.Max != 200*time.Millisecond {
		t.Errorf("Summarize = %+v; want n 200, p50 100ms, p99 198ms, max 200ms", s)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("Summarize(nil) is not empty")
	}
}
