// Package pluginmain is the main of the project's role plugins. The
// manager starts a plugin without arguments (the go-plugin handshake) or
// with "describe" (sdk.Serve answers both), so one more argument is free
// for people: "version" prints the plugin's version, the one its pins
// resolve on, and the build it came from.
package pluginmain

import (
	"fmt"
	"io"
	"os"

	"github.com/dorismanager/dorismanager/internal/buildinfo"
	"github.com/dorismanager/dorismanager/sdk"
)

// VersionArg is the argument that prints the version and exits.
const VersionArg = "version"

// Serve is a plugin's whole main: name is its binary's name
// (doris-role-fe), version its semver (sdk.Info.Version).
func Serve(name, version string, role sdk.Role) {
	if len(os.Args) == 2 && os.Args[1] == VersionArg {
		if err := WriteVersion(os.Stdout, name, version, buildinfo.Get()); err != nil {
			os.Exit(1)
		}
		return
	}
	sdk.Serve(role)
}

// WriteVersion writes the plugin's version and plugin API, then the build.
func WriteVersion(w io.Writer, name, version string, b buildinfo.Info) error {
	_, err := fmt.Fprintf(w, "%s %s (plugin API %d.%d)\nbuild:   %s\ncommit:  %s\ngo:      %s\nos/arch: %s/%s\n",
		name, version, sdk.APIMajor, sdk.APIMinor, b.Version, b.Commit, b.Go, b.OS, b.Arch)
	return err
}
