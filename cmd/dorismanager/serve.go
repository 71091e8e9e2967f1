package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/audit"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/preflight"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/server"
	"github.com/dorismanager/dorismanager/internal/buildinfo"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/dorismanager/dorismanager/internal/pidfile"
)

// serveOptions are the flags of serve.
type serveOptions struct {
	listen, agentListen            string
	tlsMode, tlsCert, tlsKey       string
	sans                           sanList
	certLifetime                   time.Duration
	dataDir, db, pluginsDir        string
	agentsDir                      string
	parallel                       int
	taskTimeout, taskLease         time.Duration
	advertise                      string
	logLevel, logFormat            string
	agentRetries                   int
	agentBackoff, agentConnect     time.Duration
	agentKeepAlive                 time.Duration
	secretKeyFile                  string
	readHeaderTimeout, readTimeout time.Duration
	writeTimeout, idleTimeout      time.Duration
	maxConns, authFailures         int
	packageRelay                   string
	auditRetention                 time.Duration
}

func serveCommand(stderr io.Writer) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the manager: the REST API and the agent endpoint",
		Long: `Run the manager: the REST API (--listen) and the agent endpoint (--agent-listen, mutual TLS).
On first start it writes an admin API token to <data-dir>/admin.token (0600).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd, &o, stderr) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":9601", "address to serve the API on")
	f.StringVar(&o.agentListen, "agent-listen", ":9603",
		"address of the agent endpoint (register, heartbeat, renew): mutual TLS only, agent certificates only")
	f.StringVar(&o.tlsMode, "tls", "",
		`"auto": serve the API over TLS with a certificate from the manager's CA (empty: plain HTTP; see --tls-cert for your own)`)
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve the API over TLS with this certificate (PEM; with --tls-key)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	f.Var(&o.sans, "tls-san",
		"another name or IP address for the manager's certificate (repeatable; the listen addresses and the advertise URL's host are on it)")
	f.DurationVar(&o.certLifetime, "agent-cert-lifetime", pki.AgentLifetime,
		"lifetime of the certificates issued to agents (90 days by default); they renew after two thirds of it")
	f.StringVar(&o.dataDir, "data-dir", "./data",
		"directory of the SQLite database, secret.key (unless --secret-key-file), admin.token, pki/ (the CA), "+
			"plugin-keys/ (trusted plugin signing keys) and plugin-exec/ (checked copies of the plugins)")
	f.StringVar(&o.db, "db", "", "database: empty for SQLite in the data dir, or a postgres://user:pass@host/db URL (several managers may share one PostgreSQL database; SQLite takes one serve per data dir)")
	f.StringVar(&o.pluginsDir, "plugins-dir", "", "directory of the role plugins (empty: plugins/ beside the dorismanager binary, else ../lib/dorismanager/plugins from it)")
	f.StringVar(&o.agentsDir, "agents-dir", "", "directory of the agent binaries installed on hosts, linux-amd64/doris-agent and linux-arm64/doris-agent (empty: agents/ beside the dorismanager binary, else ../lib/dorismanager/agents from it)")
	f.IntVar(&o.parallel, "parallel", runner.DefaultParallel, "tasks run at once")
	f.DurationVar(&o.taskTimeout, "task-timeout", runner.DefaultTaskTimeout, "time limit of one task")
	f.DurationVar(&o.taskLease, "task-lease", runner.DefaultLease, "a task this manager runs stays its own this long without a renewal (renewed every third of it); after it another manager on the same PostgreSQL database takes the task over")
	f.StringVar(&o.advertise, "advertise-url", "",
		"https URL agents use to reach the agent endpoint (e.g. https://10.0.0.5:9603); its host must be on the manager's certificate "+
			"(empty: the address the manager reached each host from over SSH, port of --agent-listen)")
	f.StringVar(&o.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text",
		`"text", or "json": one JSON object a line (@timestamp, @level, @module, @message, then the fields); `+
			"the MySQL driver's messages come through the same logger (module dorismanager.mysql, level warn)")
	f.IntVar(&o.agentRetries, "agent-retries", agentclient.DefaultRetries,
		"times a call to an agent is re-sent (same request id, so nothing runs twice) after its connection broke; "+
			"then the task fails naming the agent as not running or not reachable")
	f.DurationVar(&o.agentBackoff, "agent-retry-backoff", agentclient.DefaultBackoff,
		"first pause before re-sending a call to an agent (doubling up to 5s)")
	f.DurationVar(&o.agentConnect, "agent-connect-timeout", agentclient.DefaultConnectTimeout, "time limit of one connection attempt to an agent")
	f.DurationVar(&o.agentKeepAlive, "agent-keepalive", agentclient.DefaultKeepAlive,
		"silence after which a connection to an agent is probed (every third of it, 3 probes); "+
			"a host that stops answering mid-task (power loss, cable pulled) is noticed after about twice this")
	f.StringVar(&o.secretKeyFile, "secret-key-file", "",
		"key that seals secrets at rest (SSH credentials, Doris admin passwords, passwords in package URLs), "+
			"created (0600) if missing (empty: <data-dir>/secret.key)")
	httpDef := server.DefaultHTTP()
	f.DurationVar(&o.readHeaderTimeout, "http-read-header-timeout", httpDef.ReadHeaderTimeout,
		"time limit for a client to send a request's headers; a connection that sends nothing is closed after it")
	f.DurationVar(&o.readTimeout, "http-read-timeout", httpDef.ReadTimeout,
		"time limit for a client to send a whole request, body included (a handler that works longer is not cut off)")
	f.DurationVar(&o.writeTimeout, "http-write-timeout", httpDef.WriteTimeout,
		"time limit of each write of a response (not of the whole response) to a client that stopped reading")
	f.DurationVar(&o.idleTimeout, "http-idle-timeout", httpDef.IdleTimeout, "a kept-alive connection without a request is closed after this")
	f.IntVar(&o.maxConns, "http-max-conns", httpDef.MaxConns,
		"connections served at once (agents keep one each); more wait in the kernel's queue, costing no file descriptor")
	f.IntVar(&o.authFailures, "auth-max-failures", netguard.DefaultMaxFailures,
		"failed token checks on /api/ from one address (IPv6: its /64) within a minute that block it for five minutes "+
			"(429 with Retry-After, even with a valid token); 0 turns this off")
	f.StringVar(&o.packageRelay, "package-relay", relayManager, `"manager": the manager fetches each package URL once and the hosts download it from its agent endpoint; "off": every host downloads it itself`)
	f.DurationVar(&o.auditRetention, "audit-retention", audit.DefaultRetention,
		"audit entries older than this are deleted (hourly, by one manager of those sharing the database); 0 keeps them all")
	return cmd
}

