// Package runner executes tasks: it claims runnable tasks from the store,
// runs their Actions with bounded parallelism and a per-task timeout, and
// records status, result and log back in the store.
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
	// DefaultSafetyTick is a backstop only: work is found through Notify and
	// task ends. The tick covers tasks submitted by another manager sharing
	// the database, or a Notify lost to a database error.
	DefaultSafetyTick = 30 * time.Second
)

// Messages written into tasks the runner could not finish normally.
const (
	MsgRestartInterrupted  = "interrupted by a manager restart while running; retry it"
	MsgShutdownInterrupted = "interrupted by a manager shutdown while running; retry it"
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
	Logger      hclog.Logger
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
	id       string
	wake     chan struct{}
}

// New returns a Runner with a fresh random executor id.
func New(cfg Config) *Runner {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	r := &Runner{st: cfg.Store, actions: cfg.Actions, resolve: cfg.Resolve, parallel: cfg.Parallel, timeout: cfg.TaskTimeout,
		tick: cfg.SafetyTick, log: cfg.Logger, onEnd: cfg.OnTaskEnd, id: hex.EncodeToString(b),
		wake: make(chan struct{}, 1)}
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
	}
	return r
}

// ExecutorID is this runner's id, written into the tasks it claims.
func (r *Runner) ExecutorID() string { return r.id }

// Notify wakes the runner to look for runnable tasks. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run reconciles tasks left RUNNING by an earlier run, then runs tasks until
// ctx ends. On shutdown it stops claiming, cancels the running tasks, records
// them as interrupted and returns once they have all ended.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile running tasks: %w", err)
	}
	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	var wg sync.WaitGroup
	ended := make(chan struct{}, r.parallel)
	running := 0
	tick := time.NewTicker(r.tick)
	defer tick.Stop()
	r.log.Info("task runner started", "executor", r.id, "parallel", r.parallel, "task_timeout", r.timeout)
	for {
		if free := r.parallel - running; free > 0 && ctx.Err() == nil {
			tasks, err := r.st.ClaimTasks(ctx, r.id, free)
			if err != nil && ctx.Err() == nil {
				r.log.Error("claim tasks", "error", err)
			}
			for _, t := range tasks {
				running++
				wg.Add(1)
				go func(t store.Task) {
					defer wg.Done()
					r.runTask(ctx, taskCtx, t)
					ended <- struct{}{}
				}(t)
			}
		}
		select {
		case <-ctx.Done():
			cancelTasks()
			wg.Wait()
			r.log.Info("task runner stopped", "executor", r.id)
			return nil
		case <-ended:
			running--
		case <-r.wake:
		case <-tick.C:
		}
	}
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

// reconcile settles tasks that were RUNNING when a manager stopped: an
// idempotent action runs again, anything else fails with a message saying
// so. It assumes one manager per database; several managers sharing one
// would need executor liveness to tell a dead claim from a live one.
func (r *Runner) reconcile(ctx context.Context) error {
	tasks, err := r.st.TasksWithStatus(ctx, store.StatusRunning)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		a, ok := r.action(t.TaskType)
		if ok && a.Idempotent() {
			changed, err := r.st.UpdateTaskIf(ctx, t.ID, []string{store.StatusRunning}, map[string]any{
				"status": store.StatusSubmitted, "executor_id": "", "start_time": nil, "end_time": nil})
			if err != nil {
				return err
			}
			if changed {
				r.appendLog(ctx, t.ID, "\n--- the manager restarted while this task ran; running it again ---\n")
				r.log.Info("task resubmitted after restart", "task", t.ID, "type", t.TaskType)
			}
			continue
		}
		changed, err := r.st.UpdateTaskIf(ctx, t.ID, []string{store.StatusRunning}, map[string]any{
			"status": store.StatusFailure, "finish": true, "end_time": time.Now().UTC(), "response": MsgRestartInterrupted})
		if err != nil {
			return err
		}
		if changed {
			r.log.Warn("task failed: interrupted by restart", "task", t.ID, "type", t.TaskType)
		}
	}
	return nil
}

// runTask runs one claimed task and records its end.
func (r *Runner) runTask(runCtx, taskCtx context.Context, t store.Task) {
	log := r.log.With("task", t.ID, "type", t.TaskType, "host", t.Host, "attempt", t.Attempt)
	// Store writes must happen even while shutting down.
	wctx := context.WithoutCancel(taskCtx)
	a, ok := r.action(t.TaskType)
	if !ok {
		r.end(wctx, log, t, store.StatusFailure, fmt.Sprintf("no action is registered for task type %s in this manager (is the component that runs it installed?)", t.TaskType), "", "")
		return
	}
	ctx, cancel := context.WithTimeout(taskCtx, r.timeout)
	defer cancel()
	tl := &taskLog{st: r.st, ctx: wctx, id: t.ID, log: log}
	log.Debug("task started")
	start := time.Now()
	out, err := safeRun(ctx, a, Job{Task: t, Log: tl})
	r.duration.Observe(time.Since(start).Seconds(), t.TaskType)
	tl.Close()
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
	case taskCtx.Err() != nil && runCtx.Err() != nil:
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
		// The task stays RUNNING; the next start's reconciliation settles it.
		log.Error("record task end", "status", status, "error", err)
		return
	case !ok:
		log.Warn("task changed while it ran (for example removed by back); its end is not recorded", "status", status)
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
	if len(data) == 0 {
		return
	}
	if err := l.st.AppendTaskLog(l.ctx, l.id, redact.Bytes(data)); err != nil {
		l.log.Warn("append task log", "error", err)
	}
}

// Close writes what is buffered.
func (l *taskLog) Close() { l.flush(true) }
