// Package testhosts brings up throwaway Linux "hosts" for tests: one network
// namespace per host, joined to a bridge in the root namespace, each running
// its own OpenSSH server in its own UTS and mount namespace with a private
// /opt and /etc/hosts. Needs root, ip(8), unshare(1), nsenter(1) and sshd.
package testhosts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
)

// SSHD is the OpenSSH server binary the hosts run.
const SSHD = "/usr/sbin/sshd"

// Init is the first process of every host (Debian package tini): sshd runs
// under it, and as a child subreaper it reaps the host's orphans at once,
// as a real host's init does. Without it they would wait for the machine's
// PID 1, which here reaps late: a daemon that died would stay a zombie,
// and start scripts that test its pid with kill -0 would think it alive.
const Init = "/usr/bin/tini"

// BaseDir holds every set of hosts' files and the machine-wide lock unless
// TESTHOSTS_DIR names another folder. It is not /tmp: each host gets a
// private /tmp mounted over the machine's, and sshd must still see its own
// config and keys.
const BaseDir = "/var/tmp"

func baseDir() string {
	if d := os.Getenv("TESTHOSTS_DIR"); d != "" {
		return d
	}
	return BaseDir
}

// Options configure Start.
type Options struct {
	N      int          // number of hosts (default 1)
	Logger hclog.Logger // optional
}

// Keys are client keys accepted by every host for user root, in OpenSSH PEM.
type Keys struct {
	RSA, ECDSA, Ed25519 []byte
	// Ed25519Encrypted is another accepted ed25519 key, encrypted with Passphrase.
	Ed25519Encrypted []byte
	Passphrase       string
	// Unauthorized is a valid key that no host accepts.
	Unauthorized []byte
}

// Hosts is one running set of test hosts.
type Hosts struct {
	Hosts      []*Host
	BridgeAddr string // root-namespace IPv4 address on the hosts' bridge
	Subnet     string // e.g. 10.213.57.0/24
	User       string // always "root"
	Keys       Keys
	Dir        string // temp dir holding every host's files

	log      hclog.Logger
	bridge   string
	owner    Owner
	detached bool
}

// Host is one test host.
type Host struct {
	Name    string // hostname inside the host
	Addr    string // IPv4 address
	Port    int    // sshd port (22)
	Root    string // the real directory mounted over /opt inside the host
	Home    string // the real directory mounted over /root inside the host
	Tmp     string // the real directory mounted over /tmp inside the host
	NS      string // network namespace name
	Dir     string // the host's private files (sshd config, keys, log)
	SSHDLog string // sshd's log file

	hs      *Hosts
	veth    string // root-side veth
	initPid int    // the host's first process (Init), sshd's parent
	hostKey ssh.PublicKey
}