// sanList is --tls-san: names and addresses, each checked as it is given.
type sanList []string

func (s *sanList) String() string { return strings.Join(*s, ",") }
func (s *sanList) Type() string   { return "host" }

func (s *sanList) Set(v string) error {
	if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " /:") && net.ParseIP(v) == nil {
		return fmt.Errorf("%q is not a host name or IP address", v)
	}
	*s = append(*s, v)
	return nil
}

// validate checks the flags that have limits, naming the flag.
func (o *serveOptions) validate() error {
	if o.readHeaderTimeout <= 0 || o.readTimeout <= 0 || o.writeTimeout <= 0 || o.idleTimeout <= 0 {
		return errors.New("--http-read-header-timeout, --http-read-timeout, --http-write-timeout and --http-idle-timeout must be positive")
	}
	if o.maxConns < 1 {
		return errors.New("--http-max-conns must be at least 1")
	}
	if o.auditRetention < 0 {
		return errors.New("--audit-retention must not be negative (0 keeps every entry)")
	}
	if o.authFailures < 0 {
		return errors.New("--auth-max-failures must not be negative (0 turns the limit off)")
	}
	if o.parallel < 1 {
		return errors.New("--parallel must be at least 1")
	}
	if o.taskTimeout <= 0 {
		return errors.New("--task-timeout must be positive")
	}
	if o.agentRetries < 0 {
		return errors.New("--agent-retries must not be negative")
	}
	if o.agentBackoff <= 0 || o.agentConnect <= 0 {
		return errors.New("--agent-retry-backoff and --agent-connect-timeout must be positive")
	}
	if o.agentKeepAlive < time.Second {
		return errors.New("--agent-keepalive must be at least 1s (TCP counts it in seconds)")
	}
	if o.tlsMode != "" && o.tlsMode != "auto" {
		return fmt.Errorf(`--tls %q: the only mode is "auto" (use --tls-cert/--tls-key for your own certificate)`, o.tlsMode)
	}
	if o.advertise != "" && !strings.HasPrefix(o.advertise, "https://") {
		return fmt.Errorf("--advertise-url %q must be https://host:port of the agent endpoint (--agent-listen): agents reach the manager only over mutual TLS", o.advertise)
	}
	if o.packageRelay != relayManager && o.packageRelay != relayOff {
		return fmt.Errorf(`--package-relay %q: "manager" or "off"`, o.packageRelay)
	}
	if o.certLifetime < time.Hour {
		return errors.New("--agent-cert-lifetime must be at least 1h")
	}
	return nil
}

