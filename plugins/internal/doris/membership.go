package doris

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// ParamAliveTimeout bounds the wait for registered nodes to show Alive
// (default 3m); ParamUnregisterMode is read by the BE plugin.
const ParamAliveTimeout = "aliveTimeout"

// Target is one node a Register or Unregister call acts on.
type Target struct {
	Node     sdk.Node
	Port     int      // the port Doris identifies the node by
	Addrs    []string // its host and what that resolves to
	Endpoint string   // "host:port" as written into SQL
}

// Targets returns req.Targets (or req.Node) of the spec's role, each with
// the port Doris knows it by (portKey: edit_log_port,
// heartbeat_service_port, broker_ipc_port).
func Targets(ctx context.Context, h sdk.Host, req sdk.Request, s Spec, portKey string) ([]Target, error) {
	nodes := req.Targets
	if len(nodes) == 0 {
		nodes = []sdk.Node{req.Node}
	}
	var ts []Target
	for _, n := range nodes {
		if n.Role != "" && n.Role != s.Role {
			continue
		}
		if err := CheckHost(n.Host); err != nil {
			return nil, sdk.Failf("%v", err)
		}
		p := s.NodePort(n, portKey)
		ts = append(ts, Target{Node: n, Port: p, Addrs: NodeAddrs(ctx, h, n.Host), Endpoint: Endpoint(n.Host, p)})
	}
	if len(ts) == 0 {
		return nil, sdk.Failf("no %s node to act on", s.Role)
	}
	return ts, nil
}

// Exec runs one DDL statement on the master, treating the errors ok
// accepts (AlreadyExists, NotMember) as success.
func Exec(ctx context.Context, h sdk.Host, m Master, sql string, ok func(error) bool) error {
	h.Logf("on master %s: %s", m.QueryAddr, sql)
	_, err := h.Query(ctx, m.QueryAddr, sql)
	if err != nil && ok != nil && ok(err) {
		h.Logf("%s: %v (fine)", sql, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s on master %s: %w", sql, m.QueryAddr, err)
	}
	return nil
}

// ShowFunc lists a membership table (SHOW FRONTENDS, BACKENDS, BROKER).
type ShowFunc func(ctx context.Context) ([]Member, error)

// Show returns a ShowFunc running stmt on fe and parsing it with parse.
func Show(h sdk.Host, fe, stmt string, parse func(sdk.Rows) []Member) ShowFunc {
	return func(ctx context.Context) ([]Member, error) {
		rows, err := h.Query(ctx, fe, stmt)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", stmt, fe, err)
		}
		return parse(rows), nil
	}
}

// WaitAlive polls show until every target is listed and Alive. On timeout
// it fails naming the nodes that are missing or not alive, with the
// ErrMsg Doris shows for them. A node that refuses heartbeats for a reason
// waiting cannot mend (a BE that chose another address than the one it
// was added as) fails it once that has lasted b.Settle, saying what to fix.
func (b Backoff) WaitAlive(ctx context.Context, timeout time.Duration, what string, show ShowFunc, ts []Target) error {
	var pending []string
	var lastErr error
	settle := b.Settle
	if settle <= 0 {
		settle = defaultSettle
	}
	refusing := map[string]time.Time{} // endpoint -> first seen refusing
	err := b.Poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		ms, err := show(ctx)
		if err != nil {
			// A query cut short by the deadline says nothing about the
			// nodes: keep what the last finished one found.
			if ctx.Err() == nil || (lastErr == nil && len(pending) == 0) {
				lastErr = err
			}
			return false, nil
		}
		lastErr = nil
		pending = pending[:0]
		for _, t := range ts {
			m, ok := Find(ms, t.Addrs, t.Port)
			switch {
			case !ok:
				pending = append(pending, t.Endpoint+" (not listed)")
			case !m.Alive:
				s := t.Endpoint + " (Alive=false"
				if m.ErrMsg != "" {
					s += ", ErrMsg: " + m.ErrMsg
				}
				pending = append(pending, s+")")
				if f := refusal(t, m.ErrMsg); f == nil {
					delete(refusing, t.Endpoint)
				} else if first, ok := refusing[t.Endpoint]; !ok {
					refusing[t.Endpoint] = time.Now()
				} else if time.Since(first) >= settle {
					return false, f
				}
				continue
			}
			delete(refusing, t.Endpoint)
		}
		return len(pending) == 0, nil
	})
	if errors.Is(err, ErrWaitTimeout) {
		sort.Strings(pending)
		f := &sdk.Failure{Retryable: true}
		if len(pending) > 0 {
			f.Summary = fmt.Sprintf("%s not alive after %s: %s", what, timeout, strings.Join(pending, ", "))
			f.Detail = "check that the node is started, that its conf ports match, and that the FE can reach it (priority_networks, firewall)"
		} else {
			f.Summary = fmt.Sprintf("could not list %s within %s", what, timeout)
		}
		if lastErr != nil {
			f.Detail = joinNonEmpty(f.Detail, "last error: "+lastErr.Error())
		}
		return f
	}
	return err
}

// AliveTimeout reads ParamAliveTimeout.
func AliveTimeout(req sdk.Request) (time.Duration, error) {
	d, err := ParamDuration(req.Params, ParamAliveTimeout, DefaultAliveTimeout)
	if err != nil {
		return 0, sdk.Failf("%v", err)
	}
	return d, nil
}

// FindClusterMaster discovers the master from every FE the manager knows
// (plus extra nodes), failing with what to do when none answers.
func FindClusterMaster(ctx context.Context, h sdk.Host, req sdk.Request, extra ...sdk.Node) (Master, error) {
	m, err := FindMaster(ctx, h, FEQueryAddrs(req.Cluster, extra...))
	if err != nil {
		if ctx.Err() != nil {
			return Master{}, ctx.Err()
		}
		return Master{}, &sdk.Failure{Summary: "cannot find the master FE: start the master FE first (startService)", Detail: err.Error(), Retryable: true}
	}
	h.Logf("master FE is %s (edit_log_port %d)", m.Addr(), m.Port)
	return m, nil
}

// Endpoints lists the targets' endpoints for a message.
func Endpoints(ts []Target) string {
	eps := make([]string, len(ts))
	for i, t := range ts {
		eps[i] = t.Endpoint
	}
	return strings.Join(eps, ", ")
}

// localIPMismatch is how a BE answers heartbeats when the FE added it
// under another address than the one it chose for itself from
// priority_networks (Doris's heartbeat server: "backend ip saved in
// master does not equal to backend local ip<added> vs. <own>").
var localIPMismatch = regexp.MustCompile(`backend ip saved in master does not equal to backend local ip\s*(\S+) vs\. (\S+)`)

// refusal is the failure for a node whose heartbeats fail in a way that
// only a conf change mends, or nil.
func refusal(t Target, errMsg string) *sdk.Failure {
	m := localIPMismatch.FindStringSubmatch(errMsg)
	if m == nil {
		return nil
	}
	added, own := m[1], strings.TrimRight(m[2], ".,;")
	return &sdk.Failure{
		Summary: fmt.Sprintf("%s refuses the FE's heartbeats: it chose the address %s for itself, not %s, the address it was added as", t.Endpoint, own, added),
		Detail: fmt.Sprintf("set priority_networks in its be.conf to a network that holds %s (for example %s), deploy that conf "+
			"(back to DEPLOY_CONFIG in the wizard, or edit-config on a running cluster), restart the BE and retry; Doris says: %s", added, suggestNetwork(added), errMsg),
		Retryable: true,
	}
}
