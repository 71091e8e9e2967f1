package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// funcAction adapts a function to Action.
type funcAction struct {
	run        func(ctx context.Context, job Job) (Outcome, error)
	idempotent bool
}

func (f funcAction) Run(ctx context.Context, job Job) (Outcome, error) { return f.run(ctx, job) }
func (f funcAction) Idempotent() bool                                  { return f.idempotent }

func succeed(msg string) funcAction {
	return funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
		fmt.Fprintf(job.Log, "running %s\n", job.Task.Host)
		return Outcome{Response: msg, Result: map[string]string{"host": job.Task.Host}, LogPath: "/x/task.log"}, nil
	}}
}

func fail(msg string) funcAction {
	return funcAction{run: func(context.Context, Job) (Outcome, error) { return Outcome{}, errors.New(msg) }}
}

// harness runs a Runner on a store and collects task ends.
type harness struct {
	t      *testing.T
	st     *store.Store
	r      *Runner
	ends   chan int64
	cancel context.CancelFunc
	done   chan struct{}
}

func openStore(t *testing.T, dsn string) *store.Store {
	st, err := store.Open(dsn, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func start(t *testing.T, st *store.Store, cfg Config) *harness {
	h := &harness{t: t, st: st, ends: make(chan int64, 1000), done: make(chan struct{})}
	cfg.Store = st
	cfg.OnTaskEnd = func(id int64, status string) { h.ends <- id }
	if cfg.SafetyTick == 0 {
		cfg.SafetyTick = time.Hour // tests must not depend on the backstop
	}
	h.r = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		if err := h.r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// waitEnds waits for n task ends.
func (h *harness) waitEnds(n int) {
	h.t.Helper()
	timeout := time.After(60 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-h.ends:
		case <-timeout:
			h.t.Fatalf("only %d of %d tasks ended", i, n)
		}
	}
}

func (h *harness) task(id int64) store.Task {
	t, err := h.st.GetTask(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return t
}

func addTasks(t *testing.T, st *store.Store, tasks ...store.Task) []store.Task {
	for i := range tasks {
		if tasks[i].Status == "" {
			tasks[i].Status = store.StatusSubmitted
		}
	}
	if err := st.CreateTasks(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	return tasks
}

func TestOrderBySeqAndRecordsOutcome(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := ""
			if backend == "postgres" {
				dsn = pgtest.Start(t)
			}
			st := openStore(t, dsn)
			var mu sync.Mutex
			var order []string
			rec := funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
				mu.Lock()
				order = append(order, job.Task.Host)
				mu.Unlock()
				return succeed("ok").run(ctx, job)
			}}
			ts := addTasks(t, st,
				store.Task{ProcessID: 1, Step: 3, Seq: 2, Host: "c", TaskType: "T"},
				store.Task{ProcessID: 1, Step: 3, Seq: 1, Host: "b", TaskType: "T"},
				store.Task{ProcessID: 1, Step: 3, Seq: 0, Host: "a", TaskType: "T"},
			)
			h := start(t, st, Config{Actions: Actions{"T": rec}})
			h.waitEnds(3)
			if strings.Join(order, "") != "abc" {
				t.Fatalf("run order %v, want a b c", order)
			}
			got := h.task(ts[0].ID)
			if got.Status != store.StatusSuccess || !got.Finish || got.Response != "ok" || got.ExecutorID != h.r.ExecutorID() ||
				got.Result != `{"host":"c"}` || got.LogPath != "/x/task.log" || got.StartTime == nil || got.EndTime == nil {
				t.Fatalf("recorded task: %+v", got)
			}
			log, _ := st.TaskLog(context.Background(), ts[0].ID)
			if string(log) != "running c\n" {
				t.Fatalf("task log %q", log)
			}
		})
	}
}

