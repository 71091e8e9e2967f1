// Package server wires the manager together for `dorismanager serve`: the
// store, secrets, the CA, API tokens, the process engine, the task runner,
// the REST API (plain HTTP or TLS), the agent endpoint (mutual TLS only)
// and whatever extensions (task actions, agent API, plugins) are plugged in.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/api"
	"github.com/dorismanager/dorismanager/core/audit"
	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/leader"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/pkgsum"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
)

// Deps are what the server built and hands to Config.Extend.
type Deps struct {
	Store        *store.Store
	Secrets      *secret.Box
	Logger       hclog.Logger
	DataDir      string
	PluginsDir   string
	AgentsDir    string   // agent binaries by architecture (core/preflight); "" for the default
	AdvertiseURL string   // as configured; may be empty
	ListenAddr   net.Addr // the bound address of the REST API
	// AgentAddr is the bound address of the agent endpoint.
	AgentAddr net.Addr
	// PKI is the manager's CA.
	PKI *pki.Authority
	// Notify wakes the task runner (for example after an agent registered).
	Notify func()
	// Metrics is the server's registry (served at /metrics); extensions
	// register their own series in it.
	Metrics *metrics.Registry
	// Managers returns the agent endpoints of the managers running on
	// the database (this one's when it has an AdvertiseURL), refreshed
	// every ManagerSeenEvery: agents fail over to them.
	Managers func() []string
}

// Extensions are the parts plugged in by Config.Extend; they add to the
// fields of the same name in Config.
type Extensions struct {
	Actions runner.Actions
	// Catalogue is the role catalogue the wizard accepts roles from.
	Catalogue process.Catalogue
	// ResolveAction finds the actions of task types Actions lacks (the
	// tasks of roles whose plugins are installed later; runner.Config.Resolve).
	ResolveAction func(taskType string) (runner.Action, bool)
	Stopper       process.Stopper
	// AgentAPI is served at /agent-api/ on the agent endpoint, mutual TLS
	// with agent certificates only; never on the REST listener.
	AgentAPI http.Handler
	Plugins  http.Handler // mounted at /api/plugins with user auth
	// Background functions run until the server stops (ctx is canceled).
	Background []func(ctx context.Context) error
	// Close, if set, runs after everything else has stopped.
	Close func()
	// PluginsReady, if set, returns nil when at least one role plugin is
	// loaded, else what to do about it; /readyz reports it. Without it the
	// manager is never ready: it cannot run role tasks.
	PluginsReady func() error
	// Operations, if set, serves the day-2 endpoints (core/ops).
	Operations *api.Operations
	// OnTaskEnd, if set, is called after the runner recorded a task's end.
	OnTaskEnd func(taskID int64, status string)
	// WizardGuard, if set, refuses a wizard step on a cluster that is busy
	// with an operation.
	WizardGuard func(ctx context.Context, clusterID int64) error
	// Admin, if set, serves the reveal and credentials calls of clusters'
	// admin accounts (core/clusteradmin).
	Admin api.AdminAccounts
}

// Config configures a Server.
type Config struct {
	Listen string // e.g. ":9601"
	// AgentListen is the agent endpoint's address (default ":9603").
	AgentListen string
	// TLS of the REST API: TLSAuto serves it with a certificate from the
	// manager's CA; TLSCert and TLSKey with the operator's own; neither:
	// plain HTTP (a warning unless on loopback).
	TLSAuto         bool
	TLSCert, TLSKey string
	// TLSSANs are more names and addresses for the manager's certificate,
	// besides the listen addresses and the advertise URL's host.
	TLSSANs      []string
	DataDir      string
	DB           string // "" for SQLite in DataDir, or a postgres:// URL
	PluginsDir   string
	AgentsDir    string // agent binaries by architecture (core/preflight); "" for the default
	AdvertiseURL string
	Parallel     int           // tasks run at once (runner.DefaultParallel when 0)
	TaskTimeout  time.Duration // per task (runner.DefaultTaskTimeout when 0)
	// TaskLease is how long a task this manager runs stays its own without
	// a renewal (runner.DefaultLease when 0; at least a second): a manager
	// that stops is replaced after at most this long.
	TaskLease time.Duration
	Logger    hclog.Logger
	// SecretKeyFile holds the key that seals secrets at rest; empty for
	// <DataDir>/secret.key. Created on first start if missing.
	SecretKeyFile string
	// HTTP bounds slow and flooding clients; zero fields take DefaultHTTP.
	HTTP netguard.Limits
	// AuthMaxFailures failed authentications from one address within a
	// minute block it for five (0: netguard.DefaultMaxFailures; negative: off).
	AuthMaxFailures int
	// AuditRetention is how long audit entries are kept (the manager
	// leading the job audit.PruneJob deletes older ones hourly); 0 keeps
	// them all.
	AuditRetention time.Duration

	Actions  runner.Actions
	Stopper  process.Stopper
	AgentAPI http.Handler
	Plugins  http.Handler
	// Extend, if set, is called once the store and secrets are open and
	// returns the extensions that need them.
	Extend func(ctx context.Context, d Deps) (Extensions, error)
}

