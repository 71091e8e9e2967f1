// Package runner executes tasks: it claims runnable tasks from the store
// under a lease it renews while they run, runs their Actions with bounded
// parallelism and a per-task timeout, and records status, result and log
// back in the store. Tasks whose lease expired (their manager stopped) are
// taken over: run again with the same attempt, so the same agent request
// ids, or failed when their action cannot simply run again.
package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/hashicorp/go-hclog"
)

// Defaults of Config.
const (
	DefaultParallel    = 16
	DefaultTaskTimeout = 30 * time.Minute
	// DefaultSafetyTick is a backstop only: work is found through Notify,
	// task ends and, on PostgreSQL, other managers' notifications
	// (store.ListenTasks). The tick covers a notification lost to a
	// database error.
	DefaultSafetyTick = 30 * time.Second
	// DefaultLease is how long a claimed task stays this manager's without
	// a renewal; renewals go every third of it.
	DefaultLease = 30 * time.Second
)

// Messages written into tasks the runner could not finish normally.
const (
	MsgRestartInterrupted  = "interrupted by a manager restart while running; retry it"
	MsgShutdownInterrupted = "interrupted by a manager shutdown while running; retry it"
	MsgLeaseExpired        = "interrupted: the manager running it stopped renewing its lease (it stopped, or lost the database); retry it"
)

// Config wires a Runner.
type Config struct {
	Store   *store.Store
	Actions Actions
	// Resolve, if set, finds the Action of a task type Actions lacks: the
	// task types of roles are made from role names, and a role's plugin
	// may be installed while the manager runs.
	Resolve     func(taskType string) (Action, bool)
	Parallel    int           // tasks run at once; DefaultParallel when <= 0
	TaskTimeout time.Duration // per task; DefaultTaskTimeout when <= 0
	SafetyTick  time.Duration // DefaultSafetyTick when <= 0
	// ManagerID names this manager in the tasks it holds (Task.ExecutorID);
	// unique among the managers of a database. A fresh random id when empty.
	ManagerID string
	// Lease is how long a claimed task stays this manager's without a
	// renewal (DefaultLease when <= 0); RenewEvery is how often running
	// tasks' leases are renewed and expired ones looked for (Lease/3 when
	// <= 0 or not below Lease). A renewal that fails for so long that the
	// lease would run out stops the task.
	Lease      time.Duration
	RenewEvery time.Duration
	// Alone says no other manager uses the database (SQLite, whose data
	// dir this process holds): every task RUNNING at start was left by an
	// earlier run, and is taken over at once instead of when its lease
	// expires.
	Alone  bool
	Logger hclog.Logger
	// OnTaskEnd, if set, is called after a task's end was recorded (with the
	// status written: SUCCESS, FAILURE or SUBMITTED when it will run again).
	OnTaskEnd func(taskID int64, status string)
	// Metrics, if set, receives dorismanager_tasks_ended_total and
	// dorismanager_task_duration_seconds.
	Metrics *metrics.Registry
}

// Runner runs tasks. Create it with New and start it with Run.
type Runner struct {
	st       *store.Store
	actions  Actions
	resolve  func(string) (Action, bool)
	parallel int
	timeout  time.Duration
	tick     time.Duration
	log      hclog.Logger
	onEnd    func(int64, string)
	ended    *metrics.Counter   // by type and recorded status
	duration *metrics.Histogram // by type
	lost     *metrics.Counter   // leases lost, by task type
	id       string
	lease    time.Duration
	renew    time.Duration
	alone    bool
	wake     chan struct{}

	mu      sync.Mutex
	running map[int64]*run // the tasks this runner holds
}

// run is one task this runner holds.
type run struct {
	task   store.Task // as claimed: owner, epoch and attempt fence its writes
	ctx    context.Context
	cancel context.CancelFunc
	// renewed is when the last successful renewal (or the claim) was
	// sent; only the Run loop reads and writes it.
	renewed time.Time
	lost    atomic.Bool // the lease is gone: stop, record nothing
}

