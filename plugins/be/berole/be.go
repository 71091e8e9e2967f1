// Package berole is the BE role: a Doris backend.
package berole

import (
	"context"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

// ParamUnregisterMode chooses how Unregister removes a BE: "decommission"
// (default: Doris first moves its tablets to other BEs, then drops it) or
// "drop" (ALTER SYSTEM DROPP BACKEND: immediate, its replicas are lost).
const ParamUnregisterMode = "unregisterMode"

// Role implements sdk.Role for Doris BE.
type Role struct {
	doris.Base
}

var _ sdk.Role = (*Role)(nil)

// New returns the BE role reporting version.
func New(version string) *Role {
	return &Role{Base: doris.Base{Spec: doris.BE, Version: version, Backoff: doris.DefaultBackoff, Health: doris.BEHealth,
		Params: []sdk.Param{{Name: ParamUnregisterMode, Type: sdk.ParamString, Default: "decommission",
			Description: "how Unregister removes a BE: decommission (move its tablets first) or drop"}}}}
}

// Start starts the BE (start_be.sh --daemon) and waits for /api/health.
func (r *Role) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.Base.Start(ctx, h, req, doris.StartOptions{})
}

// Register adds the target BEs that the cluster does not list yet, in one
// ALTER SYSTEM ADD BACKEND on the master, and waits until SHOW BACKENDS
// shows every target Alive. Facts: registered=YES, master=<host>.
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
	sum := fmt.Sprintf("BE %s alive in the cluster (master %s)", doris.Endpoints(ts), m.Addr())
	if len(missing) > 0 {
		sum += "; added " + strings.Join(missing, ", ")
	}
	return sdk.Result{Summary: sum, Facts: sdk.Facts{sdk.FactRegistered: "true", "master": m.Addr()}}, nil
}

func quoteList(eps []string) string {
	q := make([]string, len(eps))
	for i, e := range eps {
		q[i] = fmt.Sprintf("%q", e)
	}
	return strings.Join(q, ", ")
}

// Unregister removes the target BEs: DECOMMISSION by default (Facts
// registered=DECOMMISSIONING; Doris drops the BE once its tablets have
// moved), or with param unregisterMode=drop ALTER SYSTEM DROPP BACKEND
// (Facts registered=NO).
func (r *Role) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	mode := strings.ToLower(req.Params[ParamUnregisterMode])
	if mode == "" {
		mode = "decommission"
	}
	if mode != "decommission" && mode != "drop" {
		return sdk.Result{}, sdk.Failf("param %s = %q must be decommission or drop", ParamUnregisterMode, mode)
	}
	members, err := r.ListMembers(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	ts, m, bes := members.Targets, members.Master, members.Listed
	var present []string
	for _, t := range ts {
		if _, ok := doris.Find(bes, t.Addrs, t.Port); ok {
			present = append(present, t.Endpoint)
		}
	}
	if len(present) == 0 {
		return sdk.Result{Summary: "no BE to remove: not members of the cluster", Facts: map[string]string{"registered": "NO"}}, nil
	}
	stmt, fact, verb := "ALTER SYSTEM DECOMMISSION BACKEND ", "DECOMMISSIONING", "decommission started for "
	if mode == "drop" {
		stmt, fact, verb = "ALTER SYSTEM DROPP BACKEND ", "NO", "dropped "
	}
	if err := doris.Exec(ctx, h, m, stmt+quoteList(present), doris.NotMember); err != nil {
		return sdk.Result{}, &sdk.Failure{Summary: "cannot remove backends " + strings.Join(present, ", "), Detail: err.Error(), Retryable: true}
	}
	return sdk.Result{Summary: verb + strings.Join(present, ", "), Facts: map[string]string{"registered": fact}}, nil
}