// Require skips the test when the machine cannot run test hosts, unless the
// CI environment variable is set, in which case it fails.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root privileges")
	}
	for _, bin := range []string{"ip", "unshare", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if _, err := os.Stat(SSHD); err != nil {
		missing = append(missing, SSHD+" (Debian package openssh-server)")
	}
	if _, err := os.Stat(Init); err != nil {
		missing = append(missing, Init+" (Debian package tini)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "test hosts need " + strings.Join(missing, ", ")
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Start creates opts.N hosts and waits until each sshd accepts connections.
// Call Close when done, even after an error-free run. It first removes the
// hosts of earlier processes that died without Close (see Detach for hosts
// meant to outlive their process).
func Start(ctx context.Context, opts Options) (_ *Hosts, err error) {
	if opts.N <= 0 {
		opts.N = 1
	}
	if opts.N > 250 {
		return nil, fmt.Errorf("testhosts: at most 250 hosts, asked for %d", opts.N)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	dir, err := os.MkdirTemp(baseDir(), "testhosts-")
	if err != nil {
		return nil, err
	}
	hs := &Hosts{Dir: dir, User: "root", log: log.Named("testhosts")}
	defer func() {
		if err != nil {
			_ = hs.Close()
		}
	}()
	// The record exists before anything else does, so whatever this
	// process leaves behind when it is killed can be found and removed.
	if hs.owner, err = selfOwner(); err != nil {
		return nil, fmt.Errorf("testhosts: who am I: %w", err)
	}
	if err := hs.save(); err != nil {
		return nil, err
	}
	if err := hs.makeKeys(); err != nil {
		return nil, err
	}
	if err := hs.lockedNetwork(ctx, opts.N); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	for _, h := range hs.Hosts {
		if err := h.startSSHD(ctx); err != nil {
			return nil, err
		}
	}
	for _, h := range hs.Hosts {
		if err := h.waitSSH(ctx); err != nil {
			return nil, err
		}
	}
	hs.log.Debug("hosts up", "n", opts.N, "subnet", hs.Subnet, "bridge", hs.bridge)
	return hs, nil
}

func run(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// lockedNetwork holds a machine-wide lock while it removes the hosts of
// dead processes, picks a free subnet and name prefix (so parallel test
// binaries never collide) and builds bridge, namespaces and veths.
func (hs *Hosts) lockedNetwork(ctx context.Context, n int) error {
	lock, err := os.OpenFile(filepath.Join(baseDir(), "testhosts.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); lock.Close() }()
	// A failure to remove someone else's leftovers is no reason to fail
	// this test; it is logged and tried again by the next Start.
	if err := reap(ctx, hs.log); err != nil {
		hs.log.Warn("stale test hosts left", "error", err)
	}
	return hs.network(ctx, n)
}

// network builds bridge, namespaces and veths; the caller holds the lock.
func (hs *Hosts) network(ctx context.Context, n int) error {
	used := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			used[a.String()] = true
		}
	}
	var b [2]byte
	third := -1
	for range 64 {
		_, _ = rand.Read(b[:])
		c := 1 + int(b[0])%254
		if !used[fmt.Sprintf("10.213.%d.1/24", c)] {
			third = c
			break
		}
	}
	if third < 0 {
		return errors.New("testhosts: no free 10.213.x.0/24 subnet")
	}
	// A prefix no link or namespace uses yet: Close removes every name
	// with it that the record lists, so none may be someone else's.
	prefix := ""
	for range 64 {
		_, _ = rand.Read(b[:])
		p := "th" + hex.EncodeToString(b[:]) // 6 chars, leaves room in IFNAMSIZ
		links, _ := filepath.Glob(filepath.Join("/sys/class/net", p+"*"))
		spaces, _ := filepath.Glob(filepath.Join("/run/netns", p+"-*"))
		if len(links) == 0 && len(spaces) == 0 {
			prefix = p
			break
		}
	}
	if prefix == "" {
		return errors.New("testhosts: no free name prefix")
	}
	hs.Subnet = fmt.Sprintf("10.213.%d.0/24", third)
	hs.BridgeAddr = fmt.Sprintf("10.213.%d.1", third)
	hs.bridge = prefix + "br"
	for i := range n {
		h := &Host{
			hs:   hs,
			Name: fmt.Sprintf("host%d", i+1),
			Addr: fmt.Sprintf("10.213.%d.%d", third, i+2),
			Port: 22,
			NS:   fmt.Sprintf("%s-h%d", prefix, i+1),
			veth: fmt.Sprintf("%sv%d", prefix, i+1),
			Dir:  filepath.Join(hs.Dir, fmt.Sprintf("host%d", i+1)),
		}
		h.Root = filepath.Join(h.Dir, "opt")
		h.Home, h.Tmp = filepath.Join(h.Dir, "root"), filepath.Join(h.Dir, "tmp")
		h.SSHDLog = filepath.Join(h.Dir, "sshd.log")
		hs.Hosts = append(hs.Hosts, h)
	}
	// Every name is in the record before the first of them exists; Close
	// skips what was never made.
	if err := hs.save(); err != nil {
		return err
	}
	if err := run(ctx, "ip", "link", "add", hs.bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := run(ctx, "ip", "addr", "add", hs.BridgeAddr+"/24", "dev", hs.bridge); err != nil {
		return err
	}
	if err := run(ctx, "ip", "link", "set", hs.bridge, "up"); err != nil {
		return err
	}
	for i, h := range hs.Hosts {
		peer := fmt.Sprintf("%sp%d", prefix, i+1)
		if err := run(ctx, "ip", "netns", "add", h.NS); err != nil {
			return err
		}
		steps := [][]string{
			{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer},
			{"ip", "link", "set", peer, "netns", h.NS},
			{"ip", "link", "set", h.veth, "master", hs.bridge},
			{"ip", "link", "set", h.veth, "up"},
			{"ip", "-n", h.NS, "link", "set", peer, "name", "eth0"},
			{"ip", "-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
			{"ip", "-n", h.NS, "link", "set", "lo", "up"},
			{"ip", "-n", h.NS, "route", "add", "default", "via", hs.BridgeAddr},
		}
		for _, s := range steps {
			if err := run(ctx, s...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (hs *Hosts) makeKeys() error {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	_, encKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	_, badKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	hs.Keys.Passphrase = "test-passphrase-" + randHex(4)
	var auth bytes.Buffer
	for _, k := range []struct {
		key any
		dst *[]byte
	}{{rsaKey, &hs.Keys.RSA}, {ecKey, &hs.Keys.ECDSA}, {edKey, &hs.Keys.Ed25519}, {badKey, &hs.Keys.Unauthorized}, {encKey, &hs.Keys.Ed25519Encrypted}} {
		var blk *pem.Block
		if k.dst == &hs.Keys.Ed25519Encrypted {
			blk, err = ssh.MarshalPrivateKeyWithPassphrase(k.key, "", []byte(hs.Keys.Passphrase))
		} else {
			blk, err = ssh.MarshalPrivateKey(k.key, "")
		}
		if err != nil {
			return err
		}
		*k.dst = pem.EncodeToMemory(blk)
		if k.dst == &hs.Keys.Unauthorized {
			continue
		}
		signer, err := ssh.NewSignerFromKey(k.key)
		if err != nil {
			return err
		}
		auth.Write(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	}
	return os.WriteFile(filepath.Join(hs.Dir, "authorized_keys"), auth.Bytes(), 0o600)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeHostKey generates a fresh ed25519 host key for h.
func (h *Host) writeHostKey() error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	path := filepath.Join(h.Dir, "ssh_host_ed25519_key")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(blk), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	h.hostKey = sp
	return nil
}

// HostKeyFingerprint is the SHA256 fingerprint of the host's current key.
func (h *Host) HostKeyFingerprint() string { return ssh.FingerprintSHA256(h.hostKey) }

// HostPublicKey is the host's current public key.
func (h *Host) HostPublicKey() ssh.PublicKey { return h.hostKey }

// Dotfiles are the start files of root's home on every host: what a plain
// Debian install has in spirit, and nothing of the machine's own setup.
var Dotfiles = map[string]string{
	".profile": "# ~/.profile of a test host\nif [ -n \"$BASH_VERSION\" ] && [ -f \"$HOME/.bashrc\" ]; then . \"$HOME/.bashrc\"; fi\n",
	".bashrc":  "# ~/.bashrc of a test host\n[ -z \"$PS1\" ] && return\n",
}

// makeTree creates the folders mounted over the host's /opt, /root and
// /tmp: a host shares no user setup and no temp files with the machine or
// with the other hosts.
func (h *Host) makeTree() error {
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{h.Root, 0o755}, {h.Home, 0o700}, {h.Tmp, 0o1777}} {
		if err := os.MkdirAll(d.path, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil { // MkdirAll's mode passes the umask
			return err
		}
	}
	for name, text := range Dotfiles {
		if err := os.WriteFile(filepath.Join(h.Home, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (h *Host) startSSHD(ctx context.Context) error {
	if err := h.makeTree(); err != nil {
		return fmt.Errorf("testhosts: folders of %s: %w", h.Name, err)
	}
	if err := h.writeHostKey(); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s\n", h.Addr, h.Name)
	for _, o := range h.hs.Hosts {
		if o != h {
			hosts += fmt.Sprintf("%s\t%s\n", o.Addr, o.Name)
		}
	}
	hostsFile := filepath.Join(h.Dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hosts), 0o644); err != nil {
		return err
	}
	conf := strings.Join([]string{
		"Port 22",
		"ListenAddress " + h.Addr,
		"HostKey " + filepath.Join(h.Dir, "ssh_host_ed25519_key"),
		"AuthorizedKeysFile " + filepath.Join(h.hs.Dir, "authorized_keys"),
		"PidFile " + filepath.Join(h.Dir, "sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		// Debian's default: an external sftp-server, which sshd starts
		// through the user's login shell (so its start files can print
		// into the sftp stream, as on real hosts).
		"Subsystem sftp /usr/lib/openssh/sftp-server",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	confFile := filepath.Join(h.Dir, "sshd_config")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(h.SSHDLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Data goes in as positional parameters of a fixed script.
	script := `hostname "$1" && mount --bind "$2" /opt && mount --bind "$3" /etc/hosts &&
mount --bind "$4" /root && mount --bind "$5" /tmp && exec "$8" -s -- "$6" -D -e -f "$7"`
	cmd := exec.Command("ip", "netns", "exec", h.NS,
		"unshare", "--uts", "--mount", "--propagation", "private",
		"sh", "-c", script, "sh", h.Name, h.Root, hostsFile, h.Home, h.Tmp, SSHD, confFile, Init)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd of %s: %w", h.Name, err)
	}
	h.initPid = cmd.Process.Pid // exec chain keeps the pid: ip -> unshare -> sh -> tini
	go func() { _ = cmd.Wait() }()
	return nil
}

// waitSSH waits until the host's sshd answers with its banner.
func (h *Host) waitSSH(ctx context.Context) error {
	until := time.Now().Add(deadline.D(15 * time.Second))
	delay := 10 * time.Millisecond
	addr := net.JoinHostPort(h.Addr, strconv.Itoa(h.Port))
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, err = c.Read(buf)
			c.Close()
			if err == nil && string(buf) == "SSH-" {
				return nil
			}
		}
		if time.Now().After(until) {
			log, _ := os.ReadFile(h.SSHDLog)
			return fmt.Errorf("sshd of %s did not come up at %s: %v; log: %s", h.Name, addr, err, log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// Exec runs argv inside the host (its network, mount and UTS namespaces)
// and returns the combined output.
func (h *Host) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	args := append([]string{"--target", strconv.Itoa(h.initPid), "--net", "--mount", "--uts", "--"}, argv...)
	out, err := exec.CommandContext(ctx, "nsenter", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("on %s: %s: %w: %s", h.Name, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// SetReachable cuts (false) or restores (true) the host's link to the
// bridge; while cut, traffic to and from the host is dropped.
func (h *Host) SetReachable(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run(ctx, "ip", "link", "set", h.veth, state)
}

// RotateHostKey gives the host a new host key and makes sshd reload it.
func (h *Host) RotateHostKey(ctx context.Context) error {
	old := h.hostKey
	if err := h.writeHostKey(); err != nil {
		return err
	}
	var logged int64
	if fi, err := os.Stat(h.SSHDLog); err == nil {
		logged = fi.Size()
	}
	// tini passes SIGHUP on to sshd, which re-executes itself, keeping its
	// pid and namespaces.
	if err := syscall.Kill(h.initPid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload sshd of %s: %w", h.Name, err)
	}
	// Wait until the re-executed sshd listens again, then until it serves
	// the new key. A connection the old listener takes before it handles
	// the signal gets the new key too (each connection reads the key
	// files), so the key alone does not say the restart is over.
	until := time.Now().Add(deadline.D(10 * time.Second))
	for {
		var got ssh.PublicKey
		err := h.relistened(logged)
		if err == nil {
			got, err = h.ScanHostKey(ctx)
		}
		if err == nil && !bytes.Equal(got.Marshal(), old.Marshal()) {
			return nil
		}
		if time.Now().After(until) {
			return fmt.Errorf("sshd of %s did not restart with its new key: %v", h.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// relistened tells whether sshd's log, past offset from, shows it
// listening again after a SIGHUP.
func (h *Host) relistened(from int64) error {
	f, err := os.Open(h.SSHDLog)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, from, 1<<20))
	if err != nil {
		return err
	}
	if i := bytes.Index(b, []byte("Received SIGHUP")); i < 0 || !bytes.Contains(b[i:], []byte("Server listening on")) {
		return errors.New("sshd has not restarted yet")
	}
	return nil
}

// ScanHostKey returns the key the host's sshd presents.
func (h *Host) ScanHostKey(ctx context.Context) (ssh.PublicKey, error) {
	var got ssh.PublicKey
	errGot := errors.New("got key")
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	cfg := &ssh.ClientConfig{User: "probe", HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
		got = key
		return errGot
	}}
	_, _, _, err = ssh.NewClientConn(conn, h.Addr, cfg)
	if got != nil {
		return got, nil
	}
	return nil, err
}

// PidAlive tells whether pid exists and is not a zombie. Use it instead of
// kill(pid, 0): PID 1 on these machines reaps orphans late.
func PidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// Pids lists the processes running in the host's network namespace.
func (h *Host) Pids(ctx context.Context) ([]int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", h.NS).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", h.NS, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// netnsExists and linkExists let Close skip what a killed Start never
// made or an earlier Close already removed.
func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// Close kills every process of every host, removes namespaces, links and
// files. What is already gone is skipped.
func (hs *Hosts) Close() error {
	ctx, cancel := deadline.Context(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, h := range hs.Hosts {
		if !netnsExists(h.NS) {
			if h.veth != "" && linkExists(h.veth) {
				_ = run(ctx, "ip", "link", "del", h.veth)
			}
			continue
		}
		pids, _ := h.Pids(ctx)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		for _, p := range pids {
			for PidAlive(p) && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond) // a SIGKILLed process dies promptly
			}
		}
		// Delete the root-side veth first: the kernel removes a deleted
		// namespace's devices asynchronously, so relying on the netns
		// deletion would leave the peer visible for a moment.
		if h.veth != "" && linkExists(h.veth) {
			_ = run(ctx, "ip", "link", "del", h.veth)
		}
		if err := run(ctx, "ip", "netns", "del", h.NS); err != nil {
			errs = append(errs, err)
		}
	}
	if hs.bridge != "" && linkExists(hs.bridge) {
		if err := run(ctx, "ip", "link", "del", hs.bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if hs.Dir != "" {
		if err := os.RemoveAll(hs.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
