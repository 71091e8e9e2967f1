package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPidFileCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    PidFile
		ok   bool
	}{
		{"fe", PidFile{"FE", "/opt/doris/fe/bin/fe.pid"}, true},
		{"third party", PidFile{"EXPORTER", "/opt/doris/exporter/run/exporter.pid"}, true},
		{"no role", PidFile{"", "/a/b.pid"}, false},
		{"long role", PidFile{strings.Repeat("R", MaxText+1), "/a/b.pid"}, false},
		{"control in role", PidFile{"F\nE", "/a/b.pid"}, false},
		{"relative", PidFile{"FE", "fe/bin/fe.pid"}, false},
		{"dot dot", PidFile{"FE", "/opt/doris/../etc/passwd"}, false},
		{"not clean", PidFile{"FE", "/opt//doris/fe.pid"}, false},
		{"root", PidFile{"FE", "/"}, false},
		{"nul", PidFile{"FE", "/opt/fe\x00.pid"}, false},
		{"long path", PidFile{"FE", "/" + strings.Repeat("a", MaxPath)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Check(); (err == nil) != tc.ok {
				t.Fatalf("Check(%+v) = %v, want ok=%v", tc.p, err, tc.ok)
			}
		})
	}
}

// An answer without pidFiles must decode to nil (keep the list), an empty
// one to an empty list (watch nothing).
func TestBeatPidFilesAbsentOrEmpty(t *testing.T) {
	var absent, null, empty Beat
	for s, b := range map[string]*Beat{`{}`: &absent, `{"pidFiles":null}`: &null, `{"pidFiles":[]}`: &empty} {
		if err := json.Unmarshal([]byte(s), b); err != nil {
			t.Fatal(err)
		}
	}
	if absent.PidFiles != nil || null.PidFiles != nil || empty.PidFiles == nil || len(empty.PidFiles) != 0 {
		t.Fatalf("absent %#v, null %#v, empty %#v", absent.PidFiles, null.PidFiles, empty.PidFiles)
	}
	b, _ := json.Marshal(Beat{PidFiles: []PidFile{}})
	if !strings.Contains(string(b), `"pidFiles":[]`) {
		t.Fatalf("an empty list must be sent as []: %s", b)
	}
}
