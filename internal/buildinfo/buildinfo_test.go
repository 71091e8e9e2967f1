package buildinfo

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFill(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name          string
		stamped       Info
		bi            *debug.BuildInfo
		version, comm string
	}{
		{"stamped wins", Info{Version: "v1.2.0-3-gabc", Commit: "abc"}, vcs("fff", "false"), "v1.2.0-3-gabc", "abc"},
		{"nothing known", Info{}, nil, "dev", "unknown"},
		{"local build records no version", Info{}, vcs("", "false"), "dev", "unknown"},
		{"vcs revision", Info{Version: "v1"}, vcs("abc123", "false"), "v1", "abc123"},
		{"vcs revision of a changed tree", Info{}, vcs("abc123", "true"), "dev", "abc123-dirty"},
		{"go install at a tag", Info{}, &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0", "unknown"},
	} {
		got := fill(tc.stamped, tc.bi)
		if got.Version != tc.version || got.Commit != tc.comm {
			t.Errorf("%s: got %q %q, want %q %q", tc.name, got.Version, got.Commit, tc.version, tc.comm)
		}
	}
}

func TestWrite(t *testing.T) {
	i := Info{Version: "v1.0.0", Commit: "abc", Go: "go1.26", OS: "linux", Arch: "arm64"}
	var b bytes.Buffer
	if err := i.WriteText(&b, "doris-agent"); err != nil {
		t.Fatal(err)
	}
	if want := "doris-agent v1.0.0\ncommit:  abc\ngo:      go1.26\nos/arch: linux/arm64\n"; b.String() != want {
		t.Errorf("text %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := i.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Info
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back != i || !strings.Contains(b.String(), `"arch":"arm64"`) {
		t.Errorf("json %s: %+v %v", b.String(), back, err)
	}
}
