package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// The life of a cluster's admin account: a pending password recorded
// before it is set, promoted once it works, revealed once, replaced by an
// operator's account.
func TestAdminAccount(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.GetAdminAccount(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no account yet: %v, want ErrNotFound", err)
		}
		if err := s.PromoteAdminPending(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("promote without a row: %v, want ErrNotFound", err)
		}
		if ok, err := s.MarkAdminRevealed(ctx, 1); ok || err != nil {
			t.Fatalf("reveal without a row: %v %v", ok, err)
		}

		if err := s.SetAdminPending(ctx, 1, []byte("sealed-1"), true); err != nil {
			t.Fatal(err)
		}
		a, err := s.GetAdminAccount(ctx, 1)
		if err != nil || a.User != "" || a.Password != nil || string(a.Pending) != "sealed-1" || !a.PendingGenerated || a.Generated {
			t.Fatalf("after SetAdminPending: %+v %v", a, err)
		}
		if ok, _ := s.MarkAdminRevealed(ctx, 1); ok {
			t.Fatal("a pending password was revealed")
		}
		// A second pending password replaces the first.
		if err := s.SetAdminPending(ctx, 1, []byte("sealed-2"), true); err != nil {
			t.Fatal(err)
		}
		if err := s.PromoteAdminPending(ctx, 1); err != nil {
			t.Fatal(err)
		}
		a, _ = s.GetAdminAccount(ctx, 1)
		if a.User != "" || string(a.Password) != "sealed-2" || a.Pending != nil || !a.Generated || a.Revealed || a.PendingGenerated {
			t.Fatalf("after promote: %+v", a)
		}
		if err := s.PromoteAdminPending(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("promote with nothing pending: %v", err)
		}
		// Revealed once only.
		if ok, err := s.MarkAdminRevealed(ctx, 1); !ok || err != nil {
			t.Fatalf("first reveal: %v %v", ok, err)
		}
		if ok, err := s.MarkAdminRevealed(ctx, 1); ok || err != nil {
			t.Fatalf("second reveal: %v %v", ok, err)
		}
		// A pending password keeps the current one until it is promoted.
		if err := s.SetAdminPending(ctx, 1, []byte("sealed-3"), false); err != nil {
			t.Fatal(err)
		}
		a, _ = s.GetAdminAccount(ctx, 1)
		if string(a.Password) != "sealed-2" || string(a.Pending) != "sealed-3" || !a.Revealed {
			t.Fatalf("pending beside the current one: %+v", a)
		}
		// An operator's account replaces everything.
		if err := s.SetAdminAccount(ctx, 1, "ops", []byte("sealed-4")); err != nil {
			t.Fatal(err)
		}
		a, _ = s.GetAdminAccount(ctx, 1)
		if a.User != "ops" || string(a.Password) != "sealed-4" || a.Pending != nil || a.Generated || a.Revealed {
			t.Fatalf("after SetAdminAccount: %+v", a)
		}
		if ok, _ := s.MarkAdminRevealed(ctx, 1); ok {
			t.Fatal("an operator's password was revealed")
		}
		// Another cluster's account is its own; a first SetAdminAccount creates it.
		if err := s.SetAdminAccount(ctx, 2, "root", nil); err != nil {
			t.Fatal(err)
		}
		if b, err := s.GetAdminAccount(ctx, 2); err != nil || b.User != "root" || b.Password != nil {
			t.Fatalf("cluster 2: %+v %v", b, err)
		}
		if a, _ := s.GetAdminAccount(ctx, 1); a.User != "ops" {
			t.Fatalf("cluster 1 changed with cluster 2: %+v", a)
		}
		if err := s.DeleteAdminAccount(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAdminAccount(ctx, 2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if _, err := s.GetAdminAccount(ctx, 1); err != nil {
			t.Fatalf("cluster 1 went with cluster 2: %v", err)
		}
	})
}
