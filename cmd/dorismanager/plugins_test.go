package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/internal/pidfile"
)

// goBuild builds a package of this module into out.
func goBuild(t *testing.T, out, pkg string, ldflags string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
}

// lineWaiter signals when a line containing want has been written.
type lineWaiter struct {
	lines chan string
}

func (w *lineWaiter) wait(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("the manager exited before logging %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("the manager did not log %q", want)
		}
	}
}

// A running manager writes its pid file; plugins install signals it, and
// it rescans its plugins dir; once it stops the pid file is gone.
func TestInstallTellsRunningManagerToRescan(t *testing.T) {
	bin := t.TempDir()
	manager := filepath.Join(bin, "dorismanager")
	goBuild(t, manager, "./cmd/dorismanager", "-X github.com/dorismanager/dorismanager/internal/buildinfo.version=test")
	plugin := filepath.Join(bin, "doris-role-broker")
	goBuild(t, plugin, "./plugins/broker", "-X main.version=1.0.0")

	dataDir, pluginsDir := t.TempDir(), t.TempDir()
	// The plugin is signed with a key the manager's data dir trusts.
	key := filepath.Join(bin, "key")
	for _, args := range [][]string{
		{"plugins", "keygen", key},
		{"plugins", "sign", "--key", key, plugin},
		{"plugins", "--data-dir", dataDir, "trust", key + ".pub"},
	} {
		var out bytes.Buffer
		if err := run(args, &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
	}
	cmd := exec.Command(manager, "serve", "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--plugins-dir", pluginsDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	w := &lineWaiter{lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case w.lines <- sc.Text():
			default: // nobody waits for it
			}
		}
		close(w.lines)
		waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	w.wait(t, "dorismanager ready")
	deadline := time.Now().Add(time.Minute)
	for {
		pid, err := pidfile.Running(dataDir)
		if err == nil {
			if pid != cmd.Process.Pid {
				t.Fatalf("pid file says %d, the manager is %d", pid, cmd.Process.Pid)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid file of the running manager: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var out bytes.Buffer
	if err := run([]string{"plugins", "--plugins-dir", pluginsDir, "--data-dir", dataDir, "install", plugin}, &out, &out); err != nil {
		t.Fatalf("install: %v\n%s", err, out.String())
	}
	if want := fmt.Sprintf("told the running manager (pid %d) to rescan", cmd.Process.Pid); !strings.Contains(out.String(), want) {
		t.Errorf("install output does not say %q:\n%s", want, out.String())
	}
	w.wait(t, "SIGHUP: rescanning the plugins dir")
	w.wait(t, "role plugin available: role=BROKER version=1.0.0")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range w.lines {
	}
	if err := <-waited; err != nil {
		t.Errorf("manager exit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, pidfile.Name)); !os.IsNotExist(err) {
		t.Errorf("pid file left after the manager stopped: %v", err)
	}
	out.Reset()
	if err := run([]string{"plugins", "--plugins-dir", pluginsDir, "--data-dir", dataDir, "remove", "broker", "1.0.0"}, &out, &out); err != nil {
		t.Fatalf("remove: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "no running manager found") {
		t.Errorf("remove with no manager running:\n%s", out.String())
	}
}
