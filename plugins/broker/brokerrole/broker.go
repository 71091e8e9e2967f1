// Package brokerrole is the BROKER role: Doris's apache_hdfs_broker.
package brokerrole

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

// ParamBrokerName names the broker group every target joins. Without it
// each broker gets its own name, "broker_" plus its host with every
// character other than letters, digits and '_' turned into '_'.
const ParamBrokerName = "brokerName"

var nameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Role implements sdk.Role for the Doris broker.
type Role struct {
	doris.Base
}

var (
	_ sdk.Role         = (*Role)(nil)
	_ sdk.Member       = (*Role)(nil)
	_ sdk.Upgrader     = (*Role)(nil)
	_ sdk.Reconfigurer = (*Role)(nil)
)

// New returns the BROKER role reporting version.
func New(version string) *Role {
	return &Role{Base: doris.Base{Spec: doris.Broker, Version: version, Backoff: doris.DefaultBackoff, Health: doris.BrokerHealth,
		Params: []sdk.Param{{Name: ParamBrokerName, Type: sdk.ParamString,
			Description: "the broker group every broker joins; default: one per broker, broker_<host>"}}}}
}

// Start starts the broker (start_broker.sh --daemon) and waits until it
// listens on broker_ipc_port.
func (r *Role) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.Base.Start(ctx, h, req, doris.StartOptions{})
}

// BrokerName is the name a broker on host joins under.
func BrokerName(params map[string]string, host string) (string, error) {
	if n := params[ParamBrokerName]; n != "" {
		if !nameRe.MatchString(n) {
			return "", sdk.Failf("param %s = %q must start with a letter and hold only letters, digits and _", ParamBrokerName, n)
		}
		return n, nil
	}
	var b strings.Builder
	b.WriteString("broker_")
	for _, c := range host {
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String(), nil
}

// Register adds the target brokers the cluster does not list yet (ALTER
// SYSTEM ADD BROKER <name> "host:broker_ipc_port") and waits until SHOW
// BROKER shows them Alive. Facts: registered=true, alive=true, brokerName, master.
func (r *Role) Register(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	timeout, err := doris.AliveTimeout(req)
	if err != nil {
		return sdk.Result{}, err
	}
	members, err := r.ListMembers(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	ts, m, show, brokers := members.Targets, members.Master, members.Show, members.Listed
	var added, names []string
	for _, t := range ts {
		name, err := BrokerName(req.Params, t.Node.Host)
		if err != nil {
			return sdk.Result{}, err
		}
		if mem, ok := doris.Find(brokers, t.Addrs, t.Port); ok {
			names = append(names, mem.Name)
			continue
		}
		names = append(names, name)
		if err := doris.Exec(ctx, h, m, fmt.Sprintf("ALTER SYSTEM ADD BROKER `%s` %q", name, t.Endpoint), doris.AlreadyExists); err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("cannot add broker %s", t.Endpoint), Detail: err.Error(), Retryable: true}
		}
		added = append(added, t.Endpoint)
	}
	if err := r.Backoff.WaitAlive(ctx, timeout, "broker", show, ts); err != nil {
		return sdk.Result{}, err
	}
	sum := fmt.Sprintf("broker %s alive in the cluster (master %s)", doris.Endpoints(ts), m.Addr())
	if len(added) > 0 {
		sum += "; added " + strings.Join(added, ", ")
	}
	facts := sdk.Facts{"master": m.Addr(), "brokerName": strings.Join(dedup(names), ",")}
	facts.SetBool(sdk.FactRegistered, true)
	facts.SetBool(sdk.FactAlive, true)
	return sdk.Result{Summary: sum, Facts: facts}, nil
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Unregister drops the target brokers (ALTER SYSTEM DROP BROKER under the
// name the cluster lists them by). Facts: registered=false, alive=false.
func (r *Role) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	members, err := r.ListMembers(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	ts, m, brokers := members.Targets, members.Master, members.Listed
	var dropped []string
	for _, t := range ts {
		mem, ok := doris.Find(brokers, t.Addrs, t.Port)
		if !ok {
			continue
		}
		if !nameRe.MatchString(mem.Name) {
			return sdk.Result{}, sdk.Failf("broker %s has the name %q, which cannot be used in SQL safely: drop it by hand", t.Endpoint, mem.Name)
		}
		if err := doris.Exec(ctx, h, m, fmt.Sprintf("ALTER SYSTEM DROP BROKER `%s` %q", mem.Name, t.Endpoint), doris.NotMember); err != nil {
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("cannot drop broker %s", t.Endpoint), Detail: err.Error(), Retryable: true}
		}
		dropped = append(dropped, t.Endpoint)
	}
	sum := "no broker to drop: not members of the cluster"
	if len(dropped) > 0 {
		sum = "dropped broker " + strings.Join(dropped, ", ")
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRegistered, false)
	facts.SetBool(sdk.FactAlive, false)
	return sdk.Result{Summary: sum, Facts: facts}, nil
}

// Upgrade replaces the BROKER's Doris by req.PackageURL keeping conf and data,
// restarts it and waits until the cluster lists it alive at the new
// version (see doris.Base.UpgradeWith).
func (r *Role) Upgrade(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.UpgradeWith(ctx, h, req, r.Start)
}

// Reconfigure compares req.Conf with the deployed apache_hdfs_broker.conf:
// the broker has no way to change a setting while it runs, so every
// changed key takes effect at the next start (FactRestartNeeded).
func (r *Role) Reconfigure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.ReconfigureWith(ctx, h, req, nil)
}