// DefaultHTTP are the manager's HTTP limits. Requests are small JSON
// bodies (at most 1 MiB); a write that cannot go out within a minute means
// the client stopped reading. Agents keep one connection each to the
// manager, so the connection cap leaves room for a large fleet.
func DefaultHTTP() netguard.Limits {
	return netguard.Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConns:          2048,
	}
}

// Server is a running manager. New binds the port; Serve serves.
type Server struct {
	cfg      Config
	log      hclog.Logger
	st       *store.Store
	ca       *pki.Authority
	ln       net.Listener
	http     *http.Server
	agentLn  net.Listener // nil without an AgentAPI
	agentSrv *http.Server
	tlsFP    string // SHA-256 of the REST certificate, when TLS
	runner   *runner.Runner
	engine   *process.Engine
	ext      Extensions
	tokenFil string
	id       string // this manager's id (runner.Config.ManagerID)
	peers    *peers
	unlock   func() // releases the data dir (SQLite); nil on PostgreSQL
}

// New opens the store, makes sure the secret key and admin token exist,
// builds the engine, runner and router, and binds the listen address.
func New(ctx context.Context, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Listen == "" {
		cfg.Listen = ":9601"
	}
	if cfg.AgentListen == "" {
		cfg.AgentListen = ":9603"
	}
	if cfg.TLSAuto && (cfg.TLSCert != "" || cfg.TLSKey != "") {
		return nil, errors.New("give either --tls auto or --tls-cert/--tls-key, not both")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("a data dir is required (--data-dir)")
	}
	if cfg.TaskLease != 0 && cfg.TaskLease < time.Second {
		return nil, fmt.Errorf("--task-lease %s: give at least 1s", cfg.TaskLease)
	}
	var unlock func()
	if cfg.DB == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
		}
		var err error
		if unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok && unlock != nil {
			unlock()
		}
	}()
	st, err := store.Open(cfg.DB, cfg.DataDir, log.Named("store"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	keyFile := cfg.SecretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, secret.KeyFile)
	}
	box, err := secret.LoadOrCreateFile(keyFile)
	if err != nil {
		return nil, err
	}
	if err := sealPackageURLs(ctx, st, box, log); err != nil {
		return nil, err
	}
	tokenFile, created, err := auth.EnsureAdmin(ctx, st, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the admin API token; send it as \"Authorization: Bearer <token>\"", "file", tokenFile)
	} else {
		log.Info("admin API token", "file", tokenFile)
	}
	ca, err := pki.Open(cfg.DataDir, pki.Options{ManagerHosts: managerHosts(cfg), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("the manager's CA: %w", err)
	}
	limits := cfg.HTTP.Or(DefaultHTTP())
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ln = limits.Listener(ln)
	defer func() {
		if !ok {
			ln.Close()
		}
	}()
	agentLn, err := net.Listen("tcp", cfg.AgentListen)
	if err != nil {
		return nil, fmt.Errorf("listen for agents on %s: %w", cfg.AgentListen, err)
	}
	defer func() {
		if !ok {
			agentLn.Close()
		}
	}()
	s := &Server{cfg: cfg, log: log, st: st, ca: ca, tokenFil: tokenFile, id: managerID(), unlock: unlock}
	log.Info("manager id (names this manager in the tasks it runs)", "manager", s.id)
	s.peers = &peers{st: st, log: log.Named("managers"), warned: map[string]bool{},
		self: store.Manager{ID: s.id, AgentURL: agentURL(cfg.AdvertiseURL, agentLn.Addr()), CAID: ca.SigningID()}}
	if err := s.peers.seen(ctx); err != nil {
		return nil, err
	}
	if st.IsPostgres() && s.peers.self.AgentURL == "" {
		log.Warn("no --advertise-url, and the agent endpoint listens on every address: agents learn of this manager only from the agents it installs itself, and cannot fail over to it")
	}
	if s.ln, err = s.restListener(ln); err != nil {
		return nil, err
	}
	// The runner is built after the extensions (it needs their actions);
	// Notify calls made before that are harmless: the runner looks for
	// work as soon as it starts.
	// Other managers on the database hear of new work too (PostgreSQL
	// NOTIFY; their runners listen).
	var notifyMu sync.Mutex
	notify := func() {
		notifyMu.Lock()
		r := s.runner
		notifyMu.Unlock()
		if r != nil {
			r.Notify()
		}
		nctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.NotifyTasks(nctx, s.id); err != nil {
			log.Warn("tell other managers about new tasks (they find them by polling)", "error", err)
		}
	}
	reg := storeMetrics(st)
	ext := Extensions{}
	if cfg.Extend != nil {
		ext, err = cfg.Extend(ctx, Deps{Store: st, Secrets: box, Logger: log, DataDir: cfg.DataDir,
			PluginsDir: cfg.PluginsDir, AgentsDir: cfg.AgentsDir, AdvertiseURL: cfg.AdvertiseURL, ListenAddr: ln.Addr(), AgentAddr: agentLn.Addr(),
			PKI: ca, Notify: notify, Metrics: reg, Managers: s.peers.URLs})
		if err != nil {
			return nil, fmt.Errorf("set up extensions: %w", err)
		}
	}
	actions := runner.Actions{}
	for k, v := range cfg.Actions {
		actions[k] = v
	}
	for k, v := range ext.Actions {
		actions[k] = v
	}
	stopper := cfg.Stopper
	if ext.Stopper != nil {
		stopper = ext.Stopper
	}
	agentAPI, plugins := cfg.AgentAPI, cfg.Plugins
	if ext.AgentAPI != nil {
		agentAPI = ext.AgentAPI
	}
	if ext.Plugins != nil {
		plugins = ext.Plugins
	}
	s.ext = ext
	r := runner.New(runner.Config{Store: st, Actions: actions, Resolve: ext.ResolveAction, Parallel: cfg.Parallel, TaskTimeout: cfg.TaskTimeout,
		ManagerID: s.id, Lease: cfg.TaskLease, Alone: unlock != nil,
		Logger: log.Named("runner"), Metrics: reg, OnTaskEnd: ext.OnTaskEnd})
	notifyMu.Lock()
	s.runner = r
	notifyMu.Unlock()
	s.engine = process.New(process.Config{Store: st, Catalogue: ext.Catalogue, Sealer: box, Stopper: stopper, Notify: notify,
		Checksums: pkgsum.New(0), Logger: log.Named("process"), Guard: ext.WizardGuard})
	handler := api.New(api.Config{Store: st, Engine: s.engine, Logger: log.Named("api"), Plugins: plugins,
		AuthLimiter: netguard.NewAuthLimiter(netguard.AuthConfig{MaxFailures: cfg.AuthMaxFailures}),
		Metrics:     reg, Ready: readyChecks(st, ext.PluginsReady, log.Named("api")), Operations: ext.Operations, Admin: ext.Admin})
	s.http = limits.Server(handler)
	s.http.ErrorLog = log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	if agentAPI != nil {
		mux := http.NewServeMux()
		mux.Handle("/agent-api/", agentAPI)
		s.agentLn = tls.NewListener(limits.Listener(agentLn), ca.AgentEndpointTLS())
		s.agentSrv = limits.Server(mux)
		// Refused handshakes (scanners, wrong certificates) are logged at
		// debug level; refused agent certificates are logged by the registry.
		s.agentSrv.ErrorLog = log.Named("agent-endpoint").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
	} else {
		agentLn.Close()
	}
	ok = true
	return s, nil
}