func TestFailureBlocksLaterSeq(t *testing.T) {
	st := openStore(t, "")
	ts := addTasks(t, st,
		store.Task{ProcessID: 1, Seq: 0, TaskType: "FAIL"},
		store.Task{ProcessID: 1, Seq: 1, TaskType: "OK"},
		store.Task{ProcessID: 2, Seq: 0, TaskType: "OK"},
	)
	reg := metrics.NewRegistry()
	h := start(t, st, Config{Actions: Actions{"FAIL": fail("disk full on /opt"), "OK": succeed("fine")}, Metrics: reg})
	h.waitEnds(2)
	if got := h.task(ts[0].ID); got.Status != store.StatusFailure || got.Response != "disk full on /opt" || !got.Finish {
		t.Fatalf("failed task: %+v", got)
	}
	if got := h.task(ts[1].ID); got.Status != store.StatusSubmitted {
		t.Fatalf("task after a failed seq ran: %+v", got)
	}
	if got := h.task(ts[2].ID); got.Status != store.StatusSuccess {
		t.Fatalf("other process's task: %+v", got)
	}
	var b strings.Builder
	if err := reg.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	m, err := metricstest.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`dorismanager_tasks_ended_total{type="FAIL",status="FAILURE"}`: 1,
		`dorismanager_tasks_ended_total{type="OK",status="SUCCESS"}`:   1,
		`dorismanager_task_duration_seconds_count{type="FAIL"}`:        1,
		`dorismanager_task_duration_seconds_count{type="OK"}`:          1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v\n%s", series, m[series], want, b.String())
		}
	}
}

func TestParallelismBound(t *testing.T) {
	st := openStore(t, "")
	const bound, n = 3, 10
	var cur, max atomic.Int32
	started := make(chan struct{}, n)
	release := make(chan struct{})
	block := funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
		c := cur.Add(1)
		for {
			m := max.Load()
			if c <= m || max.CompareAndSwap(m, c) {
				break
			}
		}
		started <- struct{}{}
		<-release
		cur.Add(-1)
		return Outcome{}, nil
	}}
	for i := 0; i < n; i++ {
		addTasks(t, st, store.Task{ProcessID: int64(i), TaskType: "B"})
	}
	h := start(t, st, Config{Actions: Actions{"B": block}, Parallel: bound})
	for i := 0; i < n; i++ {
		if i >= bound {
			release <- struct{}{} // one ends, so one more may start
		}
		<-started
	}
	for i := 0; i < bound; i++ {
		release <- struct{}{}
	}
	h.waitEnds(n)
	if max.Load() != bound {
		t.Fatalf("max concurrent tasks %d, want %d", max.Load(), bound)
	}
}

func TestRetryRunsAgain(t *testing.T) {
	st := openStore(t, "")
	var calls atomic.Int32
	flaky := funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
		fmt.Fprintf(job.Log, "attempt %d\n", job.Task.Attempt)
		if calls.Add(1) == 1 {
			return Outcome{}, errors.New("first try fails")
		}
		return Outcome{Response: "second try works"}, nil
	}}
	ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "F"})
	h := start(t, st, Config{Actions: Actions{"F": flaky}})
	h.waitEnds(1)
	if got := h.task(ts[0].ID); got.Status != store.StatusFailure {
		t.Fatalf("first run: %+v", got)
	}
	// What process.Retry does: back to SUBMITTED with Attempt+1, then Notify.
	if _, err := st.UpdateTaskIf(context.Background(), ts[0].ID, []string{store.StatusFailure},
		map[string]any{"status": store.StatusSubmitted, "attempt": 1, "finish": false}); err != nil {
		t.Fatal(err)
	}
	h.r.Notify()
	h.waitEnds(1)
	got := h.task(ts[0].ID)
	if got.Status != store.StatusSuccess || got.Response != "second try works" {
		t.Fatalf("retried task: %+v", got)
	}
	log, _ := st.TaskLog(context.Background(), ts[0].ID)
	if string(log) != "attempt 0\nattempt 1\n" {
		t.Fatalf("log %q", log)
	}
}

func TestNotifyWakesWithoutPolling(t *testing.T) {
	st := openStore(t, "")
	h := start(t, st, Config{Actions: Actions{"OK": succeed("ok")}})
	ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "OK"})
	h.r.Notify()
	h.waitEnds(1)
	if got := h.task(ts[0].ID); got.Status != store.StatusSuccess {
		t.Fatalf("task: %+v", got)
	}
}

func TestUnknownTaskTypeFails(t *testing.T) {
	st := openStore(t, "")
	ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "INSTALL_FE"})
	h := start(t, st, Config{})
	h.waitEnds(1)
	got := h.task(ts[0].ID)
	if got.Status != store.StatusFailure || !strings.Contains(got.Response, "no action is registered for task type INSTALL_FE") {
		t.Fatalf("task: %+v", got)
	}
}

