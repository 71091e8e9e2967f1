// Package berole is the BE role: a Doris backend.
package berole

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

// ParamUnregisterMode chooses how Unregister removes a BE: "decommission"
// (default: Doris first moves its tablets to other BEs, then drops it) or
// "drop" (ALTER SYSTEM DROPP BACKEND: immediate, its replicas are lost),
// the same as Request.Force.
const ParamUnregisterMode = "unregisterMode"

// Role implements sdk.Role for Doris BE.
type Role struct {
	doris.Base
	// DecommissionBackoff paces the wait for a decommission to finish.
	DecommissionBackoff doris.Backoff
}

var (
	_ sdk.Role         = (*Role)(nil)
	_ sdk.Member       = (*Role)(nil)
	_ sdk.Upgrader     = (*Role)(nil)
	_ sdk.Reconfigurer = (*Role)(nil)
)

// New returns the BE role reporting version.
func New(version string) *Role {
	return &Role{Base: doris.Base{Spec: doris.BE, Version: version, Backoff: doris.DefaultBackoff, Health: doris.BEHealth,
		Params: []sdk.Param{{Name: ParamUnregisterMode, Type: sdk.ParamString, Default: "decommission",
			Description: "how Unregister removes a BE: decommission (move its tablets first) or drop"}}},
		DecommissionBackoff: doris.DecommissionBackoff}
}

// Start starts the BE (start_be.sh --daemon) and waits for /api/health.
// While it comes up it must announce (in be.INFO) the address it was
// installed for: the FE adds it under that address, and a BE that chose
// another one (priority_networks) refuses every heartbeat. Such a BE is
// stopped and the start fails, naming priority_networks.
func (r *Role) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	ac := doris.BEAddressCheck(h, req.Node.Host)
	res, err := r.Base.Start(ctx, h, req, doris.StartOptions{Check: ac.Check, Prepare: func(ctx context.Context, d doris.Deployed) ([]string, error) {
		ac.Prepare(ctx, d)
		return nil, nil
	}})
	err = ac.Finish(ctx, func() (doris.Deployed, error) { return r.Load(ctx, h, req) }, err)
	if !errors.Is(err, doris.ErrWrongAddress) {
		return res, err
	}
	done := ""
	if ac.Started() {
		done = "the BE was stopped"
		if _, serr := r.Stop(ctx, h, req); serr != nil {
			done = fmt.Sprintf("stopping it failed: %v", serr)
		}
	}
	return sdk.Result{}, doris.WrongAddress(doris.BE, req.Node.Host, ac.Seen, ac.Deployed, done)
}

// Register adds the target BEs that the cluster does not list yet, in one
// ALTER SYSTEM ADD BACKEND on the master, and waits until SHOW BACKENDS
// shows every target Alive. Facts: registered=true, alive=true, master=<host>.
func (r *Role) Register(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	timeout, err := doris.AliveTimeout(req)
	if err != nil {
		return sdk.Result{}, err
	}
	members, err := r.ListMembers(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	ts, m, show, bes := members.Targets, members.Master, members.Show, members.Listed
	var missing []string
	for _, t := range ts {
		if _, ok := doris.Find(bes, t.Addrs, t.Port); !ok {
			missing = append(missing, t.Endpoint)
		}
	}
	if len(missing) > 0 {
		err := doris.Exec(ctx, h, m, "ALTER SYSTEM ADD BACKEND "+quoteList(missing), nil)
		if doris.AlreadyExists(err) {
			// One duplicate fails the whole statement: add them one by one.
			err = nil
			for _, ep := range missing {
				if err = doris.Exec(ctx, h, m, "ALTER SYSTEM ADD BACKEND "+quoteList([]string{ep}), doris.AlreadyExists); err != nil {
					break
				}
			}
		}
		if err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: "cannot add backends " + strings.Join(missing, ", "), Detail: err.Error(), Retryable: true}
		}
	}
	if err := r.Backoff.WaitAlive(ctx, timeout, "BE", show, ts); err != nil {
		return sdk.Result{}, err
	}
	return doris.Registered("BE", ts, m, missing), nil
}

func quoteList(eps []string) string {
	q := make([]string, len(eps))
	for i, e := range eps {
		q[i] = fmt.Sprintf("%q", e)
	}
	return strings.Join(q, ", ")
}

