// Command doris-role-be is the Doris Manager role plugin for Doris backends.
package main

import (
	"github.com/dorismanager/dorismanager/plugins/be/berole"
	"github.com/dorismanager/dorismanager/sdk"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "0.0.0-dev"

func main() { sdk.Serve(berole.New(version)) }
