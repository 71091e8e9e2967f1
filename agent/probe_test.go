package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// Probes run every time, leave no record and no task log, and start nothing.
func TestProbeIsNeitherRecordedNorLogged(t *testing.T) {
	a, srv := newAgent(t)
	for i, argv := range [][]string{{"echo", "one"}, {"echo", "two"}} {
		// The same request id twice with other commands: a recorded exec
		// would refuse the second one (409).
		_, lines := call(t, srv, wire.ExecPath, wire.Exec{RequestID: "probe-1", TaskID: "probe", Argv: argv, Probe: true})
		last := lines[len(lines)-1]
		if last.Exec == nil || last.Exec.ExitCode != 0 || !strings.Contains(last.Exec.Output, argv[1]) || last.Replayed || last.Exec.LogPath != "" {
			t.Fatalf("probe %d: %+v", i, last)
		}
	}
	if _, err := os.Stat(filepath.Join(a.cfg.DataDir, "results", "probe-1.json")); !os.IsNotExist(err) {
		t.Fatalf("a probe was recorded: %v", err)
	}
	if _, err := os.Stat(a.taskLog("probe")); !os.IsNotExist(err) {
		t.Fatalf("a probe wrote a task log: %v", err)
	}
	resp, _ := call(t, srv, wire.ExecPath, wire.Exec{RequestID: "probe-2", Argv: []string{"true"}, Probe: true, Detach: true})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a detached probe: HTTP %d, want 400", resp.StatusCode)
	}
}
