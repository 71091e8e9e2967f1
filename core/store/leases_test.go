package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// twoManagers runs fn with two stores opened on one database, as two
// managers would have them: SQLite (one file) and PostgreSQL.
func twoManagers(t *testing.T, fn func(t *testing.T, m1, m2 *store.Store)) {
	open := func(t *testing.T, dsn, dir string) *store.Store {
		s, err := store.Open(dsn, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, open(t, "", dir), open(t, "", dir))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		fn(t, open(t, dsn, ""), open(t, dsn, ""))
	})
}

// claimOne adds one task and claims it for owner with a lease of d.
func claimOne(t *testing.T, s *store.Store, owner string, d time.Duration) store.Task {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateTasks(ctx, []store.Task{{ProcessID: 1, TaskType: "T", Status: store.StatusSubmitted}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimTasks(ctx, owner, d, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %+v %v", got, err)
	}
	return got[0]
}

// takeOver is what a runner does with an expired lease of an idempotent
// task: back to SUBMITTED (same attempt), then claimed like any other.
func takeOver(t *testing.T, s *store.Store, owner string, task store.Task) (store.Task, bool) {
	t.Helper()
	ctx := context.Background()
	ok, err := s.UpdateExpired(ctx, task, map[string]any{"status": store.StatusSubmitted, "executor_id": "", "lease_until": nil})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return store.Task{}, false
	}
	got, err := s.ClaimTasks(ctx, owner, time.Minute, 1)
	if err != nil || len(got) != 1 || got[0].ID != task.ID {
		t.Fatalf("claim after take-over: %+v %v", got, err)
	}
	return got[0], true
}

func expiredIDs(t *testing.T, s *store.Store) map[int64]bool {
	t.Helper()
	ts, err := s.ExpiredTasks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]bool{}
	for _, x := range ts {
		out[x.ID] = true
	}
	return out
}

