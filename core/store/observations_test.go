package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestObservations(t *testing.T) {
	twoManagers(t, func(t *testing.T, m1, m2 *store.Store) {
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		obs := func(host, facts string, at time.Time) store.NodeObservation {
			return store.NodeObservation{Host: host, Role: "BE", Facts: facts, AskedAt: at.Add(-time.Millisecond), CheckedAt: at}
		}
		if err := m1.SaveObservations(ctx, 1, []store.NodeObservation{obs("h1", `{"running":"true"}`, t0), obs("h2", "", t0)}); err != nil {
			t.Fatal(err)
		}
		if err := m1.SaveObservations(ctx, 2, []store.NodeObservation{obs("h9", `{}`, t0)}); err != nil {
			t.Fatal(err)
		}
		// The other manager reads them; a newer answer replaces one, an
		// older one (a slow manager's) does not, and h2 left cluster 1.
		got := byKey(t, m2)
		if len(got) != 3 || got["1/h1"].Facts != `{"running":"true"}` || !got["1/h1"].CheckedAt.Equal(t0) {
			t.Fatalf("observations read by the other manager: %+v", got)
		}
		if err := m2.SaveObservations(ctx, 1, []store.NodeObservation{obs("h1", `{"running":"false"}`, t0.Add(time.Second))}); err != nil {
			t.Fatal(err)
		}
		if err := m1.SaveObservations(ctx, 1, []store.NodeObservation{obs("h1", `{"running":"stale"}`, t0.Add(time.Millisecond))}); err != nil {
			t.Fatal(err)
		}
		got = byKey(t, m1)
		if len(got) != 2 || got["1/h1"].Facts != `{"running":"false"}` {
			t.Fatalf("after a newer and an older answer for h1 and h2 leaving: %+v", got)
		}
		// Clusters gone lose theirs.
		if err := m1.KeepObservations(ctx, []int64{1}); err != nil {
			t.Fatal(err)
		}
		if got = byKey(t, m2); len(got) != 1 || got["1/h1"].Host != "h1" {
			t.Fatalf("after keeping cluster 1 only: %+v", got)
		}
		if err := m1.KeepObservations(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got = byKey(t, m2); len(got) != 0 {
			t.Fatalf("after keeping no cluster: %+v", got)
		}
	})
}

func byKey(t *testing.T, s *store.Store) map[string]store.NodeObservation {
	t.Helper()
	all, err := s.Observations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.NodeObservation{}
	for _, o := range all {
		m[fmt.Sprintf("%d/%s", o.ClusterID, o.Host)] = o
	}
	return m
}

func TestPruneAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		for i := range 7 {
			// Entries 0..4 are older than a day, 5 and 6 are not.
			at := now.Add(-time.Duration(10-i) * 24 * time.Hour)
			if i >= 5 {
				at = now.Add(-time.Duration(i) * time.Minute)
			}
			if err := s.AddAudit(ctx, &store.AuditEntry{At: at, Method: "POST", Route: "/x", Status: 200}); err != nil {
				t.Fatal(err)
			}
		}
		cut := now.Add(-24 * time.Hour)
		if n, err := s.PruneAudit(ctx, cut, 3); err != nil || n != 3 {
			t.Fatalf("first batch: %d, %v; want 3", n, err)
		}
		if n, err := s.PruneAudit(ctx, cut, 3); err != nil || n != 2 {
			t.Fatalf("second batch: %d, %v; want 2", n, err)
		}
		left, err := s.ListAudit(ctx, store.AuditQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 2 {
			t.Fatalf("%d entries left, want the 2 newer than a day", len(left))
		}
		for _, e := range left {
			if e.At.Before(cut) {
				t.Errorf("entry of %v kept, older than the cut %v", e.At, cut)
			}
		}
	})
}
