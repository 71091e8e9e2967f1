package server

import (
	"context"
	"errors"

	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/api"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/hashicorp/go-hclog"
)

// storeMetrics returns the server's metrics registry with the gauges read
// from the store at every scrape: the store is the truth for tasks and
// agents, also those another manager on the same database changed.
func storeMetrics(st *store.Store) *metrics.Registry {
	reg := metrics.NewRegistry()
	reg.GaugeFunc("dorismanager_tasks", "Tasks in the store by task type and status (SUBMITTED: queued; SKIPPED: skipped by the operator).",
		[]string{"type", "status"}, func(ctx context.Context) ([]metrics.Sample, error) {
			return samples(st.TaskCounts(ctx))
		})
	reg.GaugeFunc("dorismanager_agents", "Agents of every cluster by state (RUNNING, STOP).",
		[]string{"state"}, func(ctx context.Context) ([]metrics.Sample, error) {
			cs, err := st.AgentCounts(ctx)
			if err != nil {
				return nil, err
			}
			// Both states are always there, so "none RUNNING" is a 0, not
			// a missing series.
			n := map[string]int64{agents.StatusRunning: 0, agents.StatusStop: 0}
			for _, c := range cs {
				n[c.Status] += c.N
			}
			out := make([]metrics.Sample, 0, len(n))
			for state, v := range n {
				out = append(out, metrics.Sample{Values: []string{state}, Value: float64(v)})
			}
			return out, nil
		})
	return reg
}

func samples(cs []store.Count, err error) ([]metrics.Sample, error) {
	if err != nil {
		return nil, err
	}
	out := make([]metrics.Sample, 0, len(cs))
	for _, c := range cs {
		out = append(out, metrics.Sample{Values: []string{c.Type, c.Status}, Value: float64(c.N)})
	}
	return out, nil
}

// readyChecks are what /readyz checks: the store answers, and role
// plugins are loaded (without them no role task can run). The database's
// error goes to the log only: driver errors may name the database user
// and host, which an unauthenticated endpoint should not show.
func readyChecks(st *store.Store, plugins func() error, log hclog.Logger) []api.Check {
	if plugins == nil {
		plugins = func() error {
			return errors.New("this manager has no role plugin host: no role plugin is loaded")
		}
	}
	return []api.Check{
		{Name: "store", Check: func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				log.Warn("readiness: the database does not answer", "error", err)
				return errors.New("the database does not answer a ping: check that it is up and reachable (--db); the manager's log has the error")
			}
			return nil
		}},
		{Name: "plugins", Check: func(context.Context) error { return plugins() }},
	}
}