// waitExpired waits until task id's lease is seen expired (short leases
// in tests; no assertion on how long that takes).
func waitExpired(t *testing.T, s *store.Store, id int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !expiredIDs(t, s)[id] {
		select {
		case <-ctx.Done():
			t.Fatalf("the lease on task %d never expired", id)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestLeases(t *testing.T) {
	twoManagers(t, func(t *testing.T, m1, m2 *store.Store) {
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			run  func(t *testing.T)
		}{
			{"claim holds a lease", func(t *testing.T) {
				task := claimOne(t, m1, "m1", time.Minute)
				if task.Status != store.StatusRunning || task.ExecutorID != "m1" || task.LeaseUntil == nil ||
					task.LeaseUntil.Before(time.Now().Add(30*time.Second)) || task.LeaseEpoch != 1 {
					t.Fatalf("claimed task: %+v", task)
				}
				if expiredIDs(t, m2)[task.ID] {
					t.Fatal("a task under a live lease is listed as expired")
				}
				if ok, err := m2.UpdateExpired(ctx, task, map[string]any{"status": store.StatusSubmitted}); err != nil || ok {
					t.Fatalf("took over a live lease: %v %v", ok, err)
				}
				if got, _ := m2.ClaimTasks(ctx, "m2", time.Minute, 10); len(got) != 0 {
					t.Fatalf("claimed a RUNNING task again: %+v", got)
				}
			}},
			{"only the holder renews", func(t *testing.T) {
				task := claimOne(t, m1, "m1", time.Minute)
				if ok, err := m1.RenewLease(ctx, task, time.Hour); err != nil || !ok {
					t.Fatalf("holder's renewal: %v %v", ok, err)
				}
				if got, _ := m1.GetTask(ctx, task.ID); !got.LeaseUntil.After(time.Now().Add(50 * time.Minute)) {
					t.Fatalf("lease after renewal to an hour: %v", got.LeaseUntil)
				}
				other := task
				other.ExecutorID = "m2"
				if ok, err := m2.RenewLease(ctx, other, time.Hour); err != nil || ok {
					t.Fatalf("another manager renewed: %v %v", ok, err)
				}
				stale := task
				stale.LeaseEpoch--
				if ok, err := m1.RenewLease(ctx, stale, time.Hour); err != nil || ok {
					t.Fatalf("an earlier claim renewed: %v %v", ok, err)
				}
			}},
			{"expired lease is taken over, loser stops", func(t *testing.T) {
				task := claimOne(t, m1, "m1", 50*time.Millisecond)
				waitExpired(t, m2, task.ID)
				got, ok := takeOver(t, m2, "m2", task)
				if !ok {
					t.Fatal("an expired lease was not taken over")
				}
				if got.ExecutorID != "m2" || got.LeaseEpoch != task.LeaseEpoch+1 || got.Attempt != task.Attempt {
					t.Fatalf("taken over: %+v (was %+v)", got, task)
				}
				if ok, err := m1.RenewLease(ctx, task, time.Minute); err != nil || ok {
					t.Fatalf("the former holder renewed: %v %v", ok, err)
				}
				if ok, err := m1.EndTask(ctx, task, store.StatusSuccess, "late", "", ""); err != nil || ok {
					t.Fatalf("the former holder recorded its end: %v %v", ok, err)
				}
				if ok, err := m2.EndTask(ctx, got, store.StatusSuccess, "done", "", ""); err != nil || !ok {
					t.Fatalf("the new holder's end: %v %v", ok, err)
				}
				if final, _ := m1.GetTask(ctx, task.ID); final.Response != "done" || final.LeaseUntil != nil {
					t.Fatalf("ended task: %+v", final)
				}
			}},
			{"holder that comes back in time keeps it", func(t *testing.T) {
				task := claimOne(t, m1, "m1", -time.Second) // born expired
				if !expiredIDs(t, m2)[task.ID] {
					t.Fatal("an expired lease is not listed")
				}
				if ok, err := m1.RenewLease(ctx, task, time.Minute); err != nil || !ok {
					t.Fatalf("renewal of an expired lease nobody took: %v %v", ok, err)
				}
				if _, ok := takeOver(t, m2, "m2", task); ok {
					t.Fatal("took over a lease renewed meanwhile")
				}
			}},
			{"one of two managers takes over", func(t *testing.T) {
				task := claimOne(t, m1, "m1", -time.Second)
				var wg sync.WaitGroup
				wins := make(chan bool, 2)
				for _, s := range []*store.Store{m1, m2} {
					wg.Add(1)
					go func(s *store.Store) {
						defer wg.Done()
						ok, err := s.UpdateExpired(ctx, task, map[string]any{"status": store.StatusFailure, "finish": true})
						if err != nil {
							t.Error(err)
						}
						wins <- ok
					}(s)
				}
				wg.Wait()
				close(wins)
				n := 0
				for ok := range wins {
					if ok {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("%d managers settled the expired task, want 1", n)
				}
			}},
			{"a manager alone expires every lease", func(t *testing.T) {
				task := claimOne(t, m1, "m1", time.Hour)
				if n, err := m2.ExpireLeases(ctx); err != nil || n != 1 {
					t.Fatalf("ExpireLeases: %d %v", n, err)
				}
				if !expiredIDs(t, m2)[task.ID] {
					t.Fatal("not expired after ExpireLeases")
				}
			}},
			{"ended task holds no lease", func(t *testing.T) {
				task := claimOne(t, m1, "m1", time.Minute)
				if ok, err := m1.EndTask(ctx, task, store.StatusSubmitted, "", "", ""); err != nil || !ok {
					t.Fatalf("EndTask: %v %v", ok, err)
				}
				if got, _ := m1.GetTask(ctx, task.ID); got.ExecutorID != "" || got.LeaseUntil != nil || got.Status != store.StatusSubmitted {
					t.Fatalf("task given back: %+v", got)
				}
				if ok, err := m1.RenewLease(ctx, task, time.Minute); err != nil || ok {
					t.Fatalf("renewed an ended run: %v %v", ok, err)
				}
			}},
		} {
			// Each case works on its own task; clear the table between them.
			if err := m1.DB().Exec("DELETE FROM tasks").Error; err != nil {
				t.Fatal(err)
			}
			t.Run(tc.name, tc.run)
		}
	})
}

// A database from before leases and stored liveness: a RUNNING task has
// no lease (so it counts as expired: its manager is from before the
// upgrade) and the agents' stored status column goes.
func TestLeaseAndLivenessMigration(t *testing.T) {
	oldSchema := func(t *testing.T, db *gorm.DB) {
		t.Helper()
		for _, q := range []string{
			// One line: SQLite's migrator reads the columns back from this text.
			`CREATE TABLE tasks (id integer PRIMARY KEY, process_id bigint, step bigint, seq bigint, skip boolean, task_role varchar(16), status varchar(16), executor_id varchar(64), attempt bigint, updated_at timestamp)`,
			`INSERT INTO tasks (id, process_id, step, seq, skip, task_role, status, executor_id, attempt, updated_at)
			   VALUES (1, 1, 0, 0, false, '', 'RUNNING', 'old', 2, CURRENT_TIMESTAMP)`,
			`CREATE TABLE agents (id integer PRIMARY KEY, cluster_id bigint, host varchar(255), status varchar(16), last_reported_time timestamp)`,
			`INSERT INTO agents (id, cluster_id, host, status, last_reported_time) VALUES (1, 1, 'h1', 'RUNNING', '2020-01-01 00:00:00')`,
		} {
			if err := db.Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}
	check := func(t *testing.T, s *store.Store) {
		t.Helper()
		ctx := context.Background()
		ts, err := s.ExpiredTasks(ctx)
		if err != nil || len(ts) != 1 || ts[0].ExecutorID != "old" || ts[0].LeaseEpoch != 0 || ts[0].Attempt != 2 {
			t.Fatalf("expired tasks after migration: %+v %v", ts, err)
		}
		if ok, err := s.UpdateExpired(ctx, ts[0], map[string]any{"status": store.StatusSubmitted, "executor_id": ""}); err != nil || !ok {
			t.Fatalf("take over the old task: %v %v", ok, err)
		}
		a, err := s.AgentOf(ctx, 1, "h1")
		if err != nil || a.Status != store.AgentStop {
			t.Fatalf("old agent: %+v %v", a, err)
		}
		if s.DB().Migrator().HasColumn(&store.Agent{}, "status") {
			t.Error("the agents' status column is still there")
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "dorismanager.db")), &gorm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		oldSchema(t, db)
		s, err := store.Open("", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		oldSchema(t, db)
		s, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
}
