// Command doris-role-broker is the Doris Manager role plugin for Doris (apache_hdfs_broker) brokers.
package main

import (
	"github.com/dorismanager/dorismanager/plugins/broker/brokerrole"
	"github.com/dorismanager/dorismanager/plugins/internal/pluginmain"
)

// version is the plugin's semver (its pins resolve on it), set at build
// time: -ldflags "-X main.version=..."; the build's own version is
// internal/buildinfo's.
var version = "0.0.0-dev"

func main() { pluginmain.Serve("doris-role-broker", version, brokerrole.New(version)) }
