package pkginstall

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// What the packages put on a host (tools/packaging) and what the tests
// expect of the install.
const (
	unitPath = "/usr/lib/systemd/system/dorismanager.service"
	dataDir  = "/var/lib/dorismanager"
	user     = "dorismanager"
)

// machineFiles are this machine's files an install would change: they
// must be the same after the test. machinePaths must keep existing, or
// not, as they did.
var (
	machineFiles = []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/var/lib/dpkg/status"}
	machinePaths = []string{"/usr/bin/dorismanager", "/usr/bin/doris-agent", "/usr/lib/dorismanager", "/etc/dorismanager",
		dataDir, unitPath, "/usr/share/dorismanager", "/usr/share/doc/dorismanager"}
)

// require skips (fails under CI) when the machine cannot run this test.
func require(t *testing.T) {
	t.Helper()
	testhosts.Require(t) // root, ip, unshare, nsenter, sshd, tini
	var missing []string
	for _, bin := range []string{"dpkg", "dpkg-query", "chroot", "env"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(fs, []byte("\toverlay\n")) {
		missing = append(missing, "the overlay file system (modprobe overlay)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "installing the .deb into a test host needs " + strings.Join(missing, ", ") + " (a Debian machine)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestInstallDeb builds the packages with tools/packaging (what make
// package runs), installs the manager's and the agent's .deb with dpkg -i
// onto a copy-on-write view of this machine, checks what the scripts made
// (user, data dir, trusted plugin key), starts the manager as its unit
// says (ExecStart with the EnvironmentFile's variables, User, Group,
// WorkingDirectory) inside a test host's network namespace, reaches
// /readyz over the TLS of the packaged configuration, purges the packages,
// and checks that this machine's own users, package database and
// files were never touched.
func TestInstallDeb(t *testing.T) {
	require(t)
	// Registered first, so it runs last: after every other cleanup.
	before := machineState(t)
	t.Cleanup(func() {
		after := machineState(t)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("this machine changed: %s was %s, is %s", k, v, after[k])
			}
		}
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "dorismanager").CombinedOutput(); err == nil && strings.Contains(string(out), "installed") {
			t.Errorf("this machine's dpkg has dorismanager: %s", out)
		}
	})
	ctx, cancel := deadline.Context(context.Background(), 10*time.Minute)
	defer cancel()

	debs := buildPackages(ctx, t)
	hs, err := testhosts.Start(ctx, testhosts.Options{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	h := hs.Hosts[0]
	ov := startOverlay(ctx, t, debs)

	// dpkg -i, as on a host: the scripts run, in the overlay.
	if out, err := ov.run(ctx, "dpkg", "-i", "/tmp/pkg/"+filepath.Base(debs["dorismanager"]), "/tmp/pkg/"+filepath.Base(debs["doris-agent"])); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if out, err := ov.run(ctx, "dpkg-query", "-W", "-f", "${Status} ${Version}", "dorismanager"); err != nil || !strings.HasPrefix(string(out), "install ok installed 0.0.0~test") {
		t.Fatalf("dpkg-query in the overlay: %q %v", out, err)
	}
	if out, err := ov.run(ctx, "/usr/bin/doris-agent", "version"); err != nil || strings.TrimSpace(string(out)) == "" {
		t.Errorf("the agent package's doris-agent version: %q %v", out, err)
	}

	// The user, its data dir and the trusted plugin key.
	uid, gid, home, shell := lookupUser(t, ov.path("/etc/passwd"), user)
	if home != dataDir || !strings.HasSuffix(shell, "nologin") || uid == 0 || uid >= 1000 {
		t.Errorf("user %s: uid %d home %s shell %s, want a system user with home %s and no login", user, uid, home, shell, dataDir)
	}
	if g := groupID(t, ov.path("/etc/group"), user); g != gid {
		t.Errorf("group %s is %d, the user's group %d", user, g, gid)
	}
	checkOwned(t, ov.path(dataDir), uid, gid, 0o750)
	keys, _ := filepath.Glob(ov.path(dataDir + "/plugin-keys/*.pub"))
	if len(keys) != 1 {
		t.Errorf("trusted plugin keys %q, want the packaged one", keys)
	}

	// The manager, started as its unit says.
	unitText, err := os.ReadFile(ov.path(unitPath))
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(string(unitText))
	if u.last("User") != user || u.last("Group") != user {
		t.Fatalf("unit runs as %s:%s, want %s", u.last("User"), u.last("Group"), user)
	}
	env := map[string]string{}
	for _, f := range u["EnvironmentFile"] {
		optional := strings.HasPrefix(f, "-")
		text, err := os.ReadFile(ov.path(strings.TrimPrefix(f, "-")))
		if err != nil {
			if optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			t.Fatalf("EnvironmentFile %s: %v", f, err)
		}
		vars, err := parseEnvFile(string(text))
		if err != nil {
			t.Fatalf("EnvironmentFile %s: %v", f, err)
		}
		for k, v := range vars {
			env[k] = v
		}
	}
	for _, e := range u["Environment"] {
		for _, kv := range strings.Fields(e) {
			if k, v, ok := strings.Cut(strings.Trim(kv, `"`), "="); ok {
				env[k] = v
			}
		}
	}
	argv, err := execArgv(u.last("ExecStart"), env)
	if err != nil {
		t.Fatal(err)
	}
	wd := cmpOr(u.last("WorkingDirectory"), "/")
	t.Logf("ExecStart as run: %q (in %s, as %s)", argv, wd, user)
	vars := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "USER=" + user, "LOGNAME=" + user}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	// chroot takes numeric ids: the names are the overlay's, not this machine's.
	cmdArgs := append([]string{"-t", strconv.Itoa(ov.pid), "-m", "--net=/run/netns/" + h.NS, "--",
		"chroot", fmt.Sprintf("--userspec=%d:%d", uid, gid), fmt.Sprintf("--groups=%d", gid), ov.root,
		"env", "-i", "-C", wd}, vars...)
	manager := exec.Command("nsenter", append(cmdArgs, argv...)...)
	logs := &syncBuf{}
	manager.Stdout, manager.Stderr = logs, logs
	manager.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := manager.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- manager.Wait() }()
	stopManager := sync.OnceFunc(func() {
		_ = manager.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(deadline.D(30 * time.Second)):
			_ = manager.Process.Kill()
			<-exited
		}
	})
	t.Cleanup(stopManager)

	body, err := waitReady(ctx, ov, h.Addr, exited)
	if err != nil {
		t.Fatalf("%v\nmanager log:\n%s", err, logs)
	}
	t.Logf("/readyz: %s", body)
	// It runs as the unit's user (nsenter, chroot and env exec, so the
	// process is the manager itself).
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", manager.Process.Pid)); err != nil || !bytes.Contains(st, []byte(fmt.Sprintf("\nUid:\t%d\t%d\t", uid, uid))) {
		t.Errorf("the manager does not run as uid %d: %v\n%s", uid, err, st)
	}
	// The package carries only this machine's agent here, so serve warns
	// about the other architecture's, and about nothing else.
	text := logs.String()
	if !strings.Contains(text, "MISSING: no agent binary for linux/") || strings.Contains(text, "linux/"+runtime.GOARCH+" at") ||
		strings.Contains(text, "no role plugins") {
		t.Errorf("the manager's start warnings are not the expected ones:\n%s", text)
	}
	stopManager()

	// Purge: the scripts run again and the files go; the data dir and the
	// user stay (the data is the operator's to delete).
	if out, err := ov.run(ctx, "dpkg", "--purge", "dorismanager", "doris-agent"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	for p, gone := range map[string]bool{"/usr/bin/dorismanager": true, unitPath: true, "/etc/dorismanager/dorismanager.env": true, dataDir + "/pki": false} {
		if _, err := os.Stat(ov.path(p)); errors.Is(err, os.ErrNotExist) != gone {
			t.Errorf("after purge, %s: %v (want gone: %v)", p, err, gone)
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// buildPackages builds bin/ as make build does (this machine's agent only)
// and the packages with tools/packaging, and returns the .deb of each
// package. The .rpm files are made too (tools/packaging's tests read them).
func buildPackages(ctx context.Context, t *testing.T) map[string]string {
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, dist := t.TempDir(), t.TempDir()
	if err := sandbox.Build(ctx, bin); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(bin, "packaging")
	if out, err := exec.CommandContext(ctx, "go", "build", "-C", filepath.Join(root, "tools", "packaging"), "-o", tool, ".").CombinedOutput(); err != nil {
		t.Fatalf("build tools/packaging: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, tool, "--bin", bin, "--out", dist, "--version", "test", "--arches", runtime.GOARCH,
		"--license", filepath.Join(root, "LICENSE")).CombinedOutput()
	if err != nil {
		t.Fatalf("tools/packaging: %v\n%s", err, out)
	}
	debs := map[string]string{}
	rpms := 0
	for _, p := range strings.Fields(string(out)) {
		switch name := filepath.Base(p); {
		case strings.HasSuffix(name, ".deb"):
			debs[name[:strings.Index(name, "_")]] = p
		case strings.HasSuffix(name, ".rpm"):
			rpms++
		}
	}
	if debs["dorismanager"] == "" || debs["doris-agent"] == "" || rpms != 2 {
		t.Fatalf("packages made: %s", out)
	}
	return debs
}

// overlay is a mount namespace (held by a waiting shell) in which ov.root
// is this machine's root file system under a tmpfs overlay, with /proc,
// /dev, and fresh /run and /tmp: a chroot into it sees the machine and
// writes only to the tmpfs.
type overlay struct {
	pid  int    // the namespace's holder
	root string // the overlay's path inside the namespace
}

// holderScript makes the overlay ($1: an empty folder; the rest: files
// copied to /tmp/pkg in it), says "ready" and waits until its stdin closes.
const holderScript = `set -eu
w=$1; shift
mount -t tmpfs -o mode=0700 dm-pkginstall "$w"
mkdir "$w/upper" "$w/work" "$w/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$w/upper,workdir=$w/work" "$w/root"
mount -t proc proc "$w/root/proc"
mount --rbind /dev "$w/root/dev"
mount -t tmpfs -o mode=0755 run "$w/root/run"
mount -t tmpfs -o mode=1777 tmp "$w/root/tmp"
mkdir "$w/root/tmp/pkg"
for f in "$@"; do cp "$f" "$w/root/tmp/pkg/"; done
echo ready
read -r _ || true`

func startOverlay(ctx context.Context, t *testing.T, debs map[string]string) *overlay {
	t.Helper()
	work, err := os.MkdirTemp("/var/tmp", "dm-pkginstall-")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", holderScript, "sh", work}
	for _, p := range debs {
		args = append(args, p)
	}
	cmd := exec.Command("unshare", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// If the test dies, the namespace and everything in it go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
		if err := os.Remove(work); err != nil {
			t.Errorf("remove %s: %v", work, err)
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("overlay: %v: %s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("overlay: %v: %s", ctx.Err(), stderr.String())
	}
	return &overlay{pid: cmd.Process.Pid, root: filepath.Join(work, "root")}
}

// path is p inside the overlay, as this process reaches it (through the
// holder's view of the mounts).
func (ov *overlay) path(p string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", ov.pid), ov.root, p)
}

// run runs argv as root chrooted into the overlay.
func (ov *overlay) run(ctx context.Context, argv ...string) ([]byte, error) {
	args := append([]string{"-t", strconv.Itoa(ov.pid), "-m", "--", "chroot", ov.root, "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive"}, argv...)
	return exec.CommandContext(ctx, "nsenter", args...).CombinedOutput()
}

// waitReady polls the manager's /readyz on the test host over TLS, trusting
// the CA the manager made in its data dir, until it answers 200.
func waitReady(ctx context.Context, ov *overlay, host string, exited <-chan error) (string, error) {
	ctx, cancel := deadline.Context(ctx, time.Minute)
	defer cancel()
	url := "https://" + net.JoinHostPort(host, "9601") + "/readyz"
	last := "nothing yet"
	for {
		select {
		case err := <-exited:
			return "", fmt.Errorf("the manager exited (%v) before %s answered 200 (last: %s)", err, url, last)
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not answer 200 in time (last: %s)", url, last)
		case <-time.After(100 * time.Millisecond):
		}
		ca, err := os.ReadFile(ov.path(dataDir + "/pki/bundle.crt"))
		if err != nil {
			last = err.Error()
			continue
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			last = "bundle.crt holds no certificate yet"
			continue
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		if resp.StatusCode == http.StatusOK {
			return string(b), nil
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
}

// machineState is the sums of machineFiles and whether machinePaths exist.
func machineState(t *testing.T) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, p := range machineFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			st[p] = "unreadable: " + err.Error()
			continue
		}
		st[p] = fmt.Sprintf("sha256 %x", sha256.Sum256(b))
	}
	for _, p := range machinePaths {
		_, err := os.Lstat(p)
		st[p] = fmt.Sprintf("exists %v", err == nil)
	}
	return st
}

func lookupUser(t *testing.T, passwd, name string) (uid, gid int, home, shell string) {
	t.Helper()
	b, err := os.ReadFile(passwd)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == name {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			return uid, gid, f[5], f[6]
		}
	}
	t.Fatalf("no user %s in the overlay's /etc/passwd", name)
	return
}

func groupID(t *testing.T, group, name string) int {
	t.Helper()
	b, err := os.ReadFile(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) == 4 && f[0] == name {
			id, _ := strconv.Atoi(f[2])
			return id
		}
	}
	t.Fatalf("no group %s in the overlay's /etc/group", name)
	return -1
}

func checkOwned(t *testing.T, p string, uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != mode || !fi.IsDir() {
		t.Errorf("%s: %v owned by %d:%d, want a folder %v owned by %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
