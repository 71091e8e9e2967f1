// Package ferole is the FE role: a Doris frontend. The master FE starts on
// its own; every other FE is first added on the master (ALTER SYSTEM ADD
// FOLLOWER|OBSERVER) and only then started with --helper, as Doris asks.
package ferole

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

// Role implements sdk.Role for Doris FE.
type Role struct {
	doris.Base
}

var (
	_ sdk.Role         = (*Role)(nil)
	_ sdk.Member       = (*Role)(nil)
	_ sdk.Upgrader     = (*Role)(nil)
	_ sdk.Reconfigurer = (*Role)(nil)
)

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
		if o.Role == doris.RoleFE && sameFE(o, n) && doris.FENodeType(o) != "" {
			n = doris.WithLabel(n, doris.LabelFENodeType, doris.FENodeType(o))
		}
	}
	return n
}

// sameFE reports whether two nodes are the same FE: the same host and,
// when both are known, the same edit_log_port (a host may run several).
func sameFE(a, b sdk.Node) bool {
	if a.Host != b.Host {
		return false
	}
	pa, pb := a.Ports["edit_log_port"], b.Ports["edit_log_port"]
	return pa == 0 || pb == 0 || pa == pb
}

// startsAsMaster: the node marked master, or the only FE the manager knows.
func startsAsMaster(req sdk.Request, self sdk.Node) bool {
	if doris.IsMaster(req.Node) {
		return true
	}
	for _, n := range req.Cluster.Nodes {
		if n.Role == doris.RoleFE && !n.Skipped && !sameFE(n, self) {
			return false
		}
	}
	return true
}

// Start starts the FE. A non-master FE is added on the master first and
// then started with --helper master:edit_log_port. While it comes up it
// must announce the address it was installed for (see addressCheck).
func (r *Role) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	var master string
	ac := &addressCheck{AddressCheck: doris.FEAddressCheck(h, req.Node.Host)}
	res, err := r.Base.Start(ctx, h, req, doris.StartOptions{Check: ac.Check, Prepare: func(ctx context.Context, d doris.Deployed) ([]string, error) {
		ac.prepare(ctx, h, d)
		self := sdk.Node{Host: req.Node.Host, Role: doris.RoleFE, Labels: req.Node.Labels,
			Ports: map[string]int{"query_port": d.Ports["query_port"], "edit_log_port": d.Ports["edit_log_port"]}}
		if startsAsMaster(req, self) {
			h.Logf("starting %s as the first (master) FE", req.Node.Host)
			return nil, nil
		}
		typ, err := nodeType(withClusterType(self, req.Cluster))
		if err != nil {
			return nil, err
		}
		var others []sdk.Node
		for _, n := range req.Cluster.Nodes {
			if !(n.Role == doris.RoleFE && sameFE(n, self)) {
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
	err = ac.Finish(ctx, func() (doris.Deployed, error) { return r.Load(ctx, h, req) }, err)
	if errors.Is(err, doris.ErrWrongAddress) {
		return sdk.Result{}, r.refuseAddress(ctx, h, req, ac)
	}
	if err == nil && master != "" {
		res.Facts["master"] = master
		// Added on the master before it started: a member of the cluster.
		res.Facts.SetBool(sdk.FactRegistered, true)
	}
	return res, err
}

// addressCheck is the FE's doris.AddressCheck: an FE that took another
// address would be recorded under it by the cluster: as the master its
// metadata would name it, as a follower it could never join. It also
// notes whether the meta dir was empty before the start.
type addressCheck struct {
	*doris.AddressCheck
	freshMeta string
}

// prepare runs when the FE is about to be started.
func (c *addressCheck) prepare(ctx context.Context, h sdk.Host, d doris.Deployed) {
	c.Prepare(ctx, d)
	dirs, err := doris.DataDirs(doris.FE, d)
	if err != nil || len(dirs) == 0 {
		return
	}
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"find", dirs[0], "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"}})
	if err == nil && res.ExitCode == 0 && strings.TrimSpace(res.Output) == "" {
		c.freshMeta = dirs[0]
	}
}

// refuseAddress fails the start of an FE that announced another address.
// An FE this start started is stopped, and the metadata it wrote into a
// meta dir that was empty before is removed: it names the wrong address
// and would outlive a fixed conf.
func (r *Role) refuseAddress(ctx context.Context, h sdk.Host, req sdk.Request, c *addressCheck) error {
	var done []string
	if c.Started() {
		if _, err := r.Stop(ctx, h, req); err != nil {
			done = append(done, fmt.Sprintf("stopping it failed: %v", err))
		} else {
			done = append(done, "the FE was stopped")
			if c.freshMeta != "" {
				res, err := h.Exec(ctx, sdk.Command{Argv: []string{"find", c.freshMeta, "-mindepth", "1", "-delete"}})
				switch {
				case err != nil:
					done = append(done, fmt.Sprintf("removing the metadata it wrote in %s failed: %v", c.freshMeta, err))
				case res.ExitCode != 0:
					done = append(done, fmt.Sprintf("removing the metadata it wrote in %s failed: %s", c.freshMeta, strings.TrimSpace(res.Output)))
				default:
					done = append(done, fmt.Sprintf("the metadata it had just written under that address was removed from %s, so it starts clean once fixed", c.freshMeta))
				}
			}
		}
	}
	return doris.WrongAddress(doris.FE, req.Node.Host, c.Seen, c.Deployed, strings.Join(done, "; "))
}

// Register makes sure every target FE is a member and alive, adding
// missing ones on the master one at a time, each only after the previous
// one has joined. Facts: registered=true, alive=true, master=<host>.
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
	return doris.Registered("FE", ts, m, added), nil
}

