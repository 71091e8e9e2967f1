// Command doris-role-exporter is an example of a third-party role plugin for
// Doris Manager: it installs and runs the Prometheus node exporter on the
// hosts of a Doris cluster. It depends on the plugin SDK only.
package main

import "github.com/dorismanager/dorismanager/sdk"

// version is stamped at build time: -ldflags "-X main.version=1.0.0".
var version = "0.1.0"

func main() { sdk.Serve(New(version)) }
