// Package sandbox brings up everything an end-to-end run of Doris Manager
// needs on one machine: test hosts in network namespaces with their own
// sshd, a simulated Doris release served over HTTP on the hosts' bridge, a
// fake JAVA_HOME on every host, and the real dorismanager binary. The
// end-to-end tests and `make demo` share it.
package sandbox

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/dorissim"
	"github.com/dorismanager/dorismanager/test/exportersim"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// Options configures a Sandbox.
type Options struct {
	Hosts  int             // test hosts (default 3)
	Layout dorissim.Layout // package layout (default 2.x)
	Format dorissim.Format // package format (default tar.gz)
	// DB is the manager's database: "" for SQLite in its data dir, or a
	// postgres:// URL.
	DB string
	// BinDir holds dorismanager, agents/ and plugins/ (see Build).
	BinDir string
	// PluginsDir is the manager's --plugins-dir (default BinDir/plugins);
	// a test that installs plugins gives it a copy of its own.
	PluginsDir string
	// WorkDir holds packages, the manager's data dir and logs; default a
	// new temp dir removed by Close.
	WorkDir string
	Logger  hclog.Logger
	// ManagerOutput receives the manager's own log (default: a file in WorkDir).
	ManagerOutput io.Writer
	// ManagerArgs are more flags for `dorismanager serve` (e.g. shorter
	// --agent-keepalive for a fault test).
	ManagerArgs []string
}

// SimEnv are the simulator knobs baked into the test package: this
// machine's open-files hard limit is 20000, below Doris's 60000, and tests
// want heartbeats and join retries in a second, not five.
var SimEnv = map[string]string{
	"DORIS_SIM_MIN_NOFILE":          "10000",
	"DORIS_SIM_HEARTBEAT_INTERVAL":  "1s",
	"DORIS_SIM_JOIN_RETRY_INTERVAL": "1s",
}

// JavaHome is where every host finds the fake JDK (inside its own /opt).
const JavaHome = "/opt/jdk"

// InstallDir is the Doris install dir used on the hosts (per host: /opt is private).
const InstallDir = "/opt/doris"

// Sandbox is a running set of hosts, a package server and (once started) a manager.
type Sandbox struct {
	Opts          Options
	Hosts         *testhosts.Hosts
	PackageURL    string
	PackageSHA256 string
	// PackageSHA512 is published beside the package as <name>.sha512,
	// as Apache publishes it for its releases.
	PackageSHA512 string
	PackagePath   string
	WorkDir       string
	DataDir       string

	files   *http.Server
	filesLn net.Listener
	served  served

	mu      sync.Mutex
	manager *exec.Cmd
	waitErr chan error
	URL     string // the manager's URL (https), once started
	Token   string
	// AgentURL is the manager's agent endpoint (mutual TLS).
	AgentURL string
	ownWork  bool
	logFile  *os.File
	logName  string // of the manager's log in WorkDir; "" for manager.log
	twin     bool   // made by Twin: Close stops only its manager

	pwMu    sync.Mutex
	adminPW map[int64]string // revealed admin passwords, by cluster
}