// New returns a Runner; its manager id is cfg.ManagerID or a fresh random one.
func New(cfg Config) *Runner {
	id := cfg.ManagerID
	if id == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	r := &Runner{st: cfg.Store, actions: cfg.Actions, resolve: cfg.Resolve, parallel: cfg.Parallel, timeout: cfg.TaskTimeout,
		tick: cfg.SafetyTick, log: cfg.Logger, onEnd: cfg.OnTaskEnd, id: id, lease: cfg.Lease, renew: cfg.RenewEvery,
		alone: cfg.Alone, wake: make(chan struct{}, 1), running: map[int64]*run{}}
	if r.lease <= 0 {
		r.lease = DefaultLease
	}
	if r.renew <= 0 || r.renew >= r.lease {
		r.renew = r.lease / 3
	}
	if r.parallel <= 0 {
		r.parallel = DefaultParallel
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTaskTimeout
	}
	if r.tick <= 0 {
		r.tick = DefaultSafetyTick
	}
	if r.log == nil {
		r.log = hclog.NewNullLogger()
	}
	if r.actions == nil {
		r.actions = Actions{}
	}
	if r.onEnd == nil {
		r.onEnd = func(int64, string) {}
	}
	if cfg.Metrics != nil {
		r.ended = cfg.Metrics.Counter("dorismanager_tasks_ended_total",
			"Task runs that ended, by task type and the status recorded (SUBMITTED: interrupted by a shutdown, to run again).",
			"type", "status")
		r.duration = cfg.Metrics.Histogram("dorismanager_task_duration_seconds",
			"Time from a task's start to its end in this manager, by task type.", metrics.TaskBuckets, "type")
		r.lost = cfg.Metrics.Counter("dorismanager_task_leases_lost_total",
			"Tasks this manager stopped because it lost their lease (not renewed in time, or taken over), by task type.", "type")
	}
	return r
}

// ExecutorID is this runner's manager id, written into the tasks it holds.
func (r *Runner) ExecutorID() string { return r.id }

// broadcast tells the other managers on the database that tasks may have
// become runnable (PostgreSQL; nothing on SQLite).
func (r *Runner) broadcast(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.st.NotifyTasks(ctx, r.id); err != nil {
		r.log.Warn("tell other managers about runnable tasks (they find them by polling)", "error", err)
	}
}

// Notify wakes the runner to look for runnable tasks. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run takes over tasks whose lease expired, then runs tasks until ctx
// ends, renewing the leases of those it runs and taking over expired ones
// every RenewEvery. On shutdown it stops claiming, cancels the running
// tasks, records them as interrupted and returns once they have all ended.
func (r *Runner) Run(ctx context.Context) error {
	r.log.Info("task runner started", "manager", r.id, "parallel", r.parallel, "task_timeout", r.timeout,
		"lease", r.lease, "renew_every", r.renew)
	if err := r.reconcile(ctx, true); err != nil {
		if ctx.Err() != nil { // shut down before it could begin: nothing was taken
			r.log.Info("task runner stopped", "manager", r.id)
			return nil
		}
		return fmt.Errorf("take over tasks whose lease expired: %w", err)
	}
	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	var wg sync.WaitGroup
	ended := make(chan struct{}, r.parallel)
	running := 0
	tick := time.NewTicker(r.tick)
	defer tick.Stop()
	renew := time.NewTicker(r.renew)
	defer renew.Stop()
	// Other managers' notifications wake this runner (PostgreSQL).
	listenCtx, stopListening := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		_ = r.st.ListenTasks(listenCtx, func(from string) {
			if from != r.id {
				r.Notify()
			}
		})
	}()
	defer func() { stopListening(); <-listening }()
	for {
		if free := r.parallel - running; free > 0 && ctx.Err() == nil {
			claimed := time.Now()
			tasks, err := r.st.ClaimTasks(ctx, r.id, r.lease, free)
			if err != nil && ctx.Err() == nil {
				r.log.Error("claim tasks", "error", err)
			}
			for _, t := range tasks {
				running++
				ru := r.hold(taskCtx, t, claimed)
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.runTask(ctx, taskCtx, ru)
					ended <- struct{}{}
				}()
			}
		}
		select {
		case <-ctx.Done():
			cancelTasks()
			wg.Wait()
			r.log.Info("task runner stopped", "manager", r.id)
			return nil
		case <-ended:
			running--
		case <-r.wake:
		case <-tick.C:
		case <-renew.C:
			r.renewLeases(ctx)
			if err := r.reconcile(ctx, false); err != nil && ctx.Err() == nil {
				r.log.Error("take over tasks whose lease expired", "error", err)
			}
		}
	}
}

