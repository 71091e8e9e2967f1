package sshboot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/preflight"
	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

func TestParseProbe(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	const arch = "kernel=Linux\nmachine=x86_64\n"
	linux := func(p hostProbe) hostProbe { p.kernel, p.machine = "Linux", "x86_64"; return p }
	for _, tc := range []struct {
		name, out string
		want      hostProbe
		err       bool
	}{
		{"systemd host with an agent", "conn=10.0.0.1 51000 10.0.0.2 22\ninit=systemd\n" + arch + "sha256=" + sum + "\n",
			linux(hostProbe{listenIP: "10.0.0.2", systemd: true, agentSum: sum}), false},
		{"no systemd, no agent yet", "conn=10.0.0.1 51000 10.0.0.2 22\ninit=sh\n" + arch, linux(hostProbe{listenIP: "10.0.0.2"}), false},
		{"no SSH_CONNECTION", "conn=\ninit=unknown\n" + arch, linux(hostProbe{}), false},
		{"a sum that is not one is ignored", "conn=\ninit=sh\n" + arch + "sha256=" + sum[:10] + "\n", linux(hostProbe{}), false},
		{"upper case or junk in the sum is ignored", "conn=\ninit=sh\n" + arch + "sha256=" + strings.ToUpper(sum) + "\n", linux(hostProbe{}), false},
		{"stray output around the answer", "Welcome!\nconn=a b c d\ninit=systemd\n" + arch + "kill: no such process\n", linux(hostProbe{listenIP: "c", systemd: true}), false},
		{"another architecture", "conn=\ninit=sh\nkernel=Linux\nmachine=mips\n", hostProbe{kernel: "Linux", machine: "mips"}, false},
		{"no init line", "conn=a b c d\n" + arch, hostProbe{}, true},
		{"no machine line", "conn=a b c d\ninit=sh\nkernel=Linux\n", hostProbe{}, true},
		{"shell error only", "sh: 1: Syntax error\n", hostProbe{}, true},
		{"empty", "", hostProbe{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProbe(tc.out)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if !tc.err && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The local sum is kept while size and mtime stay, and recomputed when
// either changes; each architecture has its own.
func TestAgentBinarySumCached(t *testing.T) {
	dir := t.TempDir()
	bin := preflight.AgentPath(dir, "arm64")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(data string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(bin, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(bin, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	hexSum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	in := &Installer{cfg: Config{AgentsDir: dir}, binSums: map[string]localSum{}}
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

	write("agent v1", t0)
	p, size, sum, err := in.agentBinary("arm64")
	if err != nil || p != bin || size != 8 || sum != hexSum("agent v1") {
		t.Fatalf("first: %s %d %s %v", p, size, sum, err)
	}
	// Same size and mtime: the cached sum, the file is not read again.
	write("agent v2", t0)
	if _, _, sum, _ := in.agentBinary("arm64"); sum != hexSum("agent v1") {
		t.Errorf("same size+mtime: sum %s, want the cached one", sum)
	}
	// A rebuild (new mtime) is noticed.
	write("agent v2", t0.Add(time.Second))
	if _, _, sum, _ := in.agentBinary("arm64"); sum != hexSum("agent v2") {
		t.Errorf("new mtime: sum %s, want the new one", sum)
	}
	// So is a new size.
	write("agent v3!", t0.Add(time.Second))
	if _, size, sum, _ := in.agentBinary("arm64"); size != 9 || sum != hexSum("agent v3!") {
		t.Errorf("new size: %d %s", size, sum)
	}
	// Another architecture is another file: missing here, and the error
	// says how to get it.
	if _, _, _, err := in.agentBinary("amd64"); err == nil || !strings.Contains(err.Error(), "linux/amd64") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing amd64 binary: %v", err)
	}
	os.Remove(bin)
	if _, _, _, err := in.agentBinary("arm64"); err == nil || !strings.Contains(err.Error(), "GOARCH=arm64 go build") {
		t.Errorf("missing binary: %v", err)
	}
}

func TestProbeStopScriptLocally(t *testing.T) {
	home := filepath.Join(t.TempDir(), `it's $(touch pwned) "x"`, "agent")
	for _, d := range []string{"bin", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// This machine's uname -m among the names the manager has agents for.
	machine, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	supported := []string{"x86_64", strings.TrimSpace(string(machine)), "aarch64"}
	runScript := func() hostProbe {
		t.Helper()
		out, err := exec.Command("sh", append([]string{"-c", probeStopScript, "sh", home, "doris-agent-test.service"}, supported...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		p, err := parseProbe(string(out))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := runScript(); p.agentSum != "" {
		t.Errorf("no agent yet, got sum %s", p.agentSum)
	}

	// A stand-in agent: sleep, under the agent's name, in the agent's place.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(home, "bin", "doris-agent")
	if err := os.WriteFile(bin, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := runScript(); p.agentSum != "" {
		t.Errorf("not executable: got sum %s, want none (it must be uploaded)", p.agentSum)
	}
	os.Chmod(bin, 0o755)
	cmd := exec.Command(bin, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer cmd.Process.Kill()
	// A pid file naming another process: left alone.
	other := exec.Command(sleep, "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	pidf := filepath.Join(home, "data", "agent.pid")
	os.WriteFile(pidf, []byte(strconv.Itoa(other.Process.Pid)), 0o644)
	runScript()
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("a process that is not the agent was stopped: %v", err)
	}

	os.WriteFile(pidf, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	// A host the manager has no agent for: probed, nothing stopped.
	all := supported
	supported = []string{"mips", "s390x"}
	if p := runScript(); p.kernel != "Linux" || p.machine != strings.TrimSpace(string(machine)) || p.agentSum != hexSum(data) {
		t.Errorf("probe of a host of another architecture: %+v", p)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the agent of a host the manager has no agent for was stopped: %v", err)
	}
	supported = all
	p := runScript()
	if want := hexSum(data); p.agentSum != want {
		t.Errorf("sum %s, want %s", p.agentSum, want)
	}
	select {
	case <-done:
	case <-time.After(deadline.D(10 * time.Second)):
		t.Fatal("the old agent was not stopped")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(home), "pwned")); err == nil {
		t.Fatal("the home's name was run as a command")
	}
}

func hexSum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// TestReinstall: a reinstall finds the same binary on the host and does not
// upload it, but uploads a different one; each install opens three SSH
// sessions (sftp, probe+stop, start).
func TestReinstall(t *testing.T) {
	e := setup(t, 1)
	ctx := context.Background()
	h := e.hs.Hosts[0]
	remote := filepath.Join(h.Root, "doris/agent/bin/doris-agent")
	install := func() string {
		t.Helper()
		var log syncBuf
		before := sessions(t, h)
		if _, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: e.hs.Keys.Ed25519}, &log); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		if n := sessions(t, h) - before; n != 3 {
			t.Errorf("install opened %d SSH sessions, want 3 (sftp, probe+stop, start)\n%s", n, log.String())
		}
		return log.String()
	}
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(remote)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}

	if log := install(); !strings.Contains(log, "uploading agent") {
		t.Fatalf("first install did not upload:\n%s", log)
	}
	first := inode()
	pid := agentPid(t, h)

	log := install()
	if strings.Contains(log, "uploading agent") || !strings.Contains(log, "same binary") {
		t.Errorf("reinstall of the same binary uploaded it:\n%s", log)
	}
	if inode() != first {
		t.Error("the binary on the host was replaced")
	}
	if testhosts.PidAlive(pid) || agentPid(t, h) == pid {
		t.Error("the agent was not restarted")
	}

	// Another binary on the host (renamed into place, as an upload does):
	// the reinstall puts the manager's one back.
	local, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := remote + ".other"
	if err := os.WriteFile(tmp, append(append([]byte{}, local...), 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, remote); err != nil {
		t.Fatal(err)
	}
	if log := install(); !strings.Contains(log, "uploading agent") {
		t.Errorf("a different binary was not replaced:\n%s", log)
	}
	got, err := os.ReadFile(remote)
	if err != nil || hexSum(got) != hexSum(local) {
		t.Errorf("binary on the host differs from the manager's after the reinstall (%v)", err)
	}
}

// sessions counts the SSH sessions the host's sshd has started so far.
func sessions(t *testing.T, h *testhosts.Host) int {
	t.Helper()
	b, err := os.ReadFile(h.SSHDLog)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "Starting session:")
}
