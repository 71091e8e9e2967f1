// Command miniplugin serves minirole; built by sdktest's tests, with
// -X main.mode=exit|hang|crash to misbehave when started as a plugin
// ("describe" still answers).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest/internal/minirole"
)

var (
	version = "1.0.0"
	mode    = ""
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != sdk.DescribeArg {
		switch mode {
		case "exit":
			fmt.Fprintln(os.Stderr, "cannot read /etc/mini.conf: no such file or directory")
			os.Exit(1)
		case "hang":
			fmt.Fprintln(os.Stderr, "warming up the cache")
			time.Sleep(time.Hour)
		case "crash":
			var m map[string]int
			m["boom"]++
		}
	}
	sdk.Serve(minirole.Role{Version: version})
}