// Start brings up the hosts and the package server; the manager is started
// with StartManager.
func Start(ctx context.Context, o Options) (_ *Sandbox, err error) {
	if o.Hosts == 0 {
		o.Hosts = 3
	}
	if o.Layout == "" {
		o.Layout = dorissim.Layout2x
	}
	if o.Format == "" {
		o.Format = dorissim.TarGz
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	s := &Sandbox{Opts: o, WorkDir: o.WorkDir}
	if s.WorkDir == "" {
		if s.WorkDir, err = os.MkdirTemp("", "dm-sandbox-"); err != nil {
			return nil, err
		}
		s.ownWork = true
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.DataDir = filepath.Join(s.WorkDir, "data")
	if s.Hosts, err = testhosts.Start(ctx, testhosts.Options{N: o.Hosts, Logger: o.Logger}); err != nil {
		return nil, fmt.Errorf("test hosts: %w", err)
	}
	for _, h := range s.Hosts.Hosts {
		if err := dorissim.WriteFakeJavaHome(filepath.Join(h.Root, strings.TrimPrefix(JavaHome, "/opt/"))); err != nil {
			return nil, fmt.Errorf("JAVA_HOME on %s: %w", h.Name, err)
		}
	}
	if err := s.pack(ctx); err != nil {
		return nil, err
	}
	if err := s.serveFiles(); err != nil {
		return nil, err
	}
	return s, nil
}

// pack packs a release with the simulator and its packer (simTools), in
// processes built without -race, so packing stays fast even when the test
// binary itself runs with it.
func (s *Sandbox) pack(ctx context.Context) error {
	pkgDir := filepath.Join(s.WorkDir, "packages")
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		return err
	}
	sim, tool, err := s.simTools(ctx)
	if err != nil {
		return err
	}
	name := "apache-doris-" + dorissim.DefaultVersion(s.Opts.Layout) + "-bin-x64." + string(s.Opts.Format)
	if s.Opts.Layout == dorissim.Layout015 {
		name = "PALO-" + dorissim.DefaultVersion(s.Opts.Layout) + "-binary." + string(s.Opts.Format)
	}
	s.PackagePath = filepath.Join(pkgDir, name)
	if _, err := dorissim.PackByCommand(ctx, tool, dorissim.PackOptions{Layout: s.Opts.Layout, Format: s.Opts.Format, Out: s.PackagePath,
		SimBinary: sim, SimEnv: SimEnv}); err != nil {
		return fmt.Errorf("pack the simulated release: %w", err)
	}
	sum, err := fileSHA256(s.PackagePath)
	if err != nil {
		return err
	}
	s.PackageSHA256 = sum
	s.PackageSHA512, err = PublishSHA512(s.PackagePath)
	return err
}

// simTools are the Doris simulator and its packer: the ones Build put in
// BinDir, else the work dir's, built there the first time (a BinDir
// built otherwise, as by make).
func (s *Sandbox) simTools(ctx context.Context) (sim, tool string, err error) {
	for _, dir := range []string{s.Opts.BinDir, s.WorkDir} {
		sim, tool = filepath.Join(dir, simName), filepath.Join(dir, packToolName)
		if fileExists(sim) && fileExists(tool) {
			return sim, tool, nil
		}
	}
	if err := buildSimTools(ctx, s.WorkDir); err != nil {
		return "", "", err
	}
	return sim, tool, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PublishSHA512 writes <path>.sha512 as Apache publishes it beside a
// release ("<hex>  <file name>", sha512sum's format) and returns the sum.
func PublishSHA512(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return sum, os.WriteFile(path+".sha512", []byte(sum+"  "+filepath.Base(path)+"\n"), 0o644)
}

// serveFiles serves the packages folder on the bridge address, the one
// address every host can reach.
func (s *Sandbox) serveFiles() error {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.Hosts.BridgeAddr, "0"))
	if err != nil {
		return fmt.Errorf("package server: %w", err)
	}
	s.filesLn = ln
	s.served.byPath = map[string]*Served{}
	s.files = &http.Server{Handler: s.served.wrap(http.FileServer(http.Dir(filepath.Dir(s.PackagePath)))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.files.Serve(ln) }()
	s.PackageURL = fmt.Sprintf("http://%s/%s", ln.Addr().String(), filepath.Base(s.PackagePath))
	return nil
}

// Served is what the package server sent for one file: GET requests and
// body bytes written.
type Served struct {
	Gets  int64
	Bytes int64
}

type served struct {
	mu     sync.Mutex
	byPath map[string]*Served
}

// wrap counts the GETs and body bytes of every path h answers.
func (c *served) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if r.Method == http.MethodGet {
			c.add(name, 1, 0)
		}
		h.ServeHTTP(countingWriter{w, func(n int) { c.add(name, 0, int64(n)) }}, r)
	})
}

func (c *served) add(name string, gets, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byPath[name]
	if e == nil {
		e = &Served{}
		c.byPath[name] = e
	}
	e.Gets += gets
	e.Bytes += n
}

type countingWriter struct {
	http.ResponseWriter
	add func(int)
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.add(n)
	return n, err
}

// Served says what the package server sent of the file name (the base
// name of PackagePath for the Doris package) since it started.
func (s *Sandbox) Served(name string) Served {
	s.served.mu.Lock()
	defer s.served.mu.Unlock()
	if e := s.served.byPath[name]; e != nil {
		return *e
	}
	return Served{}
}

// FileURL is the URL of a file name in the package server (which may not exist).
func (s *Sandbox) FileURL(name string) string {
	return fmt.Sprintf("http://%s/%s", s.filesLn.Addr().String(), name)
}

// StartManager starts bin/dorismanager serve on the bridge address, the
// API over TLS with a certificate from the manager's CA (--tls auto) and
// the agent endpoint beside it, and waits until it answers. A second call
// after StopManager reuses the same data dir and ports (a restart).
func (s *Sandbox) StartManager(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manager != nil {
		return errors.New("the manager is already running")
	}
	addr, agentAddr := strings.TrimPrefix(s.URL, "https://"), strings.TrimPrefix(s.AgentURL, "https://")
	if s.URL == "" {
		var err error
		if addr, err = freePort(s.Hosts.BridgeAddr); err != nil {
			return err
		}
		if agentAddr, err = freePort(s.Hosts.BridgeAddr); err != nil {
			return err
		}
	}
	url, agentURL := "https://"+addr, "https://"+agentAddr
	// The manager accepts the plugins Build signed: trust its key, as
	// `make run` does.
	if pub := filepath.Join(s.Opts.BinDir, DevKey+".pub"); fileExists(pub) {
		if err := manage(ctx, s.Opts.BinDir, "plugins", "--data-dir", s.DataDir, "trust", pub); err != nil {
			return err
		}
	}
	args := []string{"serve", "--listen", addr, "--agent-listen", agentAddr, "--tls", "auto", "--data-dir", s.DataDir,
		"--advertise-url", agentURL, "--plugins-dir", s.PluginsDir()}
	if s.Opts.DB != "" {
		args = append(args, "--db", s.Opts.DB)
	}
	args = append(args, s.Opts.ManagerArgs...)
	cmd := exec.Command(filepath.Join(s.Opts.BinDir, "dorismanager"), args...)
	out := s.Opts.ManagerOutput
	if out == nil {
		if s.logFile == nil {
			f, err := os.OpenFile(s.ManagerLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return err
			}
			s.logFile = f
		}
		out = s.logFile
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so a kill takes its plugin processes along
	// the way a crashed manager would leave them to their own fate.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dorismanager: %w", err)
	}
	s.manager, s.URL, s.AgentURL = cmd, url, agentURL
	s.waitErr = make(chan error, 1)
	go func(ch chan error) { ch <- cmd.Wait() }(s.waitErr)
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(s.DataDir, "admin.token"))
	if err != nil {
		return fmt.Errorf("read the admin token: %w", err)
	}
	s.Token = strings.TrimSpace(string(tok))
	return nil
}

