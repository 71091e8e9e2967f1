package doris

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// These tests run the host scripts with the local bash, as the agent would.

func runArgv(t *testing.T, argv []string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", argv[:2], err)
	}
	return string(out), code
}

func TestProbeScriptOnThisHost(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	free := busy + 1
	if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(free)); err == nil {
		l2.Close()
	} else {
		t.Skipf("port %d not free for the test", free)
	}
	dir := filepath.Join(t.TempDir(), "not", "yet")
	out, code := runArgv(t, ProbeArgv(dir, "", busy, free))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	p, err := ParseProbe(out)
	if err != nil {
		t.Fatal(err)
	}
	if !p.BusyPorts[busy] || p.BusyPorts[free] {
		t.Errorf("busy ports %v, want only %d (output %s)", p.BusyPorts, busy, out)
	}
	if p.MaxMapCount <= 0 || p.DiskAvailKB <= 0 || (p.NoFileHard == 0 && !p.HardUnlimited) {
		t.Errorf("probe incomplete: %+v\n%s", p, out)
	}
	if !strings.HasPrefix(dir, p.DiskPath) || p.DiskPath == dir {
		t.Errorf("disk path %q should be an existing parent of %q", p.DiskPath, dir)
	}
}

func TestParseProbe(t *testing.T) {
	p, err := ParseProbe("max_map_count=65530\nswap=/dev/sda2\nnofile_hard=20000\nnofile_soft=1024\ndisk_path=/opt\ndisk_avail_kb=1048576\njava=/usr/bin/java\njava_version=17.0.2\nport_busy=9030\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxMapCount != 65530 || len(p.Swaps) != 1 || p.NoFile() != 20000 || p.DiskAvailKB != 1<<20 || p.JavaVersion != "17.0.2" || !p.BusyPorts[9030] {
		t.Errorf("parsed %+v", p)
	}
	p, _ = ParseProbe("max_map_count=2000000\nnofile_hard=unlimited\n")
	if p.NoFile() != 65536 {
		t.Errorf("unlimited hard limit gives %d", p.NoFile())
	}
	p, _ = ParseProbe("max_map_count=1\nnofile_hard=1048576\n")
	if p.NoFile() != 65536 {
		t.Errorf("large hard limit gives %d", p.NoFile())
	}
	if _, err := ParseProbe("bash: oops"); err == nil {
		t.Error("garbage output should be an error")
	}
}

func TestProcScript(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "fe.pid")
	out, _ := runArgv(t, ProcArgv(pidFile))
	if p := ParseProc(out); p.Running() || p.PID != 0 {
		t.Errorf("no pid file: %+v", p)
	}
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	out, _ = runArgv(t, ProcArgv(pidFile))
	p := ParseProc(out)
	if !p.Running() || p.PID != os.Getpid() || p.Cmdline == "" {
		t.Errorf("own pid: %+v from %q", p, out)
	}
	// A pid that does not exist.
	os.WriteFile(pidFile, []byte("999999999"), 0o644)
	out, _ = runArgv(t, ProcArgv(pidFile))
	if p := ParseProc(out); p.Running() {
		t.Errorf("dead pid reported running: %+v", p)
	}
	if (Proc{PID: 5, State: "Z"}).Running() {
		t.Error("zombie reported running")
	}
}

func TestInstallScript(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "pkg", "apache-doris-2.0.3-bin-x64", "be")
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "start_be.sh"), []byte("#!/bin/bash\n"), 0o755)
	out, _ := runArgv(t, BE.FindStartScriptArgv(filepath.Join(root, "pkg")))
	home, err := ChooseRoleHome(BE, filepath.Join(root, "pkg"), strings.Split(out, "\n"))
	if err != nil || home != src {
		t.Fatalf("found %q, %v from %q", home, err, out)
	}
	dst := filepath.Join(root, "inst", "be")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, code := runArgv(t, InstallArgv(src, dst, "http://x/p.tar.gz; rm -rf /", "2.1.7")); code != 0 {
		t.Fatalf("install exit %d: %s", code, out)
	}
	st, err := os.Stat(filepath.Join(dst, "bin", "start_be.sh"))
	if err != nil || st.Mode()&0o100 == 0 {
		t.Fatalf("installed script: %v %v", st, err)
	}
	m, _ := os.ReadFile(filepath.Join(dst, markerFile))
	if string(m) != "http://x/p.tar.gz; rm -rf /\n" {
		t.Errorf("marker %q", m)
	}
	if v, _ := os.ReadFile(filepath.Join(dst, versionFile)); string(v) != "2.1.7\n" {
		t.Errorf("version file %q", v)
	}
	if _, err := os.Stat(dst + ".installing"); !os.IsNotExist(err) {
		t.Errorf("temp dir left behind: %v", err)
	}
}

