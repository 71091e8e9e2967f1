package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/dorismanager/dorismanager/core/agentaction"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/api"
	"github.com/dorismanager/dorismanager/core/clusterstatus"
	"github.com/dorismanager/dorismanager/core/ops"
	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/server"
	"github.com/dorismanager/dorismanager/core/sshboot"
)

// extendWith returns the server's Extend: it plugs the task actions (SSH
// agent install, role plugins), the stopper used by back, the agent API and
// the plugins API into the server. clientOpts tune every call to an agent.
func extendWith(clientOpts []agentclient.Option, certLifetime time.Duration) func(context.Context, server.Deps) (server.Extensions, error) {
	return func(ctx context.Context, d server.Deps) (server.Extensions, error) {
		return extend(ctx, d, clientOpts, certLifetime)
	}
}

func extend(ctx context.Context, d server.Deps, clientOpts []agentclient.Option, certLifetime time.Duration) (server.Extensions, error) {
	db := d.Store.DB()
	reg, err := agents.New(agents.Config{DB: db, PKI: d.PKI, CertLifetime: certLifetime, Logger: d.Logger.Named("agents"),
		ClientOptions: clientOpts, Metrics: d.Metrics})
	if err != nil {
		return server.Extensions{}, fmt.Errorf("agent registry: %w", err)
	}
	if err := reg.Start(ctx); err != nil {
		return server.Extensions{}, fmt.Errorf("agent registry: %w", err)
	}
	agentPort := 0
	if tcp, ok := d.AgentAddr.(*net.TCPAddr); ok {
		agentPort = tcp.Port
	} else if _, p, err := net.SplitHostPort(d.AgentAddr.String()); err == nil {
		agentPort, _ = strconv.Atoi(p)
	}
	inst, err := sshboot.New(sshboot.Config{AdvertiseURL: d.AdvertiseURL, AgentEndpointPort: agentPort,
		Registry: reg, DB: db, Logger: d.Logger.Named("sshboot")})
	if err != nil {
		reg.Close()
		return server.Extensions{}, fmt.Errorf("SSH installer: %w", err)
	}
	plugins, err := pluginhost.New(pluginhost.Config{Dir: d.PluginsDir, DB: db, Logger: d.Logger.Named("plugins"), Metrics: d.Metrics})
	if err != nil {
		reg.Close()
		return server.Extensions{}, fmt.Errorf("role plugins in %s: %w", d.PluginsDir, err)
	}
	exec := roleexec.New(roleexec.Config{Store: d.Store, Plugins: plugins, Agents: reg, Logger: d.Logger})
	actions := exec.Actions()
	actions[process.TaskInstallAgent] = agentaction.Action{Store: d.Store, Secrets: d.Secrets, Installer: inst}
	// Day-2 operations and the status cache.
	roles := pluginRoles{plugins}
	status := clusterstatus.New(clusterstatus.Config{Store: d.Store, Exec: exec, Plugins: roles, Logger: d.Logger.Named("status")})
	opsEngine := ops.New(ops.Config{Store: d.Store, Catalogue: roles.Catalogue, Master: status.Master, Notify: d.Notify,
		Logger: d.Logger.Named("ops")})
	for k, v := range ops.NewActions(ops.ActionsConfig{Store: d.Store, Plugins: roles, Exec: exec, Changed: status.Kick,
		Logger: d.Logger.Named("ops")}).Map() {
		actions[k] = v
	}
	return server.Extensions{
		Operations: &api.Operations{Engine: opsEngine, Status: status.Status},
		Background: []func(context.Context) error{status.Run},
		OnTaskEnd: func(taskID int64, _ string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if id := opsEngine.TaskEnded(ctx, taskID); id != 0 {
				status.Kick(id)
			}
		},
		WizardGuard: opsEngine.CheckNoOperation,
		Actions:     actions,
		Stopper:     exec,
		AgentAPI:    reg.Handler(),
		Plugins:     plugins.Handler(),
		// roleList shows what the cluster itself reports.
		RefreshRoles: exec.RefreshRegistration,
		PluginsReady: plugins.Ready,
		Close: func() {
			exec.Close()
			_ = plugins.Close()
			reg.Close()
		},
	}, nil
}
