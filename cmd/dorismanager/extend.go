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
func extendWith(clientOpts []agentclient.Option, certLifetime time.Duration) func(context.Context, server.Deps) (server.Extensions, error) {
	return func(ctx context.Context, d server.Deps) (server.Extensions, error) {
		return extend(ctx, d, clientOpts, certLifetime)
	}
}

func extend(ctx context.Context, d server.Deps, clientOpts []agentclient.Option, certLifetime time.Duration) (server.Extensions, error) {
	plugins, err := pluginhost.New(pluginhost.Config{Dir: d.PluginsDir, DB: d.Store.DB(), Logger: d.Logger.Named("plugins"), Metrics: d.Metrics})
	if err != nil {
		return server.Extensions{}, fmt.Errorf("role plugins in %s: %w", d.PluginsDir, err)
	}
	roles := server.PluginRoles{M: plugins}
	reg, err := agents.New(agents.Config{Store: d.Store, Catalogue: roles, PKI: d.PKI, CertLifetime: certLifetime, Logger: d.Logger.Named("agents"),
		ClientOptions: clientOpts, Metrics: d.Metrics})
	if err != nil {
		_ = plugins.Close()
		return server.Extensions{}, fmt.Errorf("agent registry: %w", err)
	}
	if err := reg.Start(ctx); err != nil {
		_ = plugins.Close()
		return server.Extensions{}, fmt.Errorf("agent registry: %w", err)
	}
	agentPort := 0
	if tcp, ok := d.AgentAddr.(*net.TCPAddr); ok {
		agentPort = tcp.Port
	} else if _, p, err := net.SplitHostPort(d.AgentAddr.String()); err == nil {
		agentPort, _ = strconv.Atoi(p)
	}
	inst, err := sshboot.New(sshboot.Config{AdvertiseURL: d.AdvertiseURL, AgentEndpointPort: agentPort,
		Registry: reg, Store: d.Store, Logger: d.Logger.Named("sshboot")})
	if err != nil {
		reg.Close()
		_ = plugins.Close()
		return server.Extensions{}, fmt.Errorf("SSH installer: %w", err)
	}
	exec := roleexec.New(roleexec.Config{Store: d.Store, Roles: roles, Agents: reg, Logger: d.Logger})
	return server.Extensions{
		Actions:       runner.Actions{process.TaskInstallAgent: agentaction.Action{Store: d.Store, Secrets: d.Secrets, Installer: inst}},
		ResolveAction: exec.Resolve,
		Catalogue:     roles,
		Stopper:       exec,
		AgentAPI:      reg.Handler(),
		Plugins:       plugins.Handler(),
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