// hold records a claimed task as this runner's.
func (r *Runner) hold(taskCtx context.Context, t store.Task, claimed time.Time) *run {
	ctx, cancel := context.WithCancel(taskCtx)
	ru := &run{task: t, ctx: ctx, cancel: cancel, renewed: claimed}
	r.mu.Lock()
	r.running[t.ID] = ru
	r.mu.Unlock()
	return ru
}

// release forgets a task whose run ended; it reports whether the run may
// record its end (it still held the lease).
func (r *Runner) release(ru *run) bool {
	r.mu.Lock()
	delete(r.running, ru.task.ID)
	r.mu.Unlock()
	ru.cancel()
	return !ru.lost.Load()
}

func (r *Runner) holds(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[id]
	return ok
}

// renewLeases renews the lease of every task this runner holds. A task
// whose claim is gone (another manager took it over, or it was removed) is
// stopped; so is one whose renewals failed until its lease would run out
// before the next try, which is before another manager may take it over.
func (r *Runner) renewLeases(ctx context.Context) {
	r.mu.Lock()
	runs := make([]*run, 0, len(r.running))
	for _, ru := range r.running {
		runs = append(runs, ru)
	}
	r.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, r.renew)
	defer cancel()
	for _, ru := range runs {
		sent := time.Now()
		ok, err := r.st.RenewLease(rctx, ru.task, r.lease)
		switch {
		case ctx.Err() != nil:
			return // shutting down: the tasks record their own ends
		case err == nil && ok:
			ru.renewed = sent
		case err == nil:
			r.lose(ctx, ru, "its claim is gone: another manager took the task over after the lease expired, or it was removed")
		case time.Since(ru.renewed)+r.renew >= r.lease:
			r.lose(ctx, ru, fmt.Sprintf("the lease could not be renewed for %s and would expire before the next try: %v",
				time.Since(ru.renewed).Round(time.Millisecond), err))
		default:
			r.log.Warn("renew a task's lease; trying again", "task", ru.task.ID, "error", err)
		}
	}
}

// lose stops a task whose lease this runner no longer holds; its end is
// not recorded here (the new holder records it).
func (r *Runner) lose(ctx context.Context, ru *run, why string) {
	if !r.holds(ru.task.ID) || ru.lost.Swap(true) {
		return // ended meanwhile, or already stopped
	}
	ru.cancel()
	r.lost.Inc(ru.task.TaskType)
	holder := "unknown"
	if cur, err := r.st.GetTask(ctx, ru.task.ID); err == nil {
		holder = cur.ExecutorID
	}
	r.log.Warn("lost the lease on a task: stopping it, its end is not recorded here", "task", ru.task.ID, "type", ru.task.TaskType,
		"host", ru.task.Host, "reason", why, "holder_now", holder)
}

// action finds the Action of a task type.
func (r *Runner) action(taskType string) (Action, bool) {
	if a, ok := r.actions[taskType]; ok {
		return a, true
	}
	if r.resolve != nil {
		return r.resolve(taskType)
	}
	return nil, false
}

