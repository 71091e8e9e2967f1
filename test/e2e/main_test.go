// Package e2e walks the whole install wizard against the real binaries:
// dorismanager serving the REST API, doris-agent installed over SSH on test
// hosts in network namespaces, the role plugins, and the Doris simulator.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// binDir holds the binaries built once for this test binary.
var binDir string

func TestMain(m *testing.M) {
	if !sandbox.IsRoot() {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "e2e: CI runs as root, but this is not root")
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "e2e: skipped: the end-to-end tests need root (network namespaces, sshd)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

// run builds the binaries into a folder of this test binary's own (so
// concurrent runs never swap each other's binaries), runs the tests, and
// cleans up.
func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dm-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	ctx, cancel := deadline.Context(context.Background(), 10*time.Minute)
	err = sandbox.Build(ctx, binDir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		return 1
	}
	defer sandbox.SaveMaxMapCount()()
	return pgtest.Run(m)
}

// start brings up a sandbox with a running manager for one test.
func start(t *testing.T, o sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	o.BinDir = binDir
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, o)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the sandbox when the test failed:\n%s", s.Diagnose())
		}
		s.Close()
	})
	if err := s.StartManager(ctx); err != nil {
		t.Fatalf("start manager: %v", err)
	}
	return s
}
