// Package agent is the doris-agent daemon: it registers with the manager and
// heartbeats, reports hardware, and serves an HTTP API over mutual TLS (the
// manager's certificate only) to run commands, write and read files and
// download packages on its host. It renews its own certificate before it
// expires and keeps the manager's CA bundle up to date. Every
// mutating request carries a requestId whose result is recorded on disk, so
// a re-sent request is answered from the record instead of running twice.
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/hashicorp/go-hclog"
)

// DefaultVersion is the version an agent reports when its binary was not
// stamped with one (SetVersion; the Makefile stamps the build's version).
const DefaultVersion = "dev"

// LoadConfig reads and validates a config file, filling defaults.
func LoadConfig(path string) (wire.Config, error) {
	var c wire.Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read agent config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("agent config %s: %w", path, err)
	}
	if c.Listen == "" {
		// Every interface only when the config says so (":9602").
		if c.Host == "" {
			return c, fmt.Errorf("agent config %s: listen and host are empty: set listen to the address to serve on (\":%d\" for every interface)", path, wire.DefaultPort)
		}
		c.Listen = net.JoinHostPort(c.Host, strconv.Itoa(wire.DefaultPort))
	}
	if c.HeartbeatSeconds <= 0 {
		c.HeartbeatSeconds = 5
	}
	if c.MaxDownloadBytes <= 0 {
		c.MaxDownloadBytes = 8 << 30
	}
	if c.DataDir == "" {
		return c, fmt.Errorf("agent config %s: dataDir is empty", path)
	}
	if c.ServerURL == "" && len(c.ServerURLs) > 0 {
		c.ServerURL = c.ServerURLs[0]
	}
	for _, u := range c.ManagerURLs() {
		if !strings.HasPrefix(u, "https://") {
			return c, fmt.Errorf("agent config %s: manager URL %q must be an https:// URL (a manager's agent endpoint); reinstall the agent from the manager", path, u)
		}
	}
	if len(c.ManagerURLs()) == 0 {
		return c, fmt.Errorf("agent config %s: serverURL is empty: reinstall the agent from the manager", path)
	}
	if c.CertFile == "" || c.CAFile == "" {
		return c, fmt.Errorf("agent config %s: certFile and caFile are required (a config from before mutual TLS): reinstall the agent from the manager", path)
	}
	if c.RenewFraction < 0 || c.RenewFraction >= 1 {
		return c, fmt.Errorf("agent config %s: renewFraction %v must be between 0 and 1", path, c.RenewFraction)
	}
	return c, nil
}

// DefaultHTTP are the agent's HTTP limits. Requests are JSON bodies of at
// most 64 MiB (a file write); exec and download answers stream for as
// long as the work runs, each write bounded by WriteTimeout. The manager
// is the only client, with a few connections per running task.
func DefaultHTTP() netguard.Limits {
	return netguard.Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConns:          256,
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Agent is one running agent.
type Agent struct {
	cfg     wire.Config
	log     hclog.Logger
	limits  netguard.Limits
	id      string // UUID kept in dataDir
	port    int
	results *results
	// managers are the managers' agent endpoints, the current one first.
	managers *managers
	// creds are the certificate, key and trusted CAs in use; mgr is the
	// client for the manager built from them (replaced with them).
	creds   atomic.Pointer[creds]
	mgr     atomic.Pointer[http.Client]
	renewMu sync.Mutex
	// retryRenew is when a failed renewal may be tried again (only the
	// report loop touches it).
	retryRenew time.Time
	hbEvery    time.Duration
	// pidFiles are the role pid files the manager last named; reported
	// in every register and heartbeat.
	pidFiles atomic.Pointer[[]wire.PidFile]

	dlMu    sync.Mutex
	dlLocks map[string]*sync.Mutex
	mem     *memLimit
	version string // reported at registration and by health

	desiredMu sync.Mutex    // data/desired.json
	quit      chan struct{} // closed once the agent uninstalled itself
	quitOnce  sync.Once
}

// SetVersion sets the version the agent reports; call it before Run.
func (a *Agent) SetVersion(v string) {
	if v != "" {
		a.version = v
	}
}

// New prepares an agent: creates its directories and loads (or creates) its identity.
func New(cfg wire.Config, log hclog.Logger) (*Agent, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	for _, d := range []string{"", "log", "results", "cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("agent data dir: %w", err)
		}
	}
	// tmp holds partial downloads only while they run: what a new agent
	// finds there was left by one that died mid-download.
	if err := clearDir(filepath.Join(cfg.DataDir, "tmp")); err != nil {
		return nil, fmt.Errorf("agent data dir: clear partial downloads: %w", err)
	}
	id, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	c, err := loadCreds(cfg.CertFile, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:     cfg,
		log:     log,
		version: DefaultVersion,
		limits: netguard.Limits{ReadHeaderTimeout: seconds(cfg.ReadHeaderTimeoutSeconds), ReadTimeout: seconds(cfg.ReadTimeoutSeconds),
			WriteTimeout: seconds(cfg.WriteTimeoutSeconds), IdleTimeout: seconds(cfg.IdleTimeoutSeconds), MaxConns: cfg.MaxConns}.Or(DefaultHTTP()),
		id:       id,
		results:  &results{dir: filepath.Join(cfg.DataDir, "results"), running: map[string]*inflight{}},
		hbEvery:  time.Duration(cfg.HeartbeatSeconds) * time.Second,
		managers: newManagers(cfg, loadLearned(cfg.DataDir)),
		dlLocks:  map[string]*sync.Mutex{},
		mem:      newMemLimit(),
		quit:     make(chan struct{}),
	}
	a.setCreds(c)
	return a, nil
}