// Unregister takes the target BEs out of the cluster. By default it
// decommissions them (ALTER SYSTEM DECOMMISSION BACKEND: Doris moves their
// tablets to the other BEs, then drops them) and waits until SHOW BACKENDS
// no longer lists them, logging the tablets left; it refuses up front when
// the BEs that would remain cannot hold the replicas of every table. With
// req.Force (or param unregisterMode=drop) it drops them at once (ALTER
// SYSTEM DROPP BACKEND): their replicas are lost. A retry after the task
// ran out of time waits for the decommission already under way.
// Facts: registered=false, decommissioning=false, alive=false.
func (r *Role) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	mode := strings.ToLower(req.Params[ParamUnregisterMode])
	if mode == "" {
		mode = "decommission"
	}
	if mode != "decommission" && mode != "drop" {
		return sdk.Result{}, sdk.Failf("param %s = %q must be decommission or drop", ParamUnregisterMode, mode)
	}
	force := req.Force || mode == "drop"
	members, err := r.ListMembers(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	ts, m, bes := members.Targets, members.Master, members.Listed
	var present []doris.Target
	var leaving, fresh []doris.Member
	for _, t := range ts {
		if mem, ok := doris.Find(bes, t.Addrs, t.Port); ok {
			present = append(present, t)
			leaving = append(leaving, mem)
			if !mem.Decommissioned {
				fresh = append(fresh, mem)
			}
		}
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRegistered, false)
	facts.SetBool(sdk.FactDecommissioning, false)
	facts.SetBool(sdk.FactAlive, false)
	if len(present) == 0 {
		return sdk.Result{Summary: "no BE to remove: not members of the cluster", Facts: facts}, nil
	}
	eps := doris.Endpoints(present)
	if force {
		if err := doris.Exec(ctx, h, m, "ALTER SYSTEM DROPP BACKEND "+quoteTargets(present), doris.NotMember); err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: "cannot drop backends " + eps, Detail: err.Error(), Retryable: true}
		}
		return sdk.Result{Summary: "dropped BE " + eps + " without moving its tablets", Facts: facts}, nil
	}
	if len(fresh) > 0 {
		rep, err := doris.MaxReplication(ctx, h, m.QueryAddr)
		if err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: "cannot tell how many replicas the tables need", Detail: err.Error(), Retryable: true}
		}
		h.Logf("largest replication_num of %d tables: %d (%s)", rep.Tables, rep.Max, rep.Table)
		if err := doris.CheckBEsHoldReplicas(bes, leaving, rep); err != nil {
			return sdk.Result{}, err
		}
		var stmt []doris.Target
		for _, t := range present {
			if mem, _ := doris.Find(bes, t.Addrs, t.Port); !mem.Decommissioned {
				stmt = append(stmt, t)
			}
		}
		if err := doris.Exec(ctx, h, m, "ALTER SYSTEM DECOMMISSION BACKEND "+quoteTargets(stmt), nil); err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: "cannot decommission backends " + doris.Endpoints(stmt), Detail: err.Error(), Retryable: true}
		}
	} else {
		h.Logf("%s already decommissioning; waiting for it to finish", eps)
	}
	if err := doris.WaitGone(ctx, h, r.DecommissionBackoff, members.Show, present, true); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "decommissioned BE " + eps + ": its tablets moved and the cluster dropped it", Facts: facts}, nil
}

func quoteTargets(ts []doris.Target) string {
	eps := make([]string, len(ts))
	for i, t := range ts {
		eps[i] = t.Endpoint
	}
	return quoteList(eps)
}

// Upgrade replaces the BE's Doris by req.PackageURL keeping conf and data,
// restarts it and waits until the cluster lists it alive at the new
// version (see doris.Base.UpgradeWith).
func (r *Role) Upgrade(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.UpgradeWith(ctx, h, req, r.Start)
}

// Reconfigure compares req.Conf with the deployed be.conf; keys the
// running BE reports mutable (/api/show_config) are set with POST
// /api/update_config, the others wait for a restart (FactRestartNeeded).
// It refuses to change heartbeat_service_port or drop a storage root.
func (r *Role) Reconfigure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.ReconfigureWith(ctx, h, req, doris.BELive{})
}
