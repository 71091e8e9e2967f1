package agents

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// roles is a role catalogue whose answer can be switched off.
type roles struct{ broken atomic.Bool }

func (c *roles) Catalogue(context.Context, int64) (map[string]sdk.Info, error) {
	if c.broken.Load() {
		return nil, errors.New("no catalogue")
	}
	return map[string]sdk.Info{
		"FE":       {Role: "FE", PidFile: "bin/fe.pid"},
		"EXPORTER": {Role: "EXPORTER", PidFile: "run/exporter.pid"},
		"NOPID":    {Role: "NOPID"},
	}, nil
}

// The agent reports the pid files of the roles recorded on its host, as
// the roles' plugins name them, and nothing of other hosts' roles.
func TestAgentReportsThePidFilesTheManagerNames(t *testing.T) {
	cat := &roles{}
	e := setupWith(t, func(c *Config) { c.Catalogue = cat })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fe/bin/fe.pid", strconv.Itoa(os.Getpid()))
	write("exporter/run/exporter.pid", "2147483646\n") // no such process
	for _, r := range []store.AgentRole{
		{ClusterID: 1, Host: "127.0.0.1", Role: "FE", InstallDir: filepath.Join(base, "fe")},
		{ClusterID: 1, Host: "127.0.0.1", Role: "EXPORTER", InstallDir: filepath.Join(base, "exporter")},
		{ClusterID: 1, Host: "127.0.0.1", Role: "NOPID", InstallDir: filepath.Join(base, "nopid")},
		{ClusterID: 1, Host: "127.0.0.2", Role: "BE", InstallDir: filepath.Join(base, "be")},
		{ClusterID: 2, Host: "127.0.0.1", Role: "EXPORTER", InstallDir: "/elsewhere/exporter"},
	} {
		if err := e.st.UpsertRole(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	got := e.reg.pidFiles(ctx, store.Agent{ClusterID: 1, Host: "127.0.0.1"})
	want := []wire.PidFile{{Role: "EXPORTER", Path: filepath.Join(base, "exporter/run/exporter.pid")}, {Role: "FE", Path: filepath.Join(base, "fe/bin/fe.pid")}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("pid files %+v, want %+v", got, want)
	}
	if got := e.reg.pidFiles(ctx, store.Agent{ClusterID: 3, Host: "127.0.0.1"}); got == nil || len(got) != 0 {
		t.Fatalf("a host without roles: %#v, want an empty list", got)
	}

	run(t, e.install(t, "127.0.0.1", idA))
	reported := func() []wire.Process {
		a, err := e.reg.Get(ctx, 1, "127.0.0.1")
		if err != nil {
			return nil
		}
		var ps []wire.Process
		_ = json.Unmarshal([]byte(a.Processes), &ps)
		return ps
	}
	waitFor(ctx, t, "a heartbeat with the FE and EXPORTER processes", func() bool { return len(reported()) == 2 })
	ps := reported()
	if ps[0] != (wire.Process{Role: "EXPORTER", Pid: 2147483646}) || ps[1] != (wire.Process{Role: "FE", Pid: os.Getpid(), Running: true}) {
		t.Fatalf("processes %+v", ps)
	}
	// Without a catalogue answer the agent keeps watching what it was told.
	cat.broken.Store(true)
	if got := e.reg.pidFiles(ctx, store.Agent{ClusterID: 1, Host: "127.0.0.1"}); got != nil {
		t.Fatalf("pid files without a catalogue: %+v, want nil (keep)", got)
	}
	for range 2 { // two beats later
		before, _ := e.reg.Get(ctx, 1, "127.0.0.1")
		waitFor(ctx, t, "a heartbeat", func() bool {
			a, err := e.reg.Get(ctx, 1, "127.0.0.1")
			return err == nil && a.LastReportedTime != nil && before.LastReportedTime != nil && a.LastReportedTime.After(*before.LastReportedTime)
		})
	}
	if len(reported()) != 2 {
		t.Fatalf("processes after the catalogue failed: %+v", reported())
	}
}
