// Command doris-role-broker is the Doris Manager role plugin for Doris (apache_hdfs_broker) brokers.
package main

import (
	"github.com/dorismanager/dorismanager/plugins/broker/brokerrole"
	"github.com/dorismanager/dorismanager/sdk"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "0.0.0-dev"

func main() { sdk.Serve(brokerrole.New(version)) }