func serve(cmd *cobra.Command, o *serveOptions, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	authFailures := o.authFailures
	if authFailures == 0 {
		authFailures = -1 // netguard: negative is off
	}
	pluginsDir := o.pluginsDir
	if pluginsDir == "" {
		pluginsDir = defaultPluginsDir()
	}
	agentsDir := o.agentsDir
	if agentsDir == "" {
		agentsDir = preflight.Dir("agents")
	}
	clientOpts := []agentclient.Option{agentclient.WithRetries(o.agentRetries), agentclient.WithBackoff(o.agentBackoff),
		agentclient.WithConnectTimeout(o.agentConnect), agentclient.WithKeepAlive(o.agentKeepAlive)}
	log, err := newLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		return err
	}
	if err := preflight.Report(preflight.Check(pluginsDir, agentsDir), log); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, server.Config{
		Listen: o.listen, AgentListen: o.agentListen, TLSAuto: o.tlsMode == "auto", TLSCert: o.tlsCert, TLSKey: o.tlsKey, TLSSANs: o.sans,
		DataDir: o.dataDir, DB: o.db, PluginsDir: pluginsDir, AgentsDir: agentsDir, AdvertiseURL: o.advertise,
		Parallel: o.parallel, TaskTimeout: o.taskTimeout, TaskLease: o.taskLease, Logger: log, Extend: extendWith(clientOpts, o.certLifetime, o.packageRelay),
		SecretKeyFile: o.secretKeyFile, AuthMaxFailures: authFailures, AuditRetention: o.auditRetention,
		HTTP: netguard.Limits{ReadHeaderTimeout: o.readHeaderTimeout, ReadTimeout: o.readTimeout, WriteTimeout: o.writeTimeout,
			IdleTimeout: o.idleTimeout, MaxConns: o.maxConns},
	})
	if err != nil {
		return err
	}
	log.Info("dorismanager ready", "version", buildinfo.Get().Version, "addr", srv.Addr().String(), "agent_addr", fmt.Sprint(srv.AgentAddr()),
		"plugins_dir", pluginsDir)
	if fp := srv.TLSFingerprint(); fp != "" {
		fmt.Fprintf(stderr, "API certificate SHA-256 fingerprint: %s\n", fp)
	}
	// The pid file lets "plugins install" beside a running manager tell it
	// to rescan (SIGHUP).
	if release, err := pidfile.Write(o.dataDir); err != nil {
		log.Warn("no pid file: plugins install cannot tell this manager to rescan", "error", err)
	} else {
		defer release()
	}
	return srv.Serve(ctx)
}

// defaultPluginsDir is plugins/ beside the binary, else the packages'
// /usr/lib/dorismanager/plugins (core/preflight).
func defaultPluginsDir() string { return preflight.Dir("plugins") }

// newLogger is the manager's one logger; every package (and the MySQL
// driver, through roleexec) logs through it, so --log-format covers all.
func newLogger(level, format string, w io.Writer) (hclog.Logger, error) {
	lv := hclog.LevelFromString(level)
	if lv == hclog.NoLevel {
		return nil, fmt.Errorf("--log-level %q: use trace, debug, info, warn or error", level)
	}
	if format != "text" && format != "json" {
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "dorismanager", Level: lv, Output: w, TimeFormat: time.RFC3339,
		JSONFormat: format == "json"}), nil
}
