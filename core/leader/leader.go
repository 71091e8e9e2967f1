// Package leader decides which manager does a periodic job when several
// share one database: the one holding the job's lock (a PostgreSQL
// advisory lock, core/store.Lock). Whoever asks Leading on its own tick
// either holds the lock, takes it if it is free, or learns that another
// manager has it; a manager that dies or loses the database loses the
// lock with its session, and the next asker takes it over.
//
// Two managers may both believe they lead for a moment (one's session
// ended at the database before it noticed), so a job run this way must
// still be safe to run twice; the lock makes it run once in the normal
// case, not exactly once.
package leader

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/store"
)

// Locker takes named locks (core/store.Store).
type Locker interface {
	TryLock(ctx context.Context, name string) (*store.Lock, error)
}

// Elector is this manager's side of one job's election.
type Elector struct {
	st   Locker
	name string
	log  hclog.Logger

	mu   sync.Mutex
	lock *store.Lock
}

// New returns an elector for the job name; it holds nothing until the
// first Leading.
func New(st Locker, name string, log hclog.Logger) *Elector {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Elector{st: st, name: name, log: log}
}

// Leading tells whether this manager should do the job now: it checks
// that the lock it holds is still its own, or tries to take it. Errors
// (the database unreachable) count as not leading: a job is skipped
// rather than run by two managers.
func (e *Elector) Leading(ctx context.Context) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lock != nil {
		err := e.lock.Check(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		e.log.Warn("lost the lead of a periodic job; another manager may take it", "job", e.name, "error", err)
		e.lock.Release()
		e.lock = nil
	}
	l, err := e.st.TryLock(ctx, e.name)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("try to lead a periodic job", "job", e.name, "error", err)
		}
		return false
	}
	if l == nil {
		return false
	}
	e.lock = l
	e.log.Info("leading a periodic job", "job", e.name)
	return true
}

// Close gives the lead up, so another manager takes it at its next tick.
func (e *Elector) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lock != nil {
		e.lock.Release()
		e.lock = nil
	}
}
