// Package console drives the web console in real headless Chromium
// against the real manager, the test hosts and the Doris simulator: sign
// in, the whole install wizard by clicking and typing, a failed task's log,
// the cluster's page. chromedp stays here, out of the manager's imports.
package console

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// binDir holds the binaries built once for this test binary.
var binDir string

// chromium is Debian's browser, which .ci/run installs.
var chromium = "chromium"

func TestMain(m *testing.M) {
	ci := os.Getenv("CI") != ""
	skip := func(why string) {
		if ci {
			fmt.Fprintln(os.Stderr, "console: CI must run this test, but", why)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "console: skipped:", why)
		os.Exit(0)
	}
	if !sandbox.IsRoot() {
		skip("the test hosts need root (network namespaces, sshd)")
	}
	p, err := exec.LookPath(chromium)
	if err != nil {
		skip("no chromium on PATH (apt-get install chromium)")
	}
	chromium = p
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dm-console-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	ctx, cancel := deadline.Context(context.Background(), 10*time.Minute)
	err = sandbox.Build(ctx, binDir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "console: build:", err)
		return 1
	}
	defer sandbox.SaveMaxMapCount()()
	return m.Run()
}
