package roleexec

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/agenttest"
)

func TestMain(m *testing.M) {
	agent.RunHelper() // the agent below re-executes the test binary to set limits
	os.Exit(m.Run())
}

// realAgent runs a real agent's API (without its TLS, tested in agent/)
// and returns it with its data dir.
func realAgent(t *testing.T) (*agentclient.Client, string) {
	t.Helper()
	a, _, cfg := agenttest.New(t, wire.Config{MaxDownloadBytes: 1 << 20})
	return agentclient.New(agenttest.Serve(t, a), agentclient.WithRetries(0)), cfg.DataDir
}

type oneAgent struct{ c *agentclient.Client }

func (o oneAgent) Client(context.Context, int64, string) (*agentclient.Client, error) {
	return o.c, nil
}

func TestStartCaptureKeepsTheDetachedStartAndTheAgentRecordsIt(t *testing.T) {
	client, dataDir := realAgent(t)
	e := New(Config{Agents: oneAgent{client}})
	defer e.Close()
	ctx := context.Background()
	cl := sdk.Cluster{ID: 1, Nodes: []sdk.Node{{Host: "h1", Role: "BE"}}}
	h := CaptureStarts(e.HostWith(client, 7, "t7-a0", io.Discard, cl))
	dir := t.TempDir()
	for _, cmd := range []sdk.Command{
		{Argv: []string{"true"}, Dir: dir},                    // not detached: not a start
		{Argv: []string{"true"}, Dir: dir, Detach: true},      // the start
		{Argv: []string{"false"}, Dir: dir, Detach: true},     // failed: not kept
		{Argv: []string{"sh", "-c", "exit 0"}, Detach: false}, // a later probe
	} {
		if _, err := h.Exec(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	got := h.Command()
	if got == nil || len(got.Argv) != 1 || got.Argv[0] != "true" || !got.Detach || got.Dir != dir {
		t.Fatalf("captured %+v, want the detached successful start", got)
	}
	err := e.RecordDesired(ctx, Desired{ClusterID: 1, Host: "h1", Role: "BE", State: wire.DesiredRunning, Order: RestoreOrder("BE", false),
		Start: got, PidFile: PidFile("/opt/doris/be", "bin/be.pid")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "desired.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]wire.DesiredRole
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	be := rec["BE"]
	if be.State != wire.DesiredRunning || be.Order != 2 || be.PidFile != "/opt/doris/be/bin/be.pid" || be.Start == nil || be.Start.Argv[0] != "true" {
		t.Fatalf("agent recorded %+v", be)
	}
	if err := e.RecordDesired(ctx, Desired{ClusterID: 1, Host: "h1", Role: "BE", State: "bogus"}); err == nil {
		t.Fatal("a bad state was accepted")
	}
}

func TestRestoreOrder(t *testing.T) {
	for _, tc := range []struct {
		role   string
		master bool
		want   int
	}{{"FE", true, 0}, {"FE", false, 1}, {"BE", false, 2}, {"BROKER", false, 2}, {"BE", true, 2}} {
		if got := RestoreOrder(tc.role, tc.master); got != tc.want {
			t.Errorf("RestoreOrder(%s, %v) = %d, want %d", tc.role, tc.master, got, tc.want)
		}
	}
	if PidFile("", "bin/x.pid") != "" || PidFile("/h", "") != "" {
		t.Error("PidFile with an unknown part must be empty")
	}
}

func TestProbeHostChangesNothing(t *testing.T) {
	client, dataDir := realAgent(t)
	e := New(Config{Agents: oneAgent{client}})
	defer e.Close()
	ctx := context.Background()
	h := e.ProbeHost(client, sdk.Cluster{ID: 1})
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"echo", "alive"}})
	if err != nil || res.ExitCode != 0 || !strings.Contains(res.Output, "alive") {
		t.Fatalf("probe exec: %+v %v", res, err)
	}
	if _, err := h.Exec(ctx, sdk.Command{Argv: []string{"true"}, Detach: true}); err == nil {
		t.Error("a probe host started a detached command")
	}
	if err := h.WriteFile(ctx, filepath.Join(t.TempDir(), "x"), []byte("x"), 0o644); err == nil {
		t.Error("a probe host wrote a file")
	}
	if _, err := h.Download(ctx, sdk.Download{URL: "http://127.0.0.1:1/x", Dest: t.TempDir()}); err == nil {
		t.Error("a probe host downloaded")
	}
	if ents, _ := os.ReadDir(filepath.Join(dataDir, "results")); len(ents) != 0 {
		t.Errorf("probes left %d recorded results", len(ents))
	}
}