func TestResolveFindsTypesActionsLack(t *testing.T) {
	st := openStore(t, "")
	ts := addTasks(t, st,
		store.Task{ProcessID: 1, TaskType: "INSTALL_EXPORTER"},
		store.Task{ProcessID: 2, TaskType: "OK"},
		store.Task{ProcessID: 3, TaskType: "NOPE"})
	var asked []string
	var mu sync.Mutex
	resolve := func(tt string) (Action, bool) {
		mu.Lock()
		asked = append(asked, tt)
		mu.Unlock()
		if tt == "INSTALL_EXPORTER" {
			return succeed("resolved"), true
		}
		return nil, false
	}
	h := start(t, st, Config{Actions: Actions{"OK": succeed("static")}, Resolve: resolve})
	h.waitEnds(3)
	if got := h.task(ts[0].ID); got.Status != store.StatusSuccess || got.Response != "resolved" {
		t.Fatalf("resolved task: %+v", got)
	}
	if got := h.task(ts[1].ID); got.Response != "static" {
		t.Fatalf("Actions must win: %+v", got)
	}
	if got := h.task(ts[2].ID); got.Status != store.StatusFailure || !strings.Contains(got.Response, "no action is registered for task type NOPE") {
		t.Fatalf("unresolved task: %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tt := range asked {
		if tt == "OK" {
			t.Fatal("Resolve was asked for a type Actions has")
		}
	}
}

func TestTimeout(t *testing.T) {
	st := openStore(t, "")
	hang := funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}}
	ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "H"})
	h := start(t, st, Config{Actions: Actions{"H": hang}, TaskTimeout: 50 * time.Millisecond})
	h.waitEnds(1)
	got := h.task(ts[0].ID)
	if got.Status != store.StatusFailure || !strings.Contains(got.Response, "timed out after 50ms") {
		t.Fatalf("task: %+v", got)
	}
}

func TestPanicFailsTask(t *testing.T) {
	st := openStore(t, "")
	boom := funcAction{run: func(context.Context, Job) (Outcome, error) { panic("bad plugin") }}
	ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "P"})
	h := start(t, st, Config{Actions: Actions{"P": boom}})
	h.waitEnds(1)
	if got := h.task(ts[0].ID); got.Status != store.StatusFailure || !strings.Contains(got.Response, "bad plugin") {
		t.Fatalf("task: %+v", got)
	}
}

// At the start of the only manager of a database (SQLite), every RUNNING
// task was left by an earlier run: each is taken over at once, whatever
// its lease says.
func TestRestartReconciliation(t *testing.T) {
	st := openStore(t, "")
	now := time.Now()
	later := now.Add(time.Hour)
	ts := addTasks(t, st,
		store.Task{ProcessID: 1, TaskType: "IDEM", Status: store.StatusRunning, ExecutorID: "dead", StartTime: &now, LeaseUntil: &later, Attempt: 2},
		store.Task{ProcessID: 2, TaskType: "ONCE", Status: store.StatusRunning, ExecutorID: "dead", StartTime: &now, LeaseUntil: &later},
		store.Task{ProcessID: 3, TaskType: "GONE", Status: store.StatusRunning, ExecutorID: "dead", StartTime: &now},
	)
	idem := succeed("resumed")
	idem.idempotent = true
	h := start(t, st, Config{Actions: Actions{"IDEM": idem, "ONCE": succeed("must not run")}, Alone: true})
	h.waitEnds(1) // only the idempotent one runs again
	if got := h.task(ts[0].ID); got.Status != store.StatusSuccess || got.Response != "resumed" || got.ExecutorID != h.r.ExecutorID() ||
		got.Attempt != 2 {
		t.Fatalf("idempotent task: %+v", got)
	}
	if log, _ := st.TaskLog(context.Background(), ts[0].ID); !strings.Contains(string(log), "the manager restarted while this task ran; running it again") {
		t.Fatalf("resumed task's log: %q", log)
	}
	for _, id := range []int64{ts[1].ID, ts[2].ID} {
		if got := h.task(id); got.Status != store.StatusFailure || got.Response != MsgRestartInterrupted || got.EndTime == nil {
			t.Fatalf("non-idempotent task: %+v", got)
		}
	}
}

