package pluginhost

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// Catalogue returns, for every role with an accepted plugin, the Info of
// the version the cluster uses (its pin), or for a cluster without a pin
// for that role (or clusterID 0) the version it would get: the highest
// accepted. It never pins. A role whose pinned version is no longer
// accepted, or is there as another binary, is left out (Overview flags the
// pin).
func (m *Manager) Catalogue(ctx context.Context, clusterID int64) (map[string]sdk.Info, error) {
	l := m.List()
	pins := map[string]store.PluginPin{}
	if m.cfg.Store != nil && clusterID != 0 {
		all, err := m.cfg.Store.ListPins(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range all {
			if p.ClusterID == clusterID {
				pins[p.Role] = p
			}
		}
	}
	out := map[string]sdk.Info{}
	for _, p := range l.Plugins { // highest version of each role first
		if _, done := out[p.Role]; done {
			continue
		}
		pin, pinned := pins[p.Role]
		if !pinned {
			out[p.Role] = p.Info
			continue
		}
		pp, err := m.pinned(pin)
		if err != nil {
			m.log.Warn("cluster pinned to a plugin that is not accepted; the role is left out of its catalogue",
				"cluster", clusterID, "role", p.Role, "version", pin.Version, "error", err)
			out[p.Role] = sdk.Info{} // marks the role as handled
			continue
		}
		out[p.Role] = pp.Info
	}
	for role, info := range out {
		if info.Role == "" {
			delete(out, role)
		}
	}
	return out, nil
}

// Role returns the cluster's plugin for role (pinning it at first use, as
// resolve does) as an sdk.Remote whose every call writes the plugin's log
// lines for that call into taskLog (nil: none), is counted for retire/kill
// and timed in the call latency metrics. An optional method (Register,
// Unregister, Upgrade, Reconfigure) the plugin does not implement answers
// a Failure saying so; check Info.Has first.
//
// A failure the plugin reports comes back as *sdk.Failure. A plugin that
// exits during a call gives an error wrapping ErrPluginExited and naming
// the plugin's last stderr lines; the next call starts it afresh.
func (m *Manager) Role(ctx context.Context, clusterID int64, role string, taskLog io.Writer) (sdk.Remote, error) {
	role = strings.ToUpper(role)
	p, err := m.resolve(ctx, clusterID, role)
	if err != nil {
		return nil, err
	}
	c, err := m.client(p)
	if err != nil {
		return nil, err
	}
	return &remote{m: m, c: c, role: role, taskLog: taskLog}, nil
}

// remote is the sdk.Remote Role hands out: one plugin binary, one task log.
type remote struct {
	m       *Manager
	c       *client
	role    string
	taskLog io.Writer
}

var _ sdk.Remote = (*remote)(nil)

func (r *remote) run(ctx context.Context, method string, h sdk.Host, req sdk.Request, fn roleFunc) (sdk.Result, error) {
	start := time.Now()
	res, err := r.c.call(ctx, method, fn, h, r.taskLog, req)
	r.m.observe(start, r.role, method, err)
	return res, err
}

// Info implements sdk.Role: the plugin's own answer, over gRPC.
func (r *remote) Info(ctx context.Context) (sdk.Info, error) {
	var info sdk.Info
	_, err := r.run(ctx, "Info", nil, sdk.Request{}, func(rc *sdk.RoleClient, ctx context.Context, _ sdk.Host, _ sdk.Request) (sdk.Result, error) {
		var err error
		info, err = rc.Info(ctx)
		return sdk.Result{}, err
	})
	return info, err
}

// Precheck implements sdk.Role.
func (r *remote) Precheck(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Precheck", h, req, (*sdk.RoleClient).Precheck)
}

// Install implements sdk.Role.
func (r *remote) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Install", h, req, (*sdk.RoleClient).Install)
}

// Configure implements sdk.Role.
func (r *remote) Configure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Configure", h, req, (*sdk.RoleClient).Configure)
}

// Start implements sdk.Role.
func (r *remote) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Start", h, req, (*sdk.RoleClient).Start)
}

// Stop implements sdk.Role.
func (r *remote) Stop(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Stop", h, req, (*sdk.RoleClient).Stop)
}

// Status implements sdk.Role.
func (r *remote) Status(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Status", h, req, (*sdk.RoleClient).Status)
}

// Remove implements sdk.Role.
func (r *remote) Remove(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Remove", h, req, (*sdk.RoleClient).Remove)
}

// Register implements sdk.Member.
func (r *remote) Register(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Register", h, req, (*sdk.RoleClient).Register)
}

// Unregister implements sdk.Member.
func (r *remote) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Unregister", h, req, (*sdk.RoleClient).Unregister)
}

// Upgrade implements sdk.Upgrader.
func (r *remote) Upgrade(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Upgrade", h, req, (*sdk.RoleClient).Upgrade)
}

// Reconfigure implements sdk.Reconfigurer.
func (r *remote) Reconfigure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.run(ctx, "Reconfigure", h, req, (*sdk.RoleClient).Reconfigure)
}