// clearDir removes everything inside dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// ID is the agent's persistent UUID.
func (a *Agent) ID() string { return a.id }

func loadIdentity(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "agent-id")
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read agent identity: %w", err)
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	if err := writeAtomic(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save agent identity: %w", err)
	}
	return id, nil
}

// Run listens, registers and heartbeats until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// Serve is Run on a given listener: it speaks only TLS 1.3 there and
// answers only the manager (see serverTLS).
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	a.port = ln.Addr().(*net.TCPAddr).Port
	_ = writeAtomic(filepath.Join(a.cfg.DataDir, "agent.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	ln = a.limits.Listener(ln)
	srv := a.limits.Server(a.Handler())
	// Refused handshakes (scanners, wrong certificates) only at debug level.
	srv.ErrorLog = a.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, a.serverTLS())) }()
	a.log.Info("agent listening", "addr", ln.Addr().String(), "agentId", a.id, "version", a.version)
	go a.report(ctx)
	go a.results.housekeep(ctx, func(n int) { a.log.Info("removed old task results", "count", n) })
	go a.restoreRoles(ctx)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-a.quit:
		a.log.Info("agent uninstalled: exiting")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// report registers (retrying with backoff) and then heartbeats; it goes
// back to registering when the manager no longer knows the agent.
func (a *Agent) report(ctx context.Context) {
	for ctx.Err() == nil {
		if !a.registerLoop(ctx) {
			return
		}
		t := time.NewTicker(a.hbEvery)
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			if ctx.Err() != nil {
				break
			}
			var beat wire.Beat
			status, err := a.post(ctx, wire.HeartbeatPath, wire.Heartbeat{AgentID: a.id, Processes: a.processes(),
				BundleSHA256: a.creds.Load().bundleSum}, &beat)
			if err != nil {
				a.log.Warn("heartbeat failed", "error", err)
				if status == http.StatusUnauthorized || status == http.StatusNotFound {
					break
				}
				continue
			}
			a.answered(ctx, beat)
		}
		t.Stop()
	}
}

func (a *Agent) registerLoop(ctx context.Context) bool {
	delay := 500 * time.Millisecond
	for {
		var reg wire.Registered
		body := wire.Register{AgentID: a.id, Host: a.cfg.Host, Port: a.port, Version: a.version,
			Hardware: Hardware(a.cfg.DataDir, a.cfg.InstallDir), Processes: a.processes()}
		_, err := a.post(ctx, wire.RegisterPath, body, &reg)
		if err == nil {
			if reg.HeartbeatSeconds > 0 {
				a.hbEvery = time.Duration(reg.HeartbeatSeconds) * time.Second
			}
			a.log.Info("registered", "managerId", reg.AgentID, "heartbeat", a.hbEvery)
			a.answered(ctx, reg.Beat)
			return true
		}
		// Jitter spreads many agents coming back at once.
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(delay/2)+1))
		wait := delay/2 + time.Duration(j.Int64())
		a.log.Warn("register failed, retrying", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// watch takes the pid files the manager named in an answer (nil: no
// change). Entries that fail wire.PidFile.Check are dropped and logged.
func (a *Agent) watch(files []wire.PidFile) {
	if files == nil {
		return
	}
	keep := make([]wire.PidFile, 0, len(files))
	for _, f := range files {
		if len(keep) == wire.MaxProcesses {
			a.log.Warn("the manager named more pid files than are reported", "limit", wire.MaxProcesses)
			break
		}
		if err := f.Check(); err != nil {
			a.log.Warn("ignoring a pid file the manager named", "error", err)
			continue
		}
		keep = append(keep, f)
	}
	a.pidFiles.Store(&keep)
}

// processes reports the role processes whose pid files exist.
func (a *Agent) processes() []wire.Process {
	ps := []wire.Process{}
	files := a.pidFiles.Load()
	if files == nil {
		return a.withDesired(ps)
	}
	for _, pf := range *files {
		pid, ok := readPid(pf.Path)
		if !ok {
			continue
		}
		ps = append(ps, wire.Process{Role: pf.Role, Pid: pid, Running: pidAlive(pid)})
	}
	return a.withDesired(ps)
}

// readPid reads a pid file: a positive number, perhaps with spaces around.
func readPid(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// pidAlive judges a process by /proc state: a zombie is not alive.
func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// writeAtomic writes via a temp file, fsync and rename, then syncs the directory.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