// reconcile takes over the tasks whose lease expired, other than those
// this runner holds: an idempotent action goes back to SUBMITTED with the
// same attempt (so its calls to agents carry the same request ids, and an
// agent answers from its record instead of running them twice); anything
// else fails saying so. Each change is conditional on the lease still
// being expired, so of several managers one takes a task over. At start an
// Alone runner first expires every lease: their holders are gone.
func (r *Runner) reconcile(ctx context.Context, atStart bool) error {
	restart := atStart && r.alone
	if restart {
		if _, err := r.st.ExpireLeases(ctx); err != nil {
			return err
		}
	}
	tasks, err := r.st.ExpiredTasks(ctx)
	if err != nil {
		return err
	}
	resubmitted := 0
	for _, t := range tasks {
		if r.holds(t.ID) {
			continue // renewLeases decides about its own tasks
		}
		note, msg := fmt.Sprintf("\n--- manager %s stopped renewing its lease while this task ran; running it again ---\n", t.ExecutorID), MsgLeaseExpired
		if restart {
			note, msg = "\n--- the manager restarted while this task ran; running it again ---\n", MsgRestartInterrupted
		}
		a, ok := r.action(t.TaskType)
		if ok && a.Idempotent() {
			changed, err := r.st.UpdateExpired(ctx, t, map[string]any{
				"status": store.StatusSubmitted, "executor_id": "", "lease_until": nil, "start_time": nil, "end_time": nil})
			if err != nil {
				return err
			}
			if changed {
				resubmitted++
				r.appendLog(ctx, t.ID, note)
				r.log.Info("took over a task whose lease expired; it runs again with the same attempt", "task", t.ID, "type", t.TaskType,
					"attempt", t.Attempt, "former_manager", t.ExecutorID)
			}
			continue
		}
		changed, err := r.st.UpdateExpired(ctx, t, map[string]any{
			"status": store.StatusFailure, "finish": true, "end_time": time.Now().UTC(), "response": msg, "lease_until": nil})
		if err != nil {
			return err
		}
		if changed {
			r.log.Warn("task failed: its manager stopped while it ran, and it cannot simply run again", "task", t.ID, "type", t.TaskType,
				"former_manager", t.ExecutorID)
		}
	}
	if resubmitted > 0 {
		r.Notify()
		r.broadcast(ctx)
	}
	return nil
}

// runTask runs one claimed task and records its end, unless it lost the
// task's lease meanwhile.
func (r *Runner) runTask(runCtx, tasksCtx context.Context, ru *run) {
	t := ru.task
	log := r.log.With("task", t.ID, "type", t.TaskType, "host", t.Host, "attempt", t.Attempt)
	// Store writes must happen even while shutting down.
	wctx := context.WithoutCancel(ru.ctx)
	a, ok := r.action(t.TaskType)
	if !ok {
		if r.release(ru) {
			r.end(wctx, log, t, store.StatusFailure, fmt.Sprintf("no action is registered for task type %s in this manager (is the component that runs it installed?)", t.TaskType), "", "")
		}
		return
	}
	ctx, cancel := context.WithTimeout(ru.ctx, r.timeout)
	defer cancel()
	tl := &taskLog{st: r.st, ctx: wctx, id: t.ID, log: log, lost: &ru.lost}
	log.Debug("task started")
	start := time.Now()
	out, err := safeRun(ctx, a, Job{Task: t, Log: tl})
	r.duration.Observe(time.Since(start).Seconds(), t.TaskType)
	tl.Close()
	if !r.release(ru) {
		log.Warn("task run stopped: this manager lost its lease, the task's end is the new holder's to record")
		return
	}
	switch {
	case err == nil:
		var result string
		if out.Result != nil {
			b, _ := json.Marshal(out.Result)
			result = string(b)
		}
		resp := out.Response
		if resp == "" {
			resp = t.TaskType + " succeeded"
		}
		r.end(wctx, log, t, store.StatusSuccess, resp, result, out.LogPath)
	case tasksCtx.Err() != nil && runCtx.Err() != nil:
		if a.Idempotent() {
			r.appendLog(wctx, t.ID, "\n--- the manager shut down while this task ran; it will run again ---\n")
			r.end(wctx, log, t, store.StatusSubmitted, "", "", "")
		} else {
			r.end(wctx, log, t, store.StatusFailure, MsgShutdownInterrupted, "", out.LogPath)
		}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.end(wctx, log, t, store.StatusFailure, fmt.Sprintf("timed out after %s (the manager's --task-timeout): %v", r.timeout, err), "", out.LogPath)
	default:
		r.end(wctx, log, t, store.StatusFailure, err.Error(), "", out.LogPath)
	}
}

