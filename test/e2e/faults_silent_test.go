package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultHostSilentMidTask cuts one host off the network while its
// INSTALL_SERVICE tasks are downloading (the download is held midway by
// the package server): no RST, no refusal, its packets are simply dropped,
// as when a host loses power or its cable. The manager's streams to that
// agent must break on TCP keepalive and the re-sends must give up, so the
// tasks end FAILURE naming the agent as not reachable well within a
// minute, not at the 30-minute task timeout. The manager runs with short
// --agent-keepalive/--agent-connect-timeout/--agent-retries so this takes
// seconds; the defaults are the same mechanism at production scale. Once
// the host is back, retry succeeds, nothing ran twice and the wizard
// finishes with a healthy cluster.
func TestFaultHostSilentMidTask(t *testing.T) {
	t.Parallel()
	// Each host downloads the package itself (no relay through the
	// manager): the fault is a host going silent mid-download.
	s := start(t, sandbox.Options{ManagerArgs: []string{"--package-relay", "off", "--agent-keepalive", "2s", "--agent-connect-timeout", "2s",
		"--agent-retries", "2", "--agent-retry-backoff", "100ms"}})
	ctx, cancel := deadline.Context(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	h1 := s.Hosts.Hosts[0]

	ss, err := s.StartStallServer(h1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, ss.URL)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	select {
	case ip := <-ss.Stalled():
		if ip != h1.Addr {
			t.Fatalf("a download from %s was held, want only %s", ip, h1.Addr)
		}
	case <-ctx.Done():
		t.Fatal("the download of h1 never started")
	}
	ts, err := c.CurrentTasks(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	var onH1 []int64
	for _, tk := range ts {
		if tk.Host == h1.Addr {
			onH1 = append(onH1, tk.ID)
			if tk.Status != "RUNNING" {
				t.Fatalf("task %d %s on h1 is %s while its download is held, want RUNNING", tk.ID, tk.TaskType, tk.Status)
			}
		}
	}
	if len(onH1) != 2 {
		t.Fatalf("want the FE and BE install tasks on h1, got %v", onH1)
	}

	if err := h1.SetReachable(ctx, false); err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			_ = h1.SetReachable(context.Background(), true)
		}
	})
	// The cut must be silence, not a refusal: a connection attempt to the
	// agent times out instead of failing at once.
	agentAddr := net.JoinHostPort(h1.Addr, "9602")
	d := net.Dialer{Timeout: time.Second}
	if conn, err := d.DialContext(ctx, "tcp", agentAddr); err == nil {
		conn.Close()
		t.Fatalf("the cut host still accepts connections at %s", agentAddr)
	} else if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the cut host answered instead of staying silent: %v", err)
	}
	cut := time.Now()

	// Far below the 30-minute task timeout: keepalive (~5 s here), then
	// three connection attempts of 2 s for each call the plugin makes.
	wctx, wcancel := deadline.Context(ctx, 45*time.Second)
	ts, err = c.WaitStep(wctx, pid, nil)
	wcancel()
	if err != nil {
		t.Fatalf("tasks did not end with h1 silent: %v", err)
	}
	t.Logf("the step ended %v after the cut", time.Since(cut).Round(100*time.Millisecond))
	for _, tk := range ts {
		resp := sandbox.Str(tk.Response)
		switch {
		case tk.Host != h1.Addr && tk.Status != "SUCCESS":
			t.Errorf("task %d %s on %s: %s: %s", tk.ID, tk.TaskType, tk.Host, tk.Status, resp)
		case tk.Host == h1.Addr && tk.Status != "FAILURE":
			t.Errorf("task %d %s on h1 is %s with the host silent, want FAILURE", tk.ID, tk.TaskType, tk.Status)
		case tk.Host == h1.Addr && !strings.Contains(resp, "the agent on "+h1.Addr+" is not running or not reachable"):
			t.Errorf("task %d %s on h1: response does not name the unreachable agent: %s", tk.ID, tk.TaskType, resp)
		case tk.Host == h1.Addr:
			t.Logf("task %d %s on h1: %s", tk.ID, tk.TaskType, resp)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The host comes back with its agent still running; retry succeeds.
	if err := h1.SetReachable(ctx, true); err != nil {
		t.Fatal(err)
	}
	restored = true
	ss.Release()
	ts = retryAll(ctx, t, c, pid, onH1)
	for _, h := range s.Hosts.Hosts {
		if got := ss.Completed(h.Addr); got != 1 {
			t.Errorf("%s received the whole package %d times, want 1", h.Addr, got)
		}
	}
	assertNoHalfInstall(t, h1)

	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster after the wizard: %v", err)
	}
}