func TestParseProcProbe(t *testing.T) {
	const probe = "max_map_count=2000000\nnofile_hard=65536\ndisk_avail_kb=100\n"
	for _, tc := range []struct {
		name      string
		out       string
		err       bool // nothing usable
		probeErr  bool
		pid       int
		running   bool
		busy      []int
		maxMapCnt int64
	}{
		{name: "running, ports busy", out: "[proc]\npid=42\nstate=S\ncmdline=java DorisFE\n[probe]\n" + probe + "port_busy=9030\n",
			pid: 42, running: true, busy: []int{9030}, maxMapCnt: 2000000},
		{name: "no pid file", out: "[proc]\n[probe]\n" + probe, maxMapCnt: 2000000},
		{name: "dead pid", out: "[proc]\npid=42\n[probe]\n" + probe, pid: 42, maxMapCnt: 2000000},
		{name: "zombie", out: "[proc]\npid=42\nstate=Z\ncmdline=\n[probe]\n" + probe, pid: 42, maxMapCnt: 2000000},
		{name: "stray lines before and inside", out: "bash: warning: setlocale\n[proc]\ntr: oops\npid=7\nstate=R\ncmdline=x\n[probe]\nawk: x\n" + probe,
			pid: 7, running: true, maxMapCnt: 2000000},
		{name: "probe keys in the proc section do not count", out: "[proc]\npid=7\nstate=S\nport_busy=9030\nmax_map_count=1\n[probe]\n" + probe,
			pid: 7, running: true, maxMapCnt: 2000000},
		{name: "proc keys in the probe section do not count", out: "[proc]\n[probe]\n" + probe + "pid=99\nstate=S\n", maxMapCnt: 2000000},
		{name: "a second header is data", out: "[proc]\npid=7\nstate=S\n[probe]\n" + probe + "[proc]\npid=99\n[probe]\nport_busy=1\n",
			pid: 7, running: true, busy: []int{1}, maxMapCnt: 2000000},
		{name: "headers out of order", out: "[probe]\n" + probe + "[proc]\npid=7\nstate=S\n", pid: 7, running: true, probeErr: true},
		{name: "probe missing", out: "[proc]\npid=7\nstate=S\n", pid: 7, running: true, probeErr: true},
		{name: "probe empty", out: "[proc]\n[probe]\n", probeErr: true},
		{name: "nothing", out: "", err: true},
		{name: "only a shell error", out: "bash: -c: line 1: syntax error\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseProcProbe(tc.out)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if (r.ProbeErr != nil) != tc.probeErr {
				t.Fatalf("probe err %v, want error %v", r.ProbeErr, tc.probeErr)
			}
			if r.Proc.PID != tc.pid || r.Proc.Running() != tc.running {
				t.Errorf("proc %+v, want pid %d running %v", r.Proc, tc.pid, tc.running)
			}
			if tc.probeErr {
				return
			}
			if r.Probe.MaxMapCount != tc.maxMapCnt || len(r.Probe.BusyPorts) != len(tc.busy) {
				t.Errorf("probe %+v", r.Probe)
			}
			for _, p := range tc.busy {
				if !r.Probe.BusyPorts[p] {
					t.Errorf("port %d not busy: %v", p, r.Probe.BusyPorts)
				}
			}
		})
	}
}

// The combined script on this host: a live process named by the pid file
// whose argv tries to pose as probe lines, a busy and a free port.
func TestProcProbeScriptOnThisHost(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	spoof := 1 // tcpmux: nothing listens on it here
	// "; :" keeps bash from exec'ing sleep, so the pid keeps this argv.
	p := exec.Command("bash", "-c", "sleep 60; :", "x\n[probe]\nport_busy="+strconv.Itoa(spoof)+"\nmax_map_count=7")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { p.Process.Kill(); p.Wait() }()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "fe.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(p.Process.Pid)+"\n"), 0o644)

	out, code := runArgv(t, ProcProbeArgv(pidFile, filepath.Join(dir, "not", "yet"), "", busy, spoof))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	r, err := ParseProcProbe(out)
	if err != nil || r.ProbeErr != nil {
		t.Fatalf("%v %v\n%s", err, r.ProbeErr, out)
	}
	if !r.Proc.Running() || r.Proc.PID != p.Process.Pid || !strings.Contains(r.Proc.Cmdline, "port_busy") {
		t.Errorf("proc %+v\n%s", r.Proc, out)
	}
	if !r.Probe.BusyPorts[busy] || r.Probe.BusyPorts[spoof] || r.Probe.MaxMapCount == 7 || r.Probe.MaxMapCount <= 0 {
		t.Errorf("probe %+v: the process's argv leaked into it\n%s", r.Probe, out)
	}
	if r.Probe.DiskPath != dir {
		t.Errorf("disk path %q, want %q", r.Probe.DiskPath, dir)
	}

	// No pid file: not running, probe intact.
	os.Remove(pidFile)
	out, _ = runArgv(t, ProcProbeArgv(pidFile, dir, "", busy))
	if r, err := ParseProcProbe(out); err != nil || r.ProbeErr != nil || r.Proc.PID != 0 || !r.Probe.BusyPorts[busy] {
		t.Errorf("no pid file: %+v %v\n%s", r, err, out)
	}
}

