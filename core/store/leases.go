package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Task leases. A RUNNING task is held by one manager (Task.ExecutorID)
// until Task.LeaseUntil; the holder renews the lease while the task runs.
// Every claim increments Task.LeaseEpoch, and every write of a holder is
// conditional on (id, RUNNING, owner, epoch): a holder whose lease expired
// and was taken over changes nothing, and two managers never both hold a
// task. On PostgreSQL lease times are the database's clock
// (clock_timestamp()), so managers' clocks need not agree; on SQLite,
// which one manager uses, they are that manager's clock.

// held is the condition of a write by the holder of a claim:
// id, status RUNNING, owner, epoch.
const held = "id = ? AND status = ? AND executor_id = ? AND lease_epoch = ?"

// leaseEnd is the value of lease_until for a lease of d starting now.
func (s *Store) leaseEnd(d time.Duration) any {
	if s.postgres {
		return gorm.Expr("clock_timestamp() + ? * interval '1 microsecond'", d.Microseconds())
	}
	return time.Now().UTC().Add(d)
}

// expired is the condition of a RUNNING task whose lease ended: past its
// time, or NULL (rows from before leases, or given up by ExpireLeases).
func (s *Store) expired(db *gorm.DB) *gorm.DB {
	if s.postgres {
		return db.Where("(lease_until IS NULL OR lease_until < clock_timestamp())")
	}
	return db.Where("(lease_until IS NULL OR lease_until < ?)", time.Now().UTC())
}

// RenewLease extends the lease of t's claim to d from now. False (and no
// error) when the claim is gone: the task ended, was removed, or another
// manager took it over after the lease expired. A lease that expired but
// was not taken over is still the holder's, and is renewed.
func (s *Store) RenewLease(ctx context.Context, t Task, d time.Duration) (bool, error) {
	res := s.q(ctx).Model(&Task{}).Where(held, t.ID, StatusRunning, t.ExecutorID, t.LeaseEpoch).
		UpdateColumn("lease_until", s.leaseEnd(d))
	if res.Error != nil {
		return false, fmt.Errorf("renew the lease on task %d: %w", t.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ExpiredTasks returns the RUNNING tasks whose lease expired: their holder
// stopped (or lost the database) without recording their end.
func (s *Store) ExpiredTasks(ctx context.Context) ([]Task, error) {
	var ts []Task
	err := s.expired(s.q(ctx).Where("status = ?", StatusRunning)).Order("id").Find(&ts).Error
	if err != nil {
		return nil, fmt.Errorf("find tasks whose lease expired: %w", err)
	}
	return ts, nil
}

// UpdateExpired applies updates to t if it is still RUNNING under the
// claim t was read with and that claim's lease is still expired (its
// holder did not renew it meanwhile). It reports whether the row changed.
func (s *Store) UpdateExpired(ctx context.Context, t Task, updates map[string]any) (bool, error) {
	u := map[string]any{"updated_at": time.Now().UTC()}
	for k, v := range updates {
		u[k] = v
	}
	q := s.q(ctx).Model(&Task{}).Where("id = ? AND status = ? AND lease_epoch = ?", t.ID, StatusRunning, t.LeaseEpoch)
	res := s.expired(q).UpdateColumns(u)
	if res.Error != nil {
		return false, fmt.Errorf("take over task %d: %w", t.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ExpireLeases ends the lease of every RUNNING task at once. Only a
// manager that knows no other can hold one may call it: the only manager
// of a SQLite database, at its start (every holder is a process that has
// gone).
func (s *Store) ExpireLeases(ctx context.Context) (int64, error) {
	res := s.q(ctx).Model(&Task{}).Where("status = ? AND lease_until IS NOT NULL", StatusRunning).UpdateColumn("lease_until", nil)
	if res.Error != nil {
		return 0, fmt.Errorf("expire the leases of running tasks: %w", res.Error)
	}
	return res.RowsAffected, nil
}
