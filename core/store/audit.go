package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Audit outcomes a query can ask for (AuditQuery.Outcome), besides an
// exact HTTP status such as "403".
const (
	OutcomeOK      = "ok"      // status below 400
	OutcomeRefused = "refused" // 401, 403 or 429: the caller was not let in
	OutcomeError   = "error"   // any other status of 400 or more
)

// MaxAuditPage is the most entries one ListAudit call returns;
// DefaultAuditPage the number when the query says none.
const (
	MaxAuditPage     = 1000
	DefaultAuditPage = 100
)

// AuditQuery selects audit entries; zero fields select everything.
type AuditQuery struct {
	UserName  string
	ClusterID int64
	Since     time.Time // entries at or after
	Until     time.Time // entries before
	// Action is a piece of "METHOD route", matched case-insensitively
	// ("stop", "POST /api/tokens").
	Action  string
	Outcome string
	// Before pages backwards: only entries with a smaller id.
	Before int64
	// Limit is the page size, at most MaxAuditPage (0: DefaultAuditPage).
	Limit int
}

// AddAudit stores one audit entry (its ID is filled in; a zero At
// becomes now).
func (s *Store) AddAudit(ctx context.Context, e *AuditEntry) error {
	e.ID = 0
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	if err := s.q(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("record audit entry %s %s: %w", e.Method, e.Route, err)
	}
	return nil
}

// ListAudit returns the entries q selects, newest first, at most q.Limit.
func (s *Store) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultAuditPage
	case limit > MaxAuditPage:
		limit = MaxAuditPage
	}
	db := s.q(ctx).Model(&AuditEntry{})
	if q.UserName != "" {
		db = db.Where("user_name = ?", q.UserName)
	}
	if q.ClusterID != 0 {
		db = db.Where("cluster_id = ?", q.ClusterID)
	}
	if !q.Since.IsZero() {
		db = db.Where("at >= ?", q.Since.UTC())
	}
	if !q.Until.IsZero() {
		db = db.Where("at < ?", q.Until.UTC())
	}
	if q.Action != "" {
		db = db.Where(`LOWER(method || ' ' || route) LIKE ? ESCAPE '\'`, "%"+likeEscape(strings.ToLower(q.Action))+"%")
	}
	switch q.Outcome {
	case "":
	case OutcomeOK:
		db = db.Where("status < 400")
	case OutcomeRefused:
		db = db.Where("status IN (401, 403, 429)")
	case OutcomeError:
		db = db.Where("status >= 400 AND status NOT IN (401, 403, 429)")
	default:
		code, err := strconv.Atoi(q.Outcome)
		if err != nil || code < 100 || code > 599 {
			return nil, fmt.Errorf("outcome %q: use ok, refused, error or an HTTP status such as 403", q.Outcome)
		}
		db = db.Where("status = ?", code)
	}
	if q.Before > 0 {
		db = db.Where("id < ?", q.Before)
	}
	var out []AuditEntry
	if err := db.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read audit entries: %w", err)
	}
	return out, nil
}

// likeEscape makes s match literally inside a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// PruneAudit deletes the entries older than before, at most batch of them
// (oldest first) so that a large backlog does not hold one long
// transaction; it returns how many went.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, batch int) (int64, error) {
	sub := s.q(ctx).Model(&AuditEntry{}).Select("id").Where("at < ?", before.UTC()).Order("id").Limit(batch)
	res := s.q(ctx).Where("id IN (?)", sub).Delete(&AuditEntry{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune audit entries older than %s: %w", before.UTC().Format(time.RFC3339), res.Error)
	}
	return res.RowsAffected, nil
}