// sealPackageURLs seals the passwords of the package URLs that versions
// before sealing stored in plain text (in processes and in their tasks'
// input), in one transaction. It is cheap to run at every start: sealed
// URLs are left as they are.
func sealPackageURLs(ctx context.Context, st *store.Store, box *secret.Box, log hclog.Logger) error {
	ps, ts, err := st.RewritePackageURLs(ctx, ":"+secret.SealedPrefix, func(u string) (string, error) {
		return process.SealPackageURL(box, "packageUrl", u)
	})
	if err != nil {
		return fmt.Errorf("seal the passwords of stored package URLs: %w", err)
	}
	if ps+ts == 0 {
		return nil
	}
	log.Info("sealed the passwords of package URLs an earlier version stored in plain text", "processes", ps, "tasks", ts)
	if err := st.ForgetDeleted(ctx); err != nil {
		log.Warn("the plain-text passwords may stay in the database's log file until its next checkpoint", "error", err)
	}
	return nil
}

// agentURL is the agent endpoint's URL that agents learn from the other
// managers: advertise (--advertise-url), else the address the endpoint
// listens on when that is one address rather than every one ("" then: no
// single address reaches it from everywhere).
func agentURL(advertise string, addr net.Addr) string {
	if advertise != "" {
		return advertise
	}
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.IP == nil || ta.IP.IsUnspecified() {
		return ""
	}
	return "https://" + net.JoinHostPort(ta.IP.String(), strconv.Itoa(ta.Port))
}

