package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// waitUntil polls cond until it holds (no assertion on how long).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// calls records the agent request ids runs would send: the id of a
// task's first call is t<task>-a<attempt>-... (core/roleexec).
type calls struct {
	mu  sync.Mutex
	ids []string // "<manager> <request id>"
}

func (c *calls) add(manager string, task store.Task) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, fmt.Sprintf("%s t%d-a%d-exec-1", manager, task.ID, task.Attempt))
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

// Two managers on one PostgreSQL database: the first is killed while it
// runs a task (its database connections are gone and it is stopped, so
// it neither renews nor gives back the lease); the second leaves the task
// alone while the lease lives, takes it over once it expired, and runs
// it with the same attempt, so the same agent request ids.
func TestTakeOverAfterAManagerDied(t *testing.T) {
	dsn := pgtest.Start(t)
	st1, st2 := openStore(t, dsn), openStore(t, dsn)
	var c calls
	started := make(chan struct{}, 1)
	action := func(manager string) funcAction {
		return funcAction{idempotent: true, run: func(ctx context.Context, job Job) (Outcome, error) {
			c.add(manager, job.Task)
			fmt.Fprintf(job.Log, "run by %s\n", manager)
			if manager == "m1" {
				started <- struct{}{}
				<-ctx.Done() // m1 never finishes: it dies
				return Outcome{}, ctx.Err()
			}
			return Outcome{Response: "finished by " + manager}, nil
		}}
	}
	ts := addTasks(t, st1, store.Task{ProcessID: 1, TaskType: "T", Host: "h1"})
	// m1 runs one task at a time, so the next one is m2's.
	h1 := start(t, st1, Config{ManagerID: "m1", Parallel: 1, Lease: time.Second, Actions: Actions{"T": action("m1")}})
	<-started
	h2 := start(t, st2, Config{ManagerID: "m2", Lease: time.Second, Actions: Actions{"T": action("m2"), "Q": succeed("ok")}})
	// Once m2 ran a task of its own it is past its start: the task m1
	// holds under a live lease is still m1's.
	addTasks(t, st2, store.Task{ProcessID: 2, TaskType: "Q"})
	h2.r.Notify()
	h2.waitEnds(1)
	if got := h2.task(ts[0].ID); got.Status != store.StatusRunning || got.ExecutorID != "m1" {
		t.Fatalf("task after m2 started: %+v", got)
	}

	// Kill m1 (once its output is stored): no database any more, then stopped.
	waitUntil(t, "m1's output stored", func() bool {
		log, _ := st2.TaskLog(context.Background(), ts[0].ID)
		return string(log) == "run by m1\n"
	})
	st1.Close()
	h1.stop()

	h2.waitEnds(1)
	got := h2.task(ts[0].ID)
	if got.Status != store.StatusSuccess || got.Response != "finished by m2" || got.ExecutorID != "m2" || got.Attempt != ts[0].Attempt {
		t.Fatalf("task after the take-over: %+v", got)
	}
	want := []string{fmt.Sprintf("m1 t%d-a0-exec-1", got.ID), fmt.Sprintf("m2 t%d-a0-exec-1", got.ID)}
	if ids := c.list(); strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("runs %v, want %v (the same request ids)", ids, want)
	}
	log, _ := st2.TaskLog(context.Background(), got.ID)
	if !strings.Contains(string(log), "run by m1\n") || !strings.Contains(string(log), "manager m1 stopped renewing its lease while this task ran; running it again") ||
		!strings.HasSuffix(string(log), "run by m2\n") {
		t.Fatalf("task log:\n%s", log)
	}
}

