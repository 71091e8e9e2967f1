// Command doris-role-fe is the Doris Manager role plugin for Doris frontends.
package main

import (
	"github.com/dorismanager/dorismanager/plugins/fe/ferole"
	"github.com/dorismanager/dorismanager/sdk"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "0.0.0-dev"

func main() { sdk.Serve(ferole.New(version)) }
