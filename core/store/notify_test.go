package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// One manager's NotifyTasks reaches another's ListenTasks with the
// sender's id; a listener whose connection is cut listens again (and
// says so with ""). SQLite has nothing to tell or hear.
func TestTaskNotifications(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := store.Open("", t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.NotifyTasks(context.Background(), "m1"); err != nil {
			t.Fatal(err)
		}
		if err := s.ListenTasks(context.Background(), func(string) { t.Error("woken on SQLite") }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		m1, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m1.Close()
		m2, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		heard := make(chan string, 16)
		done := make(chan error, 1)
		lctx, stop := context.WithCancel(ctx)
		go func() { done <- m2.ListenTasks(lctx, func(from string) { heard <- from }) }()
		next := func(want string) {
			t.Helper()
			select {
			case got := <-heard:
				if got != want {
					t.Fatalf("heard %q, want %q", got, want)
				}
			case <-ctx.Done():
				t.Fatalf("heard nothing, want %q", want)
			}
		}
		next("") // listening
		if err := m1.NotifyTasks(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		next("m1")
		// Cut the listener's connection: it comes back.
		if err := m1.DB().Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN ' || ?`, store.TasksChannel).Error; err != nil {
			t.Fatal(err)
		}
		next("")
		if err := m1.NotifyTasks(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		next("m1")
		stop()
		if err := <-done; err != nil {
			t.Fatalf("ListenTasks after its context ended: %v", err)
		}
	})
}

// One manager's NotifyRegistered reaches another's ListenRegistered with
// the agent's cluster and host.
func TestNotifyRegistered(t *testing.T) {
	dsn := pgtest.Start(t)
	m1, err := store.Open(dsn, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	m2, err := store.Open(dsn, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	heard := make(chan string, 16)
	done := make(chan error, 1)
	lctx, stop := context.WithCancel(ctx)
	go func() {
		done <- m2.ListenRegistered(lctx, func(c int64, h string) { heard <- fmt.Sprintf("%d %s", c, h) })
	}()
	for _, want := range []string{"0 ", "7 10.0.0.3"} {
		if want != "0 " {
			if err := m1.NotifyRegistered(ctx, 7, "10.0.0.3"); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case got := <-heard:
			if got != want {
				t.Fatalf("heard %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("heard nothing, want %q", want)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