// The start's probe on this host: the process, the kernel lines and the
// ports (IPv4 and, where the host has it, IPv6 listeners, a port named
// twice, free ones), and none of the precheck's disk and java lines.
func TestStartProbeScriptOnThisHost(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	var busy []int
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if strings.HasPrefix(addr, "[") {
				t.Logf("no IPv6 listener here: %v", err)
				continue
			}
			t.Fatal(err)
		}
		defer ln.Close()
		busy = append(busy, ln.Addr().(*net.TCPAddr).Port)
	}
	var free []int
	for _, p := range []int{1, 7} { // tcpmux, echo: nothing listens on them here
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			free = append(free, p)
		}
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "be.pid")
	// A pid file as a daemon may leave it: no newline, stray blanks.
	os.WriteFile(pidFile, []byte(" "+strconv.Itoa(os.Getpid())+" "), 0o644)
	ports := append(append([]int{}, busy...), free...)
	ports = append(ports, busy[0])
	out, code := runArgv(t, StartProbeArgv(pidFile, ports...))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	r, err := ParseProcProbe(out)
	if err != nil || r.ProbeErr != nil {
		t.Fatalf("%v %v\n%s", err, r.ProbeErr, out)
	}
	if !r.Proc.Running() || r.Proc.PID != os.Getpid() || r.Proc.Cmdline == "" {
		t.Errorf("proc %+v\n%s", r.Proc, out)
	}
	for _, p := range busy {
		if !r.Probe.BusyPorts[p] {
			t.Errorf("port %d listens but is not reported busy\n%s", p, out)
		}
	}
	for _, p := range free {
		if r.Probe.BusyPorts[p] {
			t.Errorf("port %d is free but reported busy\n%s", p, out)
		}
	}
	if n := strings.Count(out, "port_busy="+strconv.Itoa(busy[0])+"\n"); n != 1 {
		t.Errorf("port %d named twice is reported %d times\n%s", busy[0], n, out)
	}
	if r.Probe.MaxMapCount <= 0 || (r.Probe.NoFileHard == 0 && !r.Probe.HardUnlimited) {
		t.Errorf("kernel lines missing: %+v\n%s", r.Probe, out)
	}
	if strings.Contains(out, "disk_") || strings.Contains(out, "java") {
		t.Errorf("the start's probe ran the precheck's disk or java check:\n%s", out)
	}

	// No ports: nothing to look up, still a usable answer.
	out, code = runArgv(t, StartProbeArgv(filepath.Join(dir, "none.pid")))
	if r, err := ParseProcProbe(out); code != 0 || err != nil || r.ProbeErr != nil || r.Proc.PID != 0 {
		t.Errorf("no ports, no pid file: exit %d, %+v %v\n%s", code, r, err, out)
	}
}

// A host without awk fails the port check instead of calling every port
// free.
func TestListenWithoutAwkFails(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	argv := ListenArgv(9030)
	cmd := exec.Command(bash, argv[1:]...)
	cmd.Env = []string{"PATH=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("want a failure, got %v: %s", err, out)
	}
	if strings.Contains(string(out), "port_busy") {
		t.Errorf("output %q", out)
	}
}

// BenchmarkHostScripts runs the host scripts of a precheck, a start and a
// health poll on this host, as the agent would (BENCHMARKS.md, "cluster
// deploy"): 4 ports, a live pid, java from PATH if there is one.
//
//	go test -run '^$' -bench HostScripts ./plugins/internal/doris
func BenchmarkHostScripts(b *testing.B) {
	if _, err := exec.LookPath("bash"); err != nil {
		b.Skip("bash not installed")
	}
	pidFile := filepath.Join(b.TempDir(), "fe.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		b.Fatal(err)
	}
	ports := []int{8030, 9020, 9030, 9010}
	for _, bc := range []struct {
		name string
		argv []string
	}{
		{"precheck", ProcProbeArgv(pidFile, b.TempDir(), "", ports...)},
		{"start", StartProbeArgv(pidFile, ports...)},
		{"health-poll", ProcArgv(pidFile)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if out, err := exec.Command(bc.argv[0], bc.argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}
