package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentaction"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/api"
	"github.com/dorismanager/dorismanager/core/clusteradmin"
	"github.com/dorismanager/dorismanager/core/clusterstatus"
	"github.com/dorismanager/dorismanager/core/leader"
	"github.com/dorismanager/dorismanager/core/ops"
	"github.com/dorismanager/dorismanager/core/pkgrelay"
	"github.com/dorismanager/dorismanager/core/pkgsum"
	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/server"
	"github.com/dorismanager/dorismanager/core/sshboot"
)

// extendWith returns the server's Extend: it plugs the task actions (SSH
// agent install, role plugins), the stopper used by back, the agent API and
// the plugins API into the server. clientOpts tune every call to an agent.
// packageRelay is "manager" (the manager fetches each package once and
// the hosts download it from there) or "off" (every host downloads it).
func extendWith(clientOpts []agentclient.Option, certLifetime time.Duration, packageRelay string) func(context.Context, server.Deps) (server.Extensions, error) {
	return func(ctx context.Context, d server.Deps) (server.Extensions, error) {
		return extend(ctx, d, clientOpts, certLifetime, packageRelay)
	}
}

func extend(ctx context.Context, d server.Deps, clientOpts []agentclient.Option, certLifetime time.Duration, packageRelay string) (server.Extensions, error) {
	// Plugins run from checked copies in the data dir (the manager's own,
	// and not a temp folder that may be mounted noexec).
	plugins, err := pluginhost.New(pluginhost.Config{Dir: d.PluginsDir, DataDir: d.DataDir, ExecDir: filepath.Join(d.DataDir, "plugin-exec"),
		Store: d.Store, Logger: d.Logger.Named("plugins"), Metrics: d.Metrics})
	if err != nil {
		return server.Extensions{}, fmt.Errorf("role plugins in %s: %w", d.PluginsDir, err)
	}
	reg, err := agents.New(agents.Config{Store: d.Store, Catalogue: plugins, PKI: d.PKI, CertLifetime: certLifetime, Logger: d.Logger.Named("agents"),
		ClientOptions: clientOpts, Metrics: d.Metrics, Managers: d.Managers})
	if err != nil {
		_ = plugins.Close()
		return server.Extensions{}, fmt.Errorf("agent registry: %w", err)
	}
	agentPort := 0
	if tcp, ok := d.AgentAddr.(*net.TCPAddr); ok {
		agentPort = tcp.Port
	} else if _, p, err := net.SplitHostPort(d.AgentAddr.String()); err == nil {
		agentPort, _ = strconv.Atoi(p)
	}
	inst, err := sshboot.New(sshboot.Config{AgentsDir: d.AgentsDir, AdvertiseURL: d.AdvertiseURL, AgentEndpointPort: agentPort,
		Registry: reg, Store: d.Store, Logger: d.Logger.Named("sshboot"), Managers: d.Managers})
	if err != nil {
		reg.Close()
		_ = plugins.Close()
		return server.Extensions{}, fmt.Errorf("SSH installer: %w", err)
	}
	agentAPI := http.Handler(reg.Handler())
	var relay roleexec.Relay
	if packageRelay == relayManager {
		r, err := pkgrelay.New(pkgrelay.Config{Dir: filepath.Join(d.DataDir, "packages"), Store: d.Store,
			Logger: d.Logger.Named("pkgrelay"), Metrics: d.Metrics, Secrets: d.Secrets})
		if err != nil {
			reg.Close()
			_ = plugins.Close()
			return server.Extensions{}, err
		}
		relay = r
		mux := http.NewServeMux()
		mux.Handle(wire.PackagesPath, r.Handler(reg.Authenticate))
		mux.Handle("/", agentAPI)
		agentAPI = mux
	}
	stopHangup := rescanOnHangup(plugins, d.Logger.Named("plugins"))
	// Every SQL call to a cluster runs as its recorded admin account.
	exec := roleexec.New(roleexec.Config{Store: d.Store, Roles: plugins, Agents: reg, Logger: d.Logger,
		Accounts: clusteradmin.Accounts{Store: d.Store, Secrets: d.Secrets}, Relay: relay, Secrets: d.Secrets})
	admin := clusteradmin.New(clusteradmin.Config{Store: d.Store, Secrets: d.Secrets, SQL: exec, Logger: d.Logger.Named("clusteradmin")})
	actions := runner.Actions{process.TaskInstallAgent: agentaction.Action{Store: d.Store, Secrets: d.Secrets, Installer: inst},
		process.TaskSecureCluster: admin}
	// Day-2 operations and the status cache.
	status := clusterstatus.New(clusterstatus.Config{Store: d.Store, Exec: exec, Plugins: plugins, Logger: d.Logger.Named("status"),
		Leader: leader.New(d.Store, clusterstatus.JobName, d.Logger.Named("status"))})
	opsEngine := ops.New(ops.Config{Store: d.Store, Catalogue: plugins.Catalogue, Master: status.Master, Notify: d.Notify, Checksums: pkgsum.New(0),
		Sealer: d.Secrets, Logger: d.Logger.Named("ops")})
	for k, v := range ops.NewActions(ops.ActionsConfig{Store: d.Store, Plugins: plugins, Exec: exec, Changed: status.Kick,
		Logger: d.Logger.Named("ops")}).Map() {
		actions[k] = v
	}
	return server.Extensions{
		Actions:       actions,
		ResolveAction: exec.Resolve,
		Catalogue:     plugins,
		Stopper:       exec,
		AgentAPI:      agentAPI,
		Plugins:       plugins.Handler(),
		Operations:    &api.Operations{Engine: opsEngine, Status: status.Status},
		Background:    []func(context.Context) error{status.Run, reg.Listen},
		OnTaskEnd: func(taskID int64, _ string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if id := opsEngine.TaskEnded(ctx, taskID); id != 0 {
				status.Kick(id)
				return
			}
			// A wizard that built its cluster: the nodes' status now, not
			// at the next refresh (up to 5 s later), for the table a
			// client shows at the end.
			id, step, ended, err := process.StepEnded(ctx, d.Store, taskID)
			if err != nil {
				d.Logger.Named("status").Warn("wizard step end", "task", taskID, "error", err)
			}
			if ended && step == process.StepBuildCluster {
				status.Kick(id)
			}
		},
		WizardGuard:  opsEngine.CheckNoOperation,
		Admin:        admin,
		PluginsReady: plugins.Ready,
		Close: func() {
			stopHangup()
			exec.Close()
			_ = plugins.Close()
			reg.Close()
		},
	}, nil
}

// Values of serve --package-relay.
const (
	relayManager = "manager"
	relayOff     = "off"
)

// rescanOnHangup rescans the plugins dir on every SIGHUP ("dorismanager
// plugins install" sends one) until the returned stop is called.
func rescanOnHangup(plugins *pluginhost.Manager, log hclog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: rescanning the plugins dir", "dir", plugins.Dir())
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				if err := plugins.Rescan(ctx); err != nil {
					log.Error("rescan of the plugins dir failed", "dir", plugins.Dir(), "error", err)
				}
				cancel()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}