// Unregister drops the target FEs from the cluster (ALTER SYSTEM DROP
// FOLLOWER|OBSERVER, by the role the cluster reports) and waits until SHOW
// FRONTENDS no longer lists them. It refuses to drop the current master
// and to leave the remaining FOLLOWERs without an alive majority
// (CheckFollowerQuorum), with or without req.Force (an FE holds no data to
// drain). Facts: registered=false, alive=false.
func (r *Role) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	ts, err := doris.Targets(ctx, h, req, doris.FE, "edit_log_port")
	if err != nil {
		return sdk.Result{}, err
	}
	m, err := doris.FindClusterMaster(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	var present []doris.Target
	var drop []doris.Member
	for _, t := range ts {
		mem, ok := doris.Find(m.Frontends, t.Addrs, t.Port)
		if !ok {
			continue
		}
		if mem.IsMaster {
			return sdk.Result{}, sdk.Failf("%s is the master FE and cannot be dropped: stop it so another follower takes over, then drop it", t.Endpoint)
		}
		present = append(present, t)
		drop = append(drop, mem)
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRegistered, false)
	facts.SetBool(sdk.FactAlive, false)
	if len(present) == 0 {
		return sdk.Result{Summary: "no FE to drop: not members of the cluster", Facts: facts}, nil
	}
	// Force does not override this: without an alive majority the
	// cluster can neither elect a master nor write metadata.
	if err := doris.CheckFollowerQuorum(m.Frontends, drop); err != nil {
		return sdk.Result{}, err
	}
	for i, t := range present {
		typ := drop[i].Role
		if typ != doris.FEObserver {
			typ = doris.FEFollower
		}
		if err := doris.Exec(ctx, h, m, fmt.Sprintf("ALTER SYSTEM DROP %s %q", typ, t.Endpoint), doris.NotMember); err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("cannot drop FE %s", t.Endpoint), Detail: err.Error(), Retryable: true}
		}
	}
	show := doris.Show(h, m.QueryAddr, "SHOW FRONTENDS", doris.ParseFrontends)
	if err := doris.WaitGone(ctx, h, r.Backoff, show, present, false); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "dropped FE " + doris.Endpoints(present), Facts: facts}, nil
}

// Upgrade replaces the FE's Doris by req.PackageURL keeping conf and data,
// restarts it and waits until the cluster lists it alive at the new
// version (see doris.Base.UpgradeWith).
func (r *Role) Upgrade(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.UpgradeWith(ctx, h, req, r.Start)
}

// Reconfigure compares req.Conf with the deployed fe.conf; keys the
// running FE reports mutable (SHOW FRONTEND CONFIG) are set on it with
// ADMIN SET FRONTEND CONFIG, the others wait for a restart
// (FactRestartNeeded). It refuses to change edit_log_port or meta_dir.
func (r *Role) Reconfigure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.ReconfigureWith(ctx, h, req, doris.FELive{})
}