// waitReady waits for the manager's port to accept connections (or for
// the process to die, which ends the wait at once).
func (s *Sandbox) waitReady(ctx context.Context) error {
	ctx, cancel := deadline.Context(ctx, 30*time.Second)
	defer cancel()
	addr := strings.TrimPrefix(s.URL, "https://")
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-s.waitErr:
			s.manager = nil
			return fmt.Errorf("dorismanager exited before it was ready: %v (see %s)", err, s.ManagerLog())
		case <-ctx.Done():
			return fmt.Errorf("dorismanager did not listen on %s: %w", addr, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// ManagerLog is the manager's log file (when no ManagerOutput was given).
func (s *Sandbox) ManagerLog() string {
	if s.logName != "" {
		return filepath.Join(s.WorkDir, s.logName)
	}
	return filepath.Join(s.WorkDir, "manager.log")
}

// StopManager stops the manager: SIGTERM, or SIGKILL when kill is set.
func (s *Sandbox) StopManager(kill bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manager == nil {
		return nil
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = s.manager.Process.Signal(sig)
	var err error
	select {
	case err = <-s.waitErr:
	case <-time.After(deadline.D(30 * time.Second)):
		_ = s.manager.Process.Kill()
		err = <-s.waitErr
	}
	if kill {
		// The plugin processes of a killed manager exit on their own once
		// their parent is gone; take them down so the next start is clean.
		_ = syscall.Kill(-s.manager.Process.Pid, syscall.SIGKILL)
		err = nil
	}
	s.manager = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("dorismanager exited with %v (see %s)", err, s.ManagerLog())
	}
	return err
}

// Close stops the manager and tears everything down.
func (s *Sandbox) Close() {
	_ = s.StopManager(false)
	if s.twin {
		if s.logFile != nil {
			_ = s.logFile.Close()
		}
		return
	}
	if s.files != nil {
		_ = s.files.Close()
	}
	if s.Hosts != nil {
		_ = s.Hosts.Close()
	}
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	if s.ownWork {
		_ = os.RemoveAll(s.WorkDir)
	}
}

// MaxMapCountFile is global to the machine: the BE plugin's autoFix raises
// it as an operator would, and whoever runs sandboxes restores it after.
const MaxMapCountFile = "/proc/sys/vm/max_map_count"

// SaveMaxMapCount returns a func that restores vm.max_map_count.
func SaveMaxMapCount() func() {
	old, err := os.ReadFile(MaxMapCountFile)
	if err != nil {
		return func() {}
	}
	return func() { _ = os.WriteFile(MaxMapCountFile, old, 0o644) }
}

// freePort picks a free port on host (it may be taken again before use,
// which the manager's start then reports).
func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// CABundle is the manager's CA bundle (PEM), what API clients and tests
// trust.
func (s *Sandbox) CABundle() ([]byte, error) {
	return os.ReadFile(filepath.Join(s.DataDir, "pki", "bundle.crt"))
}

// PluginsDir is the manager's plugins directory.
func (s *Sandbox) PluginsDir() string {
	if s.Opts.PluginsDir != "" {
		return s.Opts.PluginsDir
	}
	return filepath.Join(s.Opts.BinDir, "plugins")
}

// ExporterPackage packs the node exporter imitation's release into the
// package server (its SHA-512 published beside it) and returns its URL and
// SHA-256.
func (s *Sandbox) ExporterPackage(ctx context.Context) (url, sha string, err error) {
	p, err := exportersim.Pack(ctx, filepath.Dir(s.PackagePath), exportersim.DefaultVersion)
	if err != nil {
		return "", "", err
	}
	if sha, err = fileSHA256(p); err != nil {
		return "", "", err
	}
	if _, err := PublishSHA512(p); err != nil {
		return "", "", err
	}
	return s.FileURL(filepath.Base(p)), sha, nil
}