// managerID is a fresh id for this manager process: its host name (for
// people reading task lists) and random hex (unique among restarts and
// managers on one host).
func managerID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "manager"
	}
	if len(host) > 48 {
		host = host[:48]
	}
	return host + "-" + hex.EncodeToString(b)
}

// ManagerID is this manager's id, as the tasks it runs name it.
func (s *Server) ManagerID() string { return s.id }

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AgentAddr is the agent endpoint's bound address, nil without an agent API.
func (s *Server) AgentAddr() net.Addr {
	if s.agentLn == nil {
		return nil
	}
	return s.agentLn.Addr()
}

// PKI is the manager's CA.
func (s *Server) PKI() *pki.Authority { return s.ca }

// TLSFingerprint is the SHA-256 of the REST API's certificate, "" when it
// serves plain HTTP.
func (s *Server) TLSFingerprint() string { return s.tlsFP }

// Store is the server's store.
func (s *Server) Store() *store.Store { return s.st }

// AdminTokenFile is the path of the admin token file.
func (s *Server) AdminTokenFile() string { return s.tokenFil }

// Serve runs the runner, the background extensions and the HTTP server
// until ctx ends, then shuts down gracefully: stop accepting requests, let
// running requests finish, stop the runner (running tasks are recorded as
// interrupted), stop the background work and close the store.
func (s *Server) Serve(ctx context.Context) error {
	// The runner and background work stop only after the HTTP server, so
	// requests in flight still reach a working engine.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2+len(s.ext.Background))
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.peers.run(runCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.runner.Run(runCtx); err != nil {
			errs <- fmt.Errorf("task runner: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = audit.Pruner{Store: s.st, Retention: s.cfg.AuditRetention, Logger: s.log.Named("audit"),
			Leader: leader.New(s.st, audit.PruneJob, s.log.Named("audit"))}.Run(runCtx)
	}()
	for _, bg := range s.ext.Background {
		wg.Add(1)
		go func(bg func(context.Context) error) {
			defer wg.Done()
			if err := bg(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}(bg)
	}
	httpDone := make(chan error, 2)
	go func() { httpDone <- s.http.Serve(s.ln) }()
	if s.agentSrv != nil {
		go func() { httpDone <- s.agentSrv.Serve(s.agentLn) }()
		s.log.Info("serving agents (mutual TLS)", "addr", s.agentLn.Addr().String())
	}
	s.log.Info("serving", "addr", s.ln.Addr().String(), "tls", s.tlsFP != "", "data_dir", s.cfg.DataDir, "postgres", s.st.IsPostgres(),
		"manager", s.id)

	var first error
	select {
	case <-ctx.Done():
	case err := <-httpDone:
		if !errors.Is(err, http.ErrServerClosed) {
			first = fmt.Errorf("http server: %w", err)
		}
	case err := <-errs:
		first = err
	}
	s.log.Info("shutting down")
	shCtx, shCancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer shCancel()
	if err := s.http.Shutdown(shCtx); err != nil {
		s.log.Warn("http shutdown", "error", err)
	}
	if s.agentSrv != nil {
		if err := s.agentSrv.Shutdown(shCtx); err != nil {
			s.log.Warn("agent endpoint shutdown", "error", err)
		}
	}
	cancel()
	wg.Wait()
	if s.ext.Close != nil {
		s.ext.Close()
	}
	if err := s.st.Close(); err != nil {
		s.log.Warn("close store", "error", err)
	}
	if s.unlock != nil {
		s.unlock()
	}
	s.log.Info("stopped")
	return first
}
