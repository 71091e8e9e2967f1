package audit

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/leader"
	"github.com/dorismanager/dorismanager/core/store"
)

// Defaults of Pruner.
const (
	// DefaultRetention keeps a year of audit entries.
	DefaultRetention = 365 * 24 * time.Hour
	// PruneJob is the periodic job whose leader prunes (core/leader).
	PruneJob     = "audit-prune"
	pruneEvery   = time.Hour
	pruneBatch   = 5000
	pruneBatches = 100 // per round; a larger backlog goes at the next rounds
)

// Pruner deletes the audit entries older than Retention, once at start
// and every hour after, on the manager leading the job PruneJob.
type Pruner struct {
	Store     *store.Store
	Retention time.Duration // 0 or less: keep every entry
	Leader    *leader.Elector
	Logger    hclog.Logger
	Every     time.Duration // between rounds; 0: an hour
	Now       func() time.Time
}

// Run prunes until ctx ends.
func (p Pruner) Run(ctx context.Context) error {
	if p.Retention <= 0 {
		return nil
	}
	if p.Logger == nil {
		p.Logger = hclog.NewNullLogger()
	}
	if p.Every <= 0 {
		p.Every = pruneEvery
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Leader != nil {
		defer p.Leader.Close()
	}
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		if p.Leader == nil || p.Leader.Leading(ctx) {
			p.Round(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round deletes what is older than the retention now, in batches, and
// returns how many entries went.
func (p Pruner) Round(ctx context.Context) int64 {
	if p.Now == nil {
		p.Now = time.Now
	}
	before := p.Now().Add(-p.Retention)
	var total int64
	for range pruneBatches {
		n, err := p.Store.PruneAudit(ctx, before, pruneBatch)
		if err != nil {
			if ctx.Err() == nil && p.Logger != nil {
				p.Logger.Warn("prune the audit log", "error", err)
			}
			break
		}
		total += n
		if n < pruneBatch {
			break
		}
	}
	if total > 0 && p.Logger != nil {
		p.Logger.Info("pruned the audit log", "entries", total, "older_than", before.UTC().Format(time.RFC3339))
	}
	return total
}