func safeRun(ctx context.Context, a Action, job Job) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the action panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return a.Run(ctx, job)
}

// end records a task's end. A package URL's password never reaches the
// response or result, whatever the action put there.
func (r *Runner) end(ctx context.Context, log hclog.Logger, t store.Task, status, response, result, logPath string) {
	response, result = redact.String(response), redact.String(result)
	ok, err := r.st.EndTask(ctx, t, status, response, result, logPath)
	switch {
	case err != nil:
		// The task stays RUNNING until its lease expires; then a manager
		// takes it over.
		log.Error("record task end", "status", status, "error", err)
		return
	case !ok:
		log.Warn("task changed while it ran (removed by back, or taken over by another manager); its end is not recorded", "status", status)
		return
	}
	if status == store.StatusFailure {
		log.Warn("task failed", "response", response)
		if err := r.st.MarkBlocked(ctx, t); err != nil {
			log.Warn("note blocked tasks", "error", err)
		}
	} else {
		log.Info("task ended", "status", status)
	}
	r.ended.Inc(t.TaskType, status)
	if status != store.StatusFailure {
		r.broadcast(ctx) // a task after it in its step, or itself, may run now
	}
	r.onEnd(t.ID, status)
}

func (r *Runner) appendLog(ctx context.Context, id int64, s string) {
	if err := r.st.AppendTaskLog(ctx, id, []byte(s)); err != nil {
		r.log.Warn("append task log", "task", id, "error", err)
	}
}

// taskLog buffers a task's output and appends it to the store in chunks,
// so a chatty action does not rewrite the stored log for every line. It
// stores whole lines with URL passwords hidden (internal/redact); an
// unfinished line waits for its end, or for one more flush delay.
type taskLog struct {
	st    *store.Store
	ctx   context.Context
	id    int64
	log   hclog.Logger
	lost  *atomic.Bool // once set, output goes nowhere: the task is another manager's
	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
}

const (
	logFlushSize  = 64 << 10
	logFlushDelay = 500 * time.Millisecond
)

func (l *taskLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > store.MaxTaskLog {
		// Only the newest part is kept; it starts at a line, so no URL
		// is cut in front of its password.
		l.buf = l.buf[len(l.buf)-store.MaxTaskLog:]
		if i := bytes.IndexByte(l.buf, '\n'); i >= 0 {
			l.buf = l.buf[i+1:]
		}
	}
	if len(l.buf) >= logFlushSize {
		l.flushLocked(false)
	} else if l.timer == nil {
		l.timer = time.AfterFunc(logFlushDelay, func() { l.flush(false) })
	}
	return len(p), nil
}

func (l *taskLog) flush(whole bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(whole)
}

// flushLocked stores the buffered lines; an unfinished last line stays
// (unless whole, or it is long) and is stored by the next timer at the latest.
func (l *taskLog) flushLocked(whole bool) {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	n := len(l.buf)
	if i := bytes.LastIndexByte(l.buf, '\n'); !whole && n < logFlushSize {
		n = i + 1
	}
	data := l.buf[:n]
	l.buf = append([]byte(nil), l.buf[n:]...)
	if len(l.buf) > 0 {
		l.timer = time.AfterFunc(logFlushDelay, func() { l.flush(true) })
	}
	if len(data) == 0 || l.lost != nil && l.lost.Load() {
		return
	}
	if err := l.st.AppendTaskLog(l.ctx, l.id, redact.Bytes(data)); err != nil {
		l.log.Warn("append task log", "error", err)
	}
}

// Close writes what is buffered.
func (l *taskLog) Close() { l.flush(true) }
