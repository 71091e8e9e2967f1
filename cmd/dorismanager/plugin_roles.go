package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dorismanager/dorismanager/core/pluginhost"
	"github.com/dorismanager/dorismanager/sdk"
)

// pluginRoles gives core/ops and the status cache a cluster's role plugins
// as sdk.Remote and its role catalogue, over pluginhost.Manager.Call.
// Temporary: it goes once pluginhost offers Role and Catalogue itself.
type pluginRoles struct{ m *pluginhost.Manager }

// Role is the plugin the cluster uses for role (pinned at first use).
func (p pluginRoles) Role(ctx context.Context, clusterID int64, role string, taskLog io.Writer) (sdk.Remote, error) {
	pl, err := p.m.Resolve(ctx, clusterID, role)
	if err != nil {
		return nil, err
	}
	return callRemote{m: p.m, clusterID: clusterID, role: strings.ToUpper(role), log: taskLog, info: pl.Info}, nil
}

// Catalogue is each role's plugin for the cluster: the pinned version,
// else the highest accepted one (nothing is pinned by asking).
func (p pluginRoles) Catalogue(ctx context.Context, clusterID int64) (map[string]sdk.Info, error) {
	pins, err := p.m.Pins(ctx)
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
	for _, pl := range p.m.List().Plugins { // highest version first
		v, isPinned := pinned[pl.Role]
		if _, have := out[pl.Role]; (have && !isPinned) || (isPinned && pl.Version != v) {
			continue
		}
		out[pl.Role] = pl.Info
	}
	for role, v := range pinned {
		if info, ok := out[role]; !ok || info.Version != v {
			return nil, fmt.Errorf("cluster %d is pinned to %s %s, which is not installed: %w", clusterID, role, v, pluginhost.ErrNoPlugin)
		}
	}
	return out, nil
}

// callRemote is one role's plugin, called through the manager.
type callRemote struct {
	m         *pluginhost.Manager
	clusterID int64
	role      string
	log       io.Writer
	info      sdk.Info
}

func (c callRemote) call(ctx context.Context, method string, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return c.m.Call(ctx, c.clusterID, c.role, method, h, c.log, req)
}

func (c callRemote) Info(context.Context) (sdk.Info, error) { return c.info, nil }
func (c callRemote) Precheck(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Precheck", h, r)
}
func (c callRemote) Install(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Install", h, r)
}
func (c callRemote) Configure(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Configure", h, r)
}
func (c callRemote) Start(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Start", h, r)
}
func (c callRemote) Stop(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Stop", h, r)
}
func (c callRemote) Status(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Status", h, r)
}
func (c callRemote) Remove(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Remove", h, r)
}
func (c callRemote) Register(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Register", h, r)
}
func (c callRemote) Unregister(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Unregister", h, r)
}
func (c callRemote) Upgrade(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Upgrade", h, r)
}
func (c callRemote) Reconfigure(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.call(ctx, "Reconfigure", h, r)
}
