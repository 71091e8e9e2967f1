package agent

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// fakeRole is a start command that daemonizes like a role's start script:
// a background sleep whose pid goes into pidFile, and the role's name
// appended to order (so the test sees the start order).
func fakeRole(t *testing.T, name, pidFile, order string) *wire.StartCommand {
	t.Helper()
	t.Cleanup(func() {
		if pid, ok := livePid(pidFile); ok {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return &wire.StartCommand{Argv: []string{"sh", "-c", `sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$1"; echo "$2" >> "$3"`, "sh", pidFile, name, order},
		Dir: filepath.Dir(pidFile)}
}

func TestRestoreRolesStartsWhatShouldRunInOrder(t *testing.T) {
	a, srv := newAgent(t)
	dir := t.TempDir()
	a.cfg.InstallDir = dir
	order := filepath.Join(dir, "order")
	fePid, bePid, brokerPid := filepath.Join(dir, "fe.pid"), filepath.Join(dir, "be.pid"), filepath.Join(dir, "broker.pid")
	for _, d := range []wire.DesiredRole{
		// Recorded in another order than they must start.
		{Role: "BE", State: wire.DesiredRunning, Order: 2, Start: fakeRole(t, "BE", bePid, order), PidFile: bePid},
		{Role: "FE", State: wire.DesiredRunning, Order: 0, Start: fakeRole(t, "FE", fePid, order), PidFile: fePid},
		{Role: "BROKER", State: wire.DesiredRunning, Order: 2, Start: fakeRole(t, "BROKER", brokerPid, order), PidFile: brokerPid},
		// An operator stopped the broker later: the record keeps its start
		// command (none sent) but it must not start.
		{Role: "BROKER", State: wire.DesiredStopped, Order: 2},
		{Role: "GONE", State: wire.DesiredRunning, Start: &wire.StartCommand{Argv: []string{"false"}}},
		{Role: "GONE", State: wire.DesiredAbsent},
	} {
		if resp, _ := call(t, srv, wire.DesiredPath, d); resp.StatusCode != http.StatusOK {
			t.Fatalf("record %+v: HTTP %d", d, resp.StatusCode)
		}
	}
	all, err := a.loadDesired()
	if err != nil {
		t.Fatal(err)
	}
	if b := all["BROKER"]; b.State != wire.DesiredStopped || b.Start == nil || b.PidFile != brokerPid {
		t.Fatalf("broker record %+v: want stopped, keeping its start command and pid file", b)
	}
	if _, ok := all["GONE"]; ok {
		t.Fatal("absent did not forget the role")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.restoreRoles(ctx)
	got, _ := os.ReadFile(order)
	if string(got) != "FE\nBE\n" {
		t.Fatalf("start order %q, want FE then BE (the stopped broker left alone)", got)
	}
	for _, pf := range []string{fePid, bePid} {
		if _, ok := livePid(pf); !ok {
			t.Fatalf("%s holds no live pid", pf)
		}
	}
	// Running roles are not started again.
	a.restoreRoles(ctx)
	if again, _ := os.ReadFile(order); string(again) != "FE\nBE\n" {
		t.Fatalf("a second restore started roles again: %q", again)
	}
	ps := map[string]wire.Process{}
	for _, p := range a.processes() {
		ps[p.Role] = p
	}
	if p := ps["FE"]; !p.Running || p.Desired != wire.DesiredRunning || p.Pid == 0 {
		t.Errorf("FE reported as %+v", p)
	}
	if p := ps["BROKER"]; p.Running || p.Desired != wire.DesiredStopped {
		t.Errorf("BROKER reported as %+v", p)
	}
}

func TestDesiredRefusesBadRecords(t *testing.T) {
	_, srv := newAgent(t)
	for _, tc := range []struct {
		name string
		d    wire.DesiredRole
	}{
		{"lower-case role", wire.DesiredRole{Role: "fe", State: wire.DesiredRunning}},
		{"empty role", wire.DesiredRole{State: wire.DesiredRunning}},
		{"unknown state", wire.DesiredRole{Role: "FE", State: "up"}},
		{"relative pid file", wire.DesiredRole{Role: "FE", State: wire.DesiredRunning, PidFile: "fe/bin/fe.pid"}},
		{"unclean pid file", wire.DesiredRole{Role: "FE", State: wire.DesiredRunning, PidFile: "/opt/../etc/fe.pid"}},
		{"empty argv", wire.DesiredRole{Role: "FE", State: wire.DesiredRunning, Start: &wire.StartCommand{}}},
		{"relative dir", wire.DesiredRole{Role: "FE", State: wire.DesiredRunning, Start: &wire.StartCommand{Argv: []string{"x"}, Dir: "fe"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, _ := call(t, srv, wire.DesiredPath, tc.d); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400", resp.StatusCode)
			}
		})
	}
}

func TestUninstallRemovesTheAgentAndExits(t *testing.T) {
	a, srv := newAgent(t)
	install := filepath.Join(t.TempDir(), "doris")
	home := filepath.Join(install, "agent")
	a.cfg.InstallDir, a.cfg.DataDir = install, filepath.Join(home, "data")
	for _, d := range []string{"bin", "conf", "data/log"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if resp, _ := call(t, srv, wire.UninstallPath, wire.Uninstall{SystemdUnit: "sshd.service"}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a unit that is not the agent's: HTTP %d, want 400", resp.StatusCode)
	}
	select {
	case <-a.quit:
		t.Fatal("a refused uninstall made the agent quit")
	default:
	}
	if resp, _ := call(t, srv, wire.UninstallPath, wire.Uninstall{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("uninstall: HTTP %d", resp.StatusCode)
	}
	select {
	case <-a.quit:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not quit after uninstall")
	}
	if _, err := os.Stat(install); !os.IsNotExist(err) {
		t.Fatalf("%s still exists after uninstall (err %v)", install, err)
	}
}

func TestUninstallKeepsAForeignLayoutAndOtherFiles(t *testing.T) {
	a, srv := newAgent(t)
	// testConfig's data dir is not below <installDir>/agent.
	a.cfg.InstallDir = t.TempDir()
	resp, _ := call(t, srv, wire.UninstallPath, wire.Uninstall{})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("uninstall with a foreign layout: HTTP %d, want 400", resp.StatusCode)
	}
	// With the layout, files of others in installDir stay.
	a2, srv2 := newAgent(t)
	install := t.TempDir()
	a2.cfg.InstallDir, a2.cfg.DataDir = install, filepath.Join(install, "agent", "data")
	if err := os.MkdirAll(a2.cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(install, "be", "storage", "keep")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, _ := call(t, srv2, wire.UninstallPath, wire.Uninstall{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("uninstall: HTTP %d", resp.StatusCode)
	}
	<-a2.quit
	if _, err := os.Stat(filepath.Join(install, "agent")); !os.IsNotExist(err) {
		t.Fatalf("agent folder left: %v", err)
	}
	if b, err := os.ReadFile(other); err != nil || !strings.Contains(string(b), "data") {
		t.Fatalf("a file of another role was touched: %v", err)
	}
}
