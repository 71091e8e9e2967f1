// Command doris-role-be is the Doris Manager role plugin for Doris backends.
package main

import (
	"github.com/dorismanager/dorismanager/plugins/be/berole"
	"github.com/dorismanager/dorismanager/plugins/internal/pluginmain"
)

// version is the plugin's semver (its pins resolve on it), set at build
// time: -ldflags "-X main.version=..."; the build's own version is
// internal/buildinfo's.
var version = "0.0.0-dev"

func main() { pluginmain.Serve("doris-role-be", version, berole.New(version)) }
