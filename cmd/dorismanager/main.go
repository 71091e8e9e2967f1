// Command dorismanager is the Doris Manager server and its admin commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/server"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/dorismanager/dorismanager/internal/pidfile"
	"github.com/hashicorp/go-hclog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage:
  dorismanager serve [flags]                     run the manager
  dorismanager token create --user NAME --role admin|operator|viewer [--clusters 1,2] [--expires 90d]
                                                 print a new API token (shown once)
  dorismanager token list|revoke ID [flags]      list the tokens, or refuse one from now on
  dorismanager grant|revoke-grant USER CLUSTER[,CLUSTER...]
                                                 give or take a user's access to clusters
  dorismanager audit [--user] [--cluster] [--since] [--action] [--outcome] [flags]
                                                 who did what, newest first
  dorismanager ca status|rotate [--finish] [flags]
                                                 show or roll the manager's CA
  dorismanager plugins [flags] list|verify|install FILE|remove ROLE VERSION|pin CLUSTER ROLE RULE|unpin CLUSTER ROLE
  dorismanager plugins [flags] trust KEY|untrust KEY|keys|sign --key PRIVATE FILE|keygen FILE
                                                 manage the role plugins, the clusters' pins and
                                                 the keys plugins must be signed by
  dorismanager version

run "dorismanager <command> -h" for the flags of a command
`

// exitCode is a subcommand's own exit status, already explained on stderr.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dorismanager:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "token":
		return tokenCommand(args[1:], stdout, stderr)
	case "grant", "revoke-grant":
		return grantCommand(args[0], args[1:], stdout, stderr)
	case "audit":
		return auditCommand(args[1:], stdout, stderr)
	case "ca":
		return caCommand(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version)
		return nil
	case "plugins":
		// Flags given by the user come later and win over this default.
		cliArgs := append([]string{"--plugins-dir", defaultPluginsDir()}, args[1:]...)
		if code := pluginhost.CLI(context.Background(), cliArgs, stdout, stderr); code != 0 {
			return exitCode(code)
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// defaultPluginsDir is plugins/ beside the binary.
func defaultPluginsDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":9601", "address to serve the API on")
	agentListen := fs.String("agent-listen", ":9603", "address of the agent endpoint (mutual TLS, agent certificates only)")
	tlsMode := fs.String("tls", "", `"auto": serve the API over TLS with a certificate from the manager's CA (see --tls-cert for your own)`)
	tlsCert := fs.String("tls-cert", "", "serve the API over TLS with this certificate (PEM; with --tls-key)")
	tlsKey := fs.String("tls-key", "", "the private key of --tls-cert (PEM)")
	var sans []string
	fs.Func("tls-san", "another name or address for the manager's certificate (repeatable; the listen addresses and the advertise URL's host are on it)",
		func(v string) error {
			if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " /:") && net.ParseIP(v) == nil {
				return fmt.Errorf("%q is not a host name or IP address", v)
			}
			sans = append(sans, v)
			return nil
		})
	certLifetime := fs.Duration("agent-cert-lifetime", pki.AgentLifetime, "lifetime of the certificates issued to agents (they renew after two thirds of it)")
	dataDir := fs.String("data-dir", "./data", "directory for the SQLite database, secret key and admin token")
	db := fs.String("db", "", `database: empty for SQLite in the data dir, or a postgres:// URL`)
	pluginsDir := fs.String("plugins-dir", defaultPluginsDir(), "directory of the role plugins")
	parallel := fs.Int("parallel", runner.DefaultParallel, "tasks run at once")
	taskTimeout := fs.Duration("task-timeout", runner.DefaultTaskTimeout, "time limit of one task")
	taskLease := fs.Duration("task-lease", runner.DefaultLease, "a task this manager runs stays its own this long without a renewal (renewed every third of it); another manager takes over after it")
	advertise := fs.String("advertise-url", "", "https URL agents use to reach the agent endpoint (e.g. https://10.0.0.5:9603; default: the address the manager reached each host from, port of --agent-listen)")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	logFormat := fs.String("log-format", "text", `"text", or "json": one JSON object a line (@timestamp, @level, @module, @message, fields)`)
	agentRetries := fs.Int("agent-retries", agentclient.DefaultRetries, "times a call to an agent is re-sent after its connection broke")
	agentBackoff := fs.Duration("agent-retry-backoff", agentclient.DefaultBackoff, "first pause before re-sending a call to an agent (doubling)")
	agentConnect := fs.Duration("agent-connect-timeout", agentclient.DefaultConnectTimeout, "time limit of one connection attempt to an agent")
	agentKeepAlive := fs.Duration("agent-keepalive", agentclient.DefaultKeepAlive,
		"silence after which a connection to an agent is probed; a host that stopped answering is noticed after about twice this")
	secretKeyFile := fs.String("secret-key-file", "", "key that seals SSH credentials at rest (default <data-dir>/secret.key; created if missing)")
	httpDef := server.DefaultHTTP()
	readHeaderTimeout := fs.Duration("http-read-header-timeout", httpDef.ReadHeaderTimeout, "time limit for a client to send a request's headers")
	readTimeout := fs.Duration("http-read-timeout", httpDef.ReadTimeout, "time limit for a client to send a whole request, headers and body")
	writeTimeout := fs.Duration("http-write-timeout", httpDef.WriteTimeout, "time limit of each write of a response to a client")
	idleTimeout := fs.Duration("http-idle-timeout", httpDef.IdleTimeout, "a kept-alive connection without a request is closed after this")
	maxConns := fs.Int("http-max-conns", httpDef.MaxConns, "connections served at once; more wait until one closes")
	authFailures := fs.Int("auth-max-failures", netguard.DefaultMaxFailures,
		"failed authentications from one address within a minute that block it for five minutes (0 turns this off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	if *readHeaderTimeout <= 0 || *readTimeout <= 0 || *writeTimeout <= 0 || *idleTimeout <= 0 {
		return errors.New("--http-read-header-timeout, --http-read-timeout, --http-write-timeout and --http-idle-timeout must be positive")
	}
	if *maxConns < 1 {
		return errors.New("--http-max-conns must be at least 1")
	}
	if *authFailures < 0 {
		return errors.New("--auth-max-failures must not be negative (0 turns the limit off)")
	}
	if *authFailures == 0 {
		*authFailures = -1 // netguard: negative is off
	}
	if *parallel < 1 {
		return errors.New("--parallel must be at least 1")
	}
	if *taskTimeout <= 0 {
		return errors.New("--task-timeout must be positive")
	}
	if *agentRetries < 0 {
		return errors.New("--agent-retries must not be negative")
	}
	if *agentBackoff <= 0 || *agentConnect <= 0 {
		return errors.New("--agent-retry-backoff and --agent-connect-timeout must be positive")
	}
	if *agentKeepAlive < time.Second {
		return errors.New("--agent-keepalive must be at least 1s (TCP counts it in seconds)")
	}
	if *tlsMode != "" && *tlsMode != "auto" {
		return fmt.Errorf(`--tls %q: the only mode is "auto" (use --tls-cert/--tls-key for your own certificate)`, *tlsMode)
	}
	if *advertise != "" && !strings.HasPrefix(*advertise, "https://") {
		return fmt.Errorf("--advertise-url %q must be https://host:port of the agent endpoint (--agent-listen): agents reach the manager only over mutual TLS", *advertise)
	}
	if *certLifetime < time.Hour {
		return errors.New("--agent-cert-lifetime must be at least 1h")
	}
	clientOpts := []agentclient.Option{agentclient.WithRetries(*agentRetries), agentclient.WithBackoff(*agentBackoff),
		agentclient.WithConnectTimeout(*agentConnect), agentclient.WithKeepAlive(*agentKeepAlive)}
	log, err := newLogger(*logLevel, *logFormat, stderr)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, server.Config{
		Listen: *listen, AgentListen: *agentListen, TLSAuto: *tlsMode == "auto", TLSCert: *tlsCert, TLSKey: *tlsKey, TLSSANs: sans,
		DataDir: *dataDir, DB: *db, PluginsDir: *pluginsDir, AdvertiseURL: *advertise,
		Parallel: *parallel, TaskTimeout: *taskTimeout, TaskLease: *taskLease, Logger: log, Extend: extendWith(clientOpts, *certLifetime),
		SecretKeyFile: *secretKeyFile, AuthMaxFailures: *authFailures,
		HTTP: netguard.Limits{ReadHeaderTimeout: *readHeaderTimeout, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout,
			IdleTimeout: *idleTimeout, MaxConns: *maxConns},
	})
	if err != nil {
		return err
	}
	log.Info("dorismanager ready", "version", version, "addr", srv.Addr().String(), "agent_addr", fmt.Sprint(srv.AgentAddr()),
		"plugins_dir", *pluginsDir)
	if fp := srv.TLSFingerprint(); fp != "" {
		fmt.Fprintf(stderr, "API certificate SHA-256 fingerprint: %s\n", fp)
	}
	// The pid file lets "plugins install" beside a running manager tell it
	// to rescan (SIGHUP).
	if release, err := pidfile.Write(*dataDir); err != nil {
		log.Warn("no pid file: plugins install cannot tell this manager to rescan", "error", err)
	} else {
		defer release()
	}
	return srv.Serve(ctx)
}

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
