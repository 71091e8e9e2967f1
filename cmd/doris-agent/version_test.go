package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersionStamp builds the agent as the Makefile does, with the build's
// version stamped in, and asks it for the version without any config.
func TestVersionStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "doris-agent")
	// The toolchain running the tests, whatever PATH says.
	const pkg = "github.com/dorismanager/dorismanager/internal/buildinfo"
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-ldflags",
		"-X "+pkg+".version=9.8.7-test -X "+pkg+".commit=abc1234", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	cases := []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"version"}, "doris-agent 9.8.7-test\ncommit:  abc1234\n", 0},
		{[]string{"-version"}, "doris-agent 9.8.7-test\n", 0},
		{[]string{"--version"}, "doris-agent 9.8.7-test\n", 0},
		{[]string{"-config", "/nonexistent.json", "version"}, "doris-agent 9.8.7-test\n", 0},
		{[]string{"version"}, "os/arch: " + runtime.GOOS + "/" + runtime.GOARCH + "\n", 0},
		{[]string{"version", "extra"}, `version takes no arguments, got ["extra"]`, 2},
		{[]string{"serve"}, `unknown command "serve"`, 2},
	}
	for _, c := range cases {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(string(out), c.out) {
			t.Errorf("doris-agent %v: exit %d, %q; want exit %d and %q", c.args, code, out, c.code, c.out)
		}
	}
}
