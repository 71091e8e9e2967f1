// Package buildinfo is the one version every binary of the project
// reports: the manager, the agent and the role plugins. The Makefile
// stamps it from git describe:
//
//	-ldflags "-X github.com/dorismanager/dorismanager/internal/buildinfo.version=v1.2.0-3-gabcdef0
//	          -X github.com/dorismanager/dorismanager/internal/buildinfo.commit=abcdef0..."
//
// A binary built otherwise (go install, go build with VCS stamping) falls
// back to what the Go toolchain recorded.
package buildinfo

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at link time (-X); empty when the build did not stamp them.
var (
	version string
	commit  string
)

// Info is what a binary says about its build.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// Get answers this binary's build: the stamped version and commit, else
// the module version and VCS revision the toolchain recorded, else "dev"
// and "unknown".
func Get() Info {
	i := Info{Version: version, Commit: commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if i.Version != "" && i.Commit != "" {
		return i
	}
	var bi *debug.BuildInfo
	if b, ok := debug.ReadBuildInfo(); ok {
		bi = b
	}
	return fill(i, bi)
}

// fill completes what the link did not stamp from the build information.
func fill(i Info, bi *debug.BuildInfo) Info {
	if bi != nil {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		if i.Commit == "" {
			var rev string
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if rev != "" && modified {
				rev += "-dirty"
			}
			i.Commit = rev
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}

// WriteText writes the build as lines for people, the first naming the
// program.
func (i Info) WriteText(w io.Writer, program string) error {
	_, err := fmt.Fprintf(w, "%s %s\ncommit:  %s\ngo:      %s\nos/arch: %s/%s\n", program, i.Version, i.Commit, i.Go, i.OS, i.Arch)
	return err
}

// WriteJSON writes the build as one JSON object.
func (i Info) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(i)
}
