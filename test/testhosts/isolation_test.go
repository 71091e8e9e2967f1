package testhosts

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
)

// childEnv marks the re-executed test binary that runs inside a mount
// namespace of its own, where the machine's /root has been replaced.
const childEnv = "TESTHOSTS_SLOW_HOME"

// TestMachineStartFilesStayOut gives the machine a root home whose start
// files sleep 30 s, print noise and leave a trace, then checks that test
// hosts never run them and keep their /root and /tmp to themselves. The
// machine's real /root is left alone: the test re-executes itself in a
// private mount namespace and mounts the slow home over /root there.
func TestMachineStartFilesStayOut(t *testing.T) {
	Require(t)
	if os.Getenv(childEnv) == "" {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("needs unshare(1)")
		}
		ctx, cancel := deadline.Context(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private",
			os.Args[0], "-test.run=^TestMachineStartFilesStayOut$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestMachineStartFilesStayOut") {
			t.Fatalf("inside a mount namespace with a slow /root: %v\n%s", err, out)
		}
		return
	}

	// The trace folder is visible to the machine and to every host (it
	// is neither /root, /tmp nor /opt).
	trace, err := os.MkdirTemp(baseDir(), "slowhome-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(trace)
	home := filepath.Join(trace, "home")
	rc := "echo noise-from-machine-rc\necho noise-on-stderr >&2\ntouch " + filepath.Join(trace, "ran") + "\nsleep 30\n"
	for name, text := range map[string]string{".bashrc": rc, ".profile": rc, ".bash_profile": rc} {
		if err := os.MkdirAll(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount(home, "/root", "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("mount the slow home over /root (in this test's own mount namespace): %v", err)
	}
	if b, err := os.ReadFile("/root/.bashrc"); err != nil || string(b) != rc {
		t.Fatalf("the machine's /root/.bashrc is not the slow one here: %q %v", b, err)
	}
	machineTmp := filepath.Join(os.TempDir(), "testhosts-machine-only-"+randHex(4))
	if err := os.WriteFile(machineTmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(machineTmp)

	ctx, cancel := deadline.Context(context.Background(), time.Minute)
	defer cancel()
	hs, err := Start(ctx, Options{N: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	for _, h := range hs.Hosts {
		c, err := dial(t, h, hs.Keys.Ed25519, "")
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		// The session runs through root's login shell, as every SSH
		// command does; it must neither wait 30 s nor print noise. The
		// deadline is a bound on waiting (20 s < 30 s), not a speed check.
		done := make(chan struct{})
		var out []byte
		var runErr error
		go func() {
			defer close(done)
			s, err := c.NewSession()
			if err != nil {
				runErr = err
				return
			}
			defer s.Close()
			out, runErr = s.CombinedOutput(`echo "home=$HOME"; cat ~/.bashrc; ls -A /tmp; touch /tmp/host-only; test -e ` + machineTmp + ` && echo machine-tmp-visible; true`)
		}()
		select {
		case <-done:
		case <-time.After(deadline.D(20 * time.Second)):
			c.Close()
			t.Fatalf("%s: an SSH command did not finish in %s: the machine's slow ~/.bashrc reached the host", h.Name, deadline.D(20*time.Second))
		}
		c.Close()
		if runErr != nil {
			t.Fatalf("%s: %v: %s", h.Name, runErr, out)
		}
		got := string(out)
		if strings.Contains(got, "noise") || strings.Contains(got, "machine-tmp-visible") {
			t.Errorf("%s: the machine's start files or /tmp leak into the host:\n%s", h.Name, got)
		}
		if !strings.Contains(got, "home=/root") || !strings.Contains(got, "~/.bashrc of a test host") {
			t.Errorf("%s: root's home is not the host's own:\n%s", h.Name, got)
		}
		if _, err := os.Stat(filepath.Join(h.Tmp, "host-only")); err != nil {
			t.Errorf("%s: /tmp inside the host is not its own folder: %v", h.Name, err)
		}
		if _, err := os.Stat(filepath.Join(os.TempDir(), "host-only")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a file the host wrote to /tmp shows in the machine's /tmp (%v)", h.Name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(trace, "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the machine's start files ran inside a host (trace: %v)", err)
	}
}
