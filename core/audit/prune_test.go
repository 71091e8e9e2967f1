package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/audit"
	"github.com/dorismanager/dorismanager/core/store"
)

func TestPrunerKeepsTheRetention(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, age := range []time.Duration{400 * 24 * time.Hour, 366 * 24 * time.Hour, 364 * 24 * time.Hour, time.Hour} {
		if err := st.AddAudit(ctx, &store.AuditEntry{At: now.Add(-age), Method: "POST", Route: "/api/x", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	p := audit.Pruner{Store: st, Retention: audit.DefaultRetention, Now: func() time.Time { return now }}
	if n := p.Round(ctx); n != 2 {
		t.Fatalf("pruned %d entries, want the 2 older than a year", n)
	}
	left, err := st.ListAudit(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(left) != 2 {
		t.Fatalf("left %d entries (%v), want 2", len(left), err)
	}
	// Retention 0 keeps everything: Run returns at once.
	done := make(chan error, 1)
	go func() {
		done <- audit.Pruner{Store: st, Now: func() time.Time { return now.Add(1000 * 24 * time.Hour) }}.Run(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with no retention did not return")
	}
	if left, _ := st.ListAudit(ctx, store.AuditQuery{Limit: 10}); len(left) != 2 {
		t.Fatalf("retention 0 deleted entries: %d left", len(left))
	}
}
