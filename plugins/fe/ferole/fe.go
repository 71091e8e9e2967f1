// Package ferole is the FE role: a Doris frontend. The master FE starts on
// its own; every other FE is first added on the master (ALTER SYSTEM ADD
// FOLLOWER|OBSERVER) and only then started with --helper, as Doris asks.
package ferole

import (
	"context"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

// Role implements sdk.Role for Doris FE.
type Role struct {
	doris.Base
}

var _ sdk.Role = (*Role)(nil)

// New returns the FE role reporting version.
func New(version string) *Role {
	return &Role{Base: doris.Base{Spec: doris.FE, Version: version, Backoff: doris.DefaultBackoff, Health: doris.FEHealth}}
}

func nodeType(n sdk.Node) (string, error) {
	switch t := strings.ToUpper(doris.FENodeType(n)); t {
	case "", doris.FEFollower:
		return doris.FEFollower, nil
	case doris.FEObserver:
		return t, nil
	default:
		return "", sdk.Failf("feNodeType %q of %s must be FOLLOWER or OBSERVER", doris.FENodeType(n), n.Host)
	}
}

// withClusterType fills a node's missing feNodeType from the manager's
// view of the cluster.
func withClusterType(n sdk.Node, c sdk.Cluster) sdk.Node {
	if doris.FENodeType(n) != "" {
		return n
	}
	for _, o := range c.Nodes {
		if o.Role == doris.RoleFE && o.Host == n.Host && doris.FENodeType(o) != "" {
			n = doris.WithLabel(n, doris.LabelFENodeType, doris.FENodeType(o))
		}
	}
	return n
}

// startsAsMaster: the node marked master, or the only FE the manager knows.
func startsAsMaster(req sdk.Request) bool {
	if doris.IsMaster(req.Node) {
		return true
	}
	for _, n := range req.Cluster.Nodes {
		if n.Role == doris.RoleFE && !n.Skipped && n.Host != req.Node.Host {
			return false
		}
	}
	return true
}

// Start starts the FE. A non-master FE is added on the master first and
// then started with --helper master:edit_log_port.
func (r *Role) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	var master string
	res, err := r.Base.Start(ctx, h, req, doris.StartOptions{Prepare: func(ctx context.Context, d doris.Deployed) ([]string, error) {
		if startsAsMaster(req) {
			h.Logf("starting %s as the first (master) FE", req.Node.Host)
			return nil, nil
		}
		typ, err := nodeType(withClusterType(req.Node, req.Cluster))
		if err != nil {
			return nil, err
		}
		self := sdk.Node{Host: req.Node.Host, Role: doris.RoleFE, Ports: map[string]int{"query_port": d.Ports["query_port"]}}
		var others []sdk.Node
		for _, n := range req.Cluster.Nodes {
			if !(n.Role == doris.RoleFE && n.Host == self.Host) {
				others = append(others, n)
			}
		}
		m, err := doris.FindClusterMaster(ctx, h, sdk.Request{Cluster: sdk.Cluster{Nodes: others}})
		if err != nil {
			return nil, err
		}
		editLog := d.Ports["edit_log_port"]
		addrs := doris.NodeAddrs(ctx, h, self.Host)
		if _, ok := doris.Find([]doris.Member{m.Member}, addrs, editLog); ok {
			h.Logf("%s is the master already; starting without --helper", self.Host)
			return nil, nil
		}
		master = m.Addr()
		if _, ok := doris.Find(m.Frontends, addrs, editLog); !ok {
			ep := doris.Endpoint(self.Host, editLog)
			if err := doris.Exec(ctx, h, m, fmt.Sprintf("ALTER SYSTEM ADD %s %q", typ, ep), doris.AlreadyExists); err != nil {
				return nil, &sdk.Failure{Summary: fmt.Sprintf("cannot add FE %s on master %s", ep, m.Addr()), Detail: err.Error(), Retryable: true}
			}
		} else {
			h.Logf("%s is already a member of the cluster", self.Host)
		}
		return []string{"--helper", doris.Endpoint(m.Addr(), m.Port)}, nil
	}})
	if err == nil && master != "" {
		res.Facts["master"] = master
	}
	return res, err
}

// Register makes sure every target FE is a member and alive, adding
// missing ones on the master one at a time, each only after the previous
// one has joined. Facts: registered=YES, master=<host>.
func (r *Role) Register(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	ts, err := doris.Targets(ctx, h, req, doris.FE, "edit_log_port")
	if err != nil {
		return sdk.Result{}, err
	}
	timeout, err := doris.AliveTimeout(req)
	if err != nil {
		return sdk.Result{}, err
	}
	var extra []sdk.Node
	for _, t := range ts {
		extra = append(extra, t.Node)
	}
	m, err := doris.FindClusterMaster(ctx, h, req, extra...)
	if err != nil {
		return sdk.Result{}, err
	}
	show := doris.Show(h, m.QueryAddr, "SHOW FRONTENDS", doris.ParseFrontends)
	var added []string
	for _, t := range ts {
		fes, err := show(ctx)
		if err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: "cannot list frontends", Detail: err.Error(), Retryable: true}
		}
		if _, ok := doris.Find(fes, t.Addrs, t.Port); !ok {
			typ, err := nodeType(withClusterType(t.Node, req.Cluster))
			if err != nil {
				return sdk.Result{}, err
			}
			if err := doris.Exec(ctx, h, m, fmt.Sprintf("ALTER SYSTEM ADD %s %q", typ, t.Endpoint), doris.AlreadyExists); err != nil {
				return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("cannot add FE %s", t.Endpoint), Detail: err.Error(), Retryable: true}
			}
			added = append(added, t.Endpoint)
		}
		if err := r.Backoff.WaitAlive(ctx, timeout, "FE", show, []doris.Target{t}); err != nil {
			return sdk.Result{}, err
		}
	}
	sum := fmt.Sprintf("FE %s alive in the cluster (master %s)", doris.Endpoints(ts), m.Addr())
	if len(added) > 0 {
		sum += "; added " + strings.Join(added, ", ")
	}
	return sdk.Result{Summary: sum, Facts: map[string]string{"registered": "YES", "master": m.Addr()}}, nil
}

// Unregister drops the target FEs from the cluster (ALTER SYSTEM DROP
// FOLLOWER|OBSERVER, by the role the cluster reports). It refuses to drop
// the current master. Facts: registered=NO.
func (r *Role) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	ts, err := doris.Targets(ctx, h, req, doris.FE, "edit_log_port")
	if err != nil {
		return sdk.Result{}, err
	}
	m, err := doris.FindClusterMaster(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	var dropped []string
	for _, t := range ts {
		mem, ok := doris.Find(m.Frontends, t.Addrs, t.Port)
		if !ok {
			continue
		}
		if mem.IsMaster {
			return sdk.Result{}, sdk.Failf("%s is the master FE and cannot be dropped: stop it so another follower takes over, then drop it", t.Endpoint)
		}
		typ := mem.Role
		if typ != doris.FEObserver {
			typ = doris.FEFollower
		}
		if err := doris.Exec(ctx, h, m, fmt.Sprintf("ALTER SYSTEM DROP %s %q", typ, t.Endpoint), doris.NotMember); err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("cannot drop FE %s", t.Endpoint), Detail: err.Error(), Retryable: true}
		}
		dropped = append(dropped, t.Endpoint)
	}
	sum := "no FE to drop: not members of the cluster"
	if len(dropped) > 0 {
		sum = "dropped FE " + strings.Join(dropped, ", ")
	}
	return sdk.Result{Summary: sum, Facts: map[string]string{"registered": "NO"}}, nil
}
