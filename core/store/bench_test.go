package store_test

import (
	"context"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// benchClaim measures one task's trip through the store as the runner
// makes it: claim (conditional UPDATE), then record its end.
func benchClaim(b *testing.B, s *store.Store) {
	ctx := context.Background()
	tasks := make([]store.Task, b.N)
	for i := range tasks {
		tasks[i] = store.Task{ProcessID: int64(i % 50), Step: 0, Seq: 0, Status: store.StatusSubmitted}
	}
	for i := 0; i < len(tasks); i += 500 {
		if err := s.CreateTasks(ctx, tasks[i:min(i+500, len(tasks))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for done := 0; done < b.N; {
		got, err := s.ClaimTasks(ctx, "bench", 16)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range got {
			if _, err := s.EndTask(ctx, t, store.StatusSuccess, "ok", "", ""); err != nil {
				b.Fatal(err)
			}
		}
		done += len(got)
	}
}

func BenchmarkClaimAndEndSQLite(b *testing.B) {
	s, err := store.Open("", b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchClaim(b, s)
}

func BenchmarkClaimAndEndPostgres(b *testing.B) {
	s, err := store.Open(pgtest.Start(b), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchClaim(b, s)
}
