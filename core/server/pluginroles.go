package server

// DELETE THIS FILE when core/pluginhost.Manager has Catalogue and Role of
// its own (the plugins-ops branch): it only bridges the role catalogue and
// typed role calls onto today's Manager.Call, so that the wizard can use
// them meanwhile. Wire the Manager itself in their place.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/sdk"
)

// PluginRoles adapts a pluginhost.Manager to process.Catalogue,
// agents.Catalogue and roleexec.Roles.
type PluginRoles struct{ M *pluginhost.Manager }

// Catalogue returns every role with an accepted plugin: the Info of the
// version the cluster is pinned to, else of the highest one (never pins).
func (p PluginRoles) Catalogue(ctx context.Context, clusterID int64) (map[string]sdk.Info, error) {
	pins, err := p.M.Pins(ctx)
	if err != nil {
		return nil, err
	}
	pinned := map[string]string{}
	for _, pin := range pins {
		if pin.ClusterID == clusterID {
			pinned[pin.Role] = pin.Version
		}
	}
	out := map[string]sdk.Info{}
	for _, pl := range p.M.List().Plugins { // highest version of a role first
		_, seen := out[pl.Role]
		if v, ok := pinned[pl.Role]; ok {
			if pl.Version == v {
				out[pl.Role] = pl.Info
			}
			continue
		}
		if !seen {
			out[pl.Role] = pl.Info
		}
	}
	return out, nil
}

// Role returns the plugin of a role as typed calls over Manager.Call.
func (p PluginRoles) Role(_ context.Context, clusterID int64, role string, taskLog io.Writer) (sdk.Remote, error) {
	return callRole{m: p.M, cluster: clusterID, role: strings.ToUpper(role), log: taskLog}, nil
}

type callRole struct {
	m       *pluginhost.Manager
	cluster int64
	role    string
	log     io.Writer
}

func (c callRole) call(ctx context.Context, method string, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return c.m.Call(ctx, c.cluster, c.role, method, h, c.log, req)
}

func (c callRole) Info(ctx context.Context) (sdk.Info, error) {
	pl, err := c.m.Resolve(ctx, c.cluster, c.role)
	return pl.Info, err
}
func (c callRole) Precheck(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Precheck", h, r)
}
func (c callRole) Install(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Install", h, r)
}
func (c callRole) Configure(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Configure", h, r)
}
func (c callRole) Start(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Start", h, r)
}
func (c callRole) Stop(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Stop", h, r)
}
func (c callRole) Status(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Status", h, r)
}
func (c callRole) Remove(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Remove", h, r)
}
func (c callRole) Register(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Register", h, r)
}
func (c callRole) Unregister(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Unregister", h, r)
}
func (c callRole) Upgrade(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{}, fmt.Errorf("upgrade of %s: not available through this manager's plugin host yet", c.role)
}
func (c callRole) Reconfigure(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{}, fmt.Errorf("reconfigure of %s: not available through this manager's plugin host yet", c.role)
}
