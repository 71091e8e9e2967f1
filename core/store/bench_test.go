package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
		got, err := s.ClaimTasks(ctx, "bench", time.Minute, 16)
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

// benchHeartbeats measures writing 10,000 heartbeats (each agent's
// latest), as the agent registry does every second: 10,000 agents beating
// every 5 s make 2,000 beats a second. "batch" is one RecordHeartbeats;
// "tx-per-beat" is the write it replaced, one single-row UPDATE (its own
// transaction) per beat. One agent in a hundred reports changed processes.
func benchHeartbeats(b *testing.B, s *store.Store) {
	const n = 10000
	ctx := context.Background()
	agents := make([]store.Agent, n)
	for i := range agents {
		agents[i] = store.Agent{ClusterID: int64(i/100 + 1), Host: fmt.Sprintf("10.0.%d.%d", i/250, i%250), Port: 9602,
			Processes: `[{"role":"BE","pid":1234,"alive":true}]`}
	}
	if err := s.DB().CreateInBatches(&agents, 500).Error; err != nil {
		b.Fatal(err)
	}
	ps := `[{"role":"BE","pid":4321,"alive":true}]`
	beats := make([]store.Heartbeat, n)
	at := time.Now()
	next := func(i int) {
		at = at.Add(time.Second)
		for j := range beats {
			beats[j] = store.Heartbeat{AgentID: agents[j].ID, At: at}
			if j%100 == i%100 {
				beats[j].Processes = &ps
			}
		}
	}
	check := func(b *testing.B) {
		var got store.Agent
		if err := s.DB().Where("id = ?", agents[n-1].ID).Take(&got).Error; err != nil || got.LastReportedTime == nil ||
			got.LastReportedTime.Sub(at).Abs() > time.Microsecond {
			b.Fatalf("last agent after the batches: %v %v, want %v", got.LastReportedTime, err, at)
		}
	}
	b.Run("batch", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			next(i)
			b.StartTimer()
			if err := s.RecordHeartbeats(ctx, beats); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "beats/s")
		check(b)
	})
	b.Run("tx-per-beat", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			next(i)
			b.StartTimer()
			for _, hb := range beats {
				u := map[string]any{"last_reported_time": hb.At.UTC()}
				if hb.Processes != nil {
					u["processes"] = *hb.Processes
				}
				if err := s.DB().WithContext(ctx).Model(&store.Agent{}).Where("id = ?", hb.AgentID).Updates(u).Error; err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "beats/s")
		check(b)
	})
}

// go test -run XXX -bench HeartbeatBatch -benchtime 5x ./core/store/
func BenchmarkHeartbeatBatch10kSQLite(b *testing.B) {
	s, err := store.Open("", b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchHeartbeats(b, s)
}

func BenchmarkHeartbeatBatch10kPostgres(b *testing.B) {
	s, err := store.Open(pgtest.Start(b), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchHeartbeats(b, s)
}