// A runner that lost a task's lease stops working on it (its context is
// canceled) and records nothing: not its end, not its later output.
func TestRunnerThatLostItsLeaseStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lose takes the lease away from the runner holding task.
		lose func(t *testing.T, st *store.Store, task store.Task)
		// holder is the task's ExecutorID afterwards ("" : unchanged).
		holder string
	}{
		{"taken over by another manager", func(t *testing.T, st *store.Store, task store.Task) {
			// What a take-over and a claim by m2 leave in the row.
			err := st.DB().Model(&store.Task{}).Where("id = ?", task.ID).
				Updates(map[string]any{"executor_id": "m2", "lease_epoch": task.LeaseEpoch + 1}).Error
			if err != nil {
				t.Fatal(err)
			}
		}, "m2"},
		{"database unreachable", func(t *testing.T, st *store.Store, task store.Task) {
			st.Close()
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.Start(t)
			st := openStore(t, dsn)
			stopped := make(chan error, 1)
			var logged sync.WaitGroup
			logged.Add(1)
			hold := funcAction{idempotent: true, run: func(ctx context.Context, job Job) (Outcome, error) {
				fmt.Fprintf(job.Log, "before\n")
				logged.Done()
				<-ctx.Done()
				stopped <- ctx.Err()
				fmt.Fprintf(job.Log, "after\n")
				return Outcome{Response: "must not be recorded"}, nil
			}}
			ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "H"})
			reg := metrics.NewRegistry()
			h := start(t, st, Config{ManagerID: "m1", Lease: 600 * time.Millisecond, Actions: Actions{"H": hold}, Metrics: reg})
			logged.Wait()
			var task store.Task
			waitUntil(t, "the task's first output stored", func() bool {
				log, _ := st.TaskLog(context.Background(), ts[0].ID)
				task = h.task(ts[0].ID)
				return string(log) == "before\n"
			})
			tc.lose(t, st, task)
			if err := <-stopped; err == nil {
				t.Fatal("the action's context was not canceled")
			}
			h.stop()
			select {
			case id := <-h.ends:
				t.Fatalf("the end of task %d was recorded by the runner that lost it", id)
			default:
			}
			var b strings.Builder
			if err := reg.Write(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			m, err := metricstest.Parse(strings.NewReader(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			if n := m[`dorismanager_task_leases_lost_total{type="H"}`]; n != 1 {
				t.Errorf("leases lost: %v, want 1\n%s", n, b.String())
			}
			if tc.holder == "" {
				return
			}
			got := h.task(ts[0].ID)
			log, _ := st.TaskLog(context.Background(), ts[0].ID)
			if got.Status != store.StatusRunning || got.ExecutorID != tc.holder || got.Response != "" || string(log) != "before\n" {
				t.Fatalf("task after the lost lease: %+v, log %q", got, log)
			}
		})
	}
}

// On PostgreSQL a runner is woken by another manager's notification
// (store.NotifyTasks after a commit that made work), not by polling: its
// safety tick and renewals are hours away here.
func TestNotificationFromAnotherManagerWakes(t *testing.T) {
	dsn := pgtest.Start(t)
	st1, st2 := openStore(t, dsn), openStore(t, dsn)
	started := make(chan struct{})
	block := funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
		close(started)
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}}
	// The blocking task, there before the runner starts, is claimed at
	// its start; while it runs nothing else ends, so the runner claims
	// again only when woken.
	addTasks(t, st1, store.Task{ProcessID: 1, TaskType: "BLOCK"})
	h := start(t, st2, Config{ManagerID: "m2", Parallel: 2, Lease: 3 * time.Hour,
		Actions: Actions{"OK": succeed("ok"), "BLOCK": block}})
	<-started
	waitUntil(t, "the runner listening", func() bool {
		var n int64
		err := st1.DB().Raw(`SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN ' || ?`, store.TasksChannel).Scan(&n).Error
		return err == nil && n == 1
	})
	ts := addTasks(t, st1, store.Task{ProcessID: 2, TaskType: "OK"})
	if err := st1.NotifyTasks(context.Background(), "m1"); err != nil {
		t.Fatal(err)
	}
	h.waitEnds(1)
	if got := h.task(ts[0].ID); got.Status != store.StatusSuccess || got.ExecutorID != "m2" {
		t.Fatalf("task: %+v", got)
	}
}
