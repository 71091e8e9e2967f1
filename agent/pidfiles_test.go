package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
)

func TestProcessesFromTheNamedPidFiles(t *testing.T) {
	a, _ := newAgent(t)
	if ps := a.processes(); len(ps) != 0 {
		t.Fatalf("before the manager named pid files: %+v", ps)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self := write("self.pid", strconv.Itoa(os.Getpid())+"\n")
	gone := write("gone.pid", "2147483646")
	junk := write("junk.pid", "not a pid")
	big := write("big.pid", strings.Repeat("1", 100))
	a.watch([]wire.PidFile{
		{Role: "EXPORTER", Path: self},
		{Role: "BE", Path: gone},
		{Role: "FE", Path: junk},
		{Role: "BROKER", Path: big},
		{Role: "X", Path: filepath.Join(dir, "missing.pid")},
		{Role: "BAD", Path: "relative/x.pid"}, // dropped by Check
	})
	ps := a.processes()
	if len(ps) != 2 || ps[0] != (wire.Process{Role: "EXPORTER", Pid: os.Getpid(), Running: true}) ||
		ps[1] != (wire.Process{Role: "BE", Pid: 2147483646, Running: false}) {
		t.Fatalf("processes %+v", ps)
	}
	// nil keeps the list; an empty one clears it.
	a.watch(nil)
	if len(a.processes()) != 2 {
		t.Fatal("an answer without pidFiles changed the list")
	}
	a.watch([]wire.PidFile{})
	if ps := a.processes(); len(ps) != 0 {
		t.Fatalf("after an empty list: %+v", ps)
	}
	// Never more than the manager accepts in a report.
	many := make([]wire.PidFile, wire.MaxProcesses+5)
	for i := range many {
		many[i] = wire.PidFile{Role: "R" + strconv.Itoa(i), Path: self}
	}
	a.watch(many)
	if n := len(a.processes()); n != wire.MaxProcesses {
		t.Fatalf("%d processes reported, want %d", n, wire.MaxProcesses)
	}
}