// A manager that shares its database takes over only the tasks whose
// lease expired, at start and while it runs; a task another manager
// holds under a live lease is left to it.
func TestStartTakesOverOnlyExpiredLeases(t *testing.T) {
	st := openStore(t, "")
	now := time.Now()
	live, gone := now.Add(time.Hour), now.Add(-time.Second)
	ts := addTasks(t, st,
		store.Task{ProcessID: 1, TaskType: "IDEM", Status: store.StatusRunning, ExecutorID: "alive", StartTime: &now, LeaseUntil: &live},
		store.Task{ProcessID: 2, TaskType: "IDEM", Status: store.StatusRunning, ExecutorID: "dead", StartTime: &now, LeaseUntil: &gone},
		store.Task{ProcessID: 3, TaskType: "ONCE", Status: store.StatusRunning, ExecutorID: "dead", StartTime: &now, LeaseUntil: &gone},
	)
	idem := succeed("resumed")
	idem.idempotent = true
	h := start(t, st, Config{Actions: Actions{"IDEM": idem, "ONCE": succeed("must not run")}})
	h.waitEnds(1)
	if got := h.task(ts[1].ID); got.Status != store.StatusSuccess || got.ExecutorID != h.r.ExecutorID() {
		t.Fatalf("task of the dead manager: %+v", got)
	}
	if log, _ := st.TaskLog(context.Background(), ts[1].ID); !strings.Contains(string(log), "manager dead stopped renewing its lease while this task ran; running it again") {
		t.Fatalf("taken over task's log: %q", log)
	}
	if got := h.task(ts[2].ID); got.Status != store.StatusFailure || got.Response != MsgLeaseExpired {
		t.Fatalf("non-idempotent task of the dead manager: %+v", got)
	}
	if got := h.task(ts[0].ID); got.Status != store.StatusRunning || got.ExecutorID != "alive" || got.LeaseEpoch != ts[0].LeaseEpoch {
		t.Fatalf("task under a live lease was touched: %+v", got)
	}
}

func TestShutdownInterruptsRunningTasks(t *testing.T) {
	st := openStore(t, "")
	started := make(chan struct{}, 2)
	wait := func(idem bool) funcAction {
		return funcAction{idempotent: idem, run: func(ctx context.Context, job Job) (Outcome, error) {
			started <- struct{}{}
			<-ctx.Done()
			return Outcome{}, ctx.Err()
		}}
	}
	ts := addTasks(t, st,
		store.Task{ProcessID: 1, TaskType: "IDEM"},
		store.Task{ProcessID: 2, TaskType: "ONCE"},
	)
	h := start(t, st, Config{Actions: Actions{"IDEM": wait(true), "ONCE": wait(false)}})
	<-started
	<-started
	h.stop()
	if got := h.task(ts[0].ID); got.Status != store.StatusSubmitted || got.ExecutorID != "" {
		t.Fatalf("idempotent task after shutdown: %+v", got)
	}
	if got := h.task(ts[1].ID); got.Status != store.StatusFailure || got.Response != MsgShutdownInterrupted {
		t.Fatalf("non-idempotent task after shutdown: %+v", got)
	}
}

// A URL's password never reaches the stored log, response or result, even
// when the action writes the URL in pieces, or fails with it.
func TestPasswordsRedacted(t *testing.T) {
	st := openStore(t, "")
	const url = "http://alice:s3cret@repo.example/doris.tar.gz"
	talk := funcAction{run: func(ctx context.Context, job Job) (Outcome, error) {
		fmt.Fprintf(job.Log, "downloading http://alice:s3")
		fmt.Fprintf(job.Log, "cret@repo.example/doris.tar.gz\n")
		fmt.Fprintf(job.Log, "no end of line: %s", url)
		if job.Task.Host == "fail" {
			return Outcome{}, fmt.Errorf("download %s: HTTP 404", url)
		}
		return Outcome{Response: "installed from " + url, Result: map[string]string{"packageUrl": url}}, nil
	}}
	ts := addTasks(t, st, store.Task{ProcessID: 1, TaskType: "T", Host: "ok"}, store.Task{ProcessID: 2, TaskType: "T", Host: "fail"})
	h := start(t, st, Config{Actions: Actions{"T": talk}})
	h.waitEnds(2)
	for _, tk := range ts {
		got := h.task(tk.ID)
		log, _ := st.TaskLog(context.Background(), tk.ID)
		all := got.Response + got.Result + string(log)
		if strings.Contains(all, "s3cret") {
			t.Errorf("task on %s keeps the password: response %q, result %q, log %q", tk.Host, got.Response, got.Result, log)
		}
		if want := "downloading http://alice:***@repo.example/doris.tar.gz\nno end of line: http://alice:***@repo.example/doris.tar.gz"; string(log) != want {
			t.Errorf("task on %s: log %q, want %q", tk.Host, log, want)
		}
		if !strings.Contains(got.Response, "http://alice:***@repo.example/doris.tar.gz") {
			t.Errorf("task on %s: response %q, want the redacted URL", tk.Host, got.Response)
		}
	}
}
