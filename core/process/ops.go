package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/dorismanager/dorismanager/core/store"
)

// Current returns the user's unfinished process, or nil if there is none.
func (e *Engine) Current(ctx context.Context, userID int64) (*View, error) {
	p, err := e.st.OpenProcessOfUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load current process: %w", err)
	}
	return e.view(ctx, p)
}

// Process returns one process by id.
func (e *Engine) Process(ctx context.Context, processID int64) (*View, error) {
	p, err := e.st.GetProcess(ctx, processID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("process %d does not exist", processID)
	}
	if err != nil {
		return nil, err
	}
	return e.view(ctx, p)
}

func (e *Engine) view(ctx context.Context, p store.Process) (*View, error) {
	tasks, err := e.st.TasksOfStep(ctx, p.ID, p.Step)
	if err != nil {
		return nil, err
	}
	v := &View{Process: p, ProcessStep: p.Step}
	if stepDone(p.Step, tasks) {
		v.ProcessStep++
	}
	return v, nil
}

// CurrentTasks lists every task of the process's current step in run
// order, skipped ones included (Task.Skip), so a client sees what was
// given up and can unskip it.
func (e *Engine) CurrentTasks(ctx context.Context, processID int64) ([]store.Task, error) {
	p, err := e.st.GetProcess(ctx, processID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("process %d does not exist", processID)
	}
	if err != nil {
		return nil, err
	}
	return e.st.TasksOfStep(ctx, p.ID, p.Step)
}

// Processes lists every process of a cluster, wizard runs and day-2
// operations, the newest first.
func (e *Engine) Processes(ctx context.Context, clusterID int64) ([]View, error) {
	ps, err := e.st.ProcessesOfCluster(ctx, clusterID)
	if err != nil {
		return nil, fmt.Errorf("processes of cluster %d: %w", clusterID, err)
	}
	ids := make([]int64, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	progress, err := e.st.StepProgress(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("progress of the processes of cluster %d: %w", clusterID, err)
	}
	out := make([]View, len(ps))
	for i, p := range ps {
		out[i] = View{Process: p, ProcessStep: p.Step}
		pr := progress[store.StepKey{ProcessID: p.ID, Step: p.Step}]
		if (pr.Total > 0 || p.Step == StepBuildCluster) && pr.Done == pr.Total {
			out[i].ProcessStep++
		}
	}
	return out, nil
}

// SkippedInstalls names the roles of a cluster whose install was given
// up: the newest INSTALL_<ROLE> task of the host is skipped. Such a role
// is recorded (installService records it before it runs) but not there.
func (e *Engine) SkippedInstalls(ctx context.Context, clusterID int64) (map[store.RoleKey]bool, error) {
	latest, err := e.st.SkippedLatest(ctx, clusterID, StepInstallService)
	if err != nil {
		return nil, err
	}
	for k, skipped := range latest {
		if !skipped {
			delete(latest, k)
		}
	}
	return latest, nil
}

// Task returns one task.
func (e *Engine) Task(ctx context.Context, taskID int64) (store.Task, error) {
	t, err := e.st.GetTask(ctx, taskID)
	if errors.Is(err, store.ErrNotFound) {
		return t, notFound("task %d does not exist", taskID)
	}
	return t, err
}

// TaskLog returns a task's log path on its host and the kept log.
func (e *Engine) TaskLog(ctx context.Context, taskID int64) (string, []byte, error) {
	t, err := e.Task(ctx, taskID)
	if err != nil {
		return "", nil, err
	}
	log, err := e.st.TaskLog(ctx, taskID)
	if err != nil {
		return "", nil, fmt.Errorf("read log of task %d: %w", taskID, err)
	}
	return t.LogPath, log, nil
}

// ownedTask loads a task of the current step of the user's unfinished
// process that is FAILURE and not skipped (retry, skip).
func (e *Engine) ownedTask(ctx context.Context, userID, taskID int64, verb string) (store.Process, store.Task, error) {
	p, t, err := e.taskAtStep(ctx, userID, taskID, verb)
	if err != nil {
		return p, t, err
	}
	if t.Skip {
		return p, t, conflict("task %d was skipped: unskip it first (POST /api/process/task/unskip/%d)", t.ID, t.ID)
	}
	if t.Status != store.StatusFailure {
		return p, t, conflict("only a FAILURE task can be %s; task %d is %s", verb, t.ID, t.Status)
	}
	return p, t, nil
}

// taskAtStep loads a task of the current step of the user's unfinished
// process.
func (e *Engine) taskAtStep(ctx context.Context, userID, taskID int64, verb string) (store.Process, store.Task, error) {
	t, err := e.Task(ctx, taskID)
	if err != nil {
		return store.Process{}, t, err
	}
	p, err := e.loadOwned(ctx, userID, t.ProcessID)
	if err != nil {
		return p, t, err
	}
	if t.Step != p.Step {
		return p, t, conflict("task %d belongs to %s but process %d is at %s: it can no longer be %s (the later steps were made without it)",
			t.ID, StepTypes[t.Step], p.ID, p.ProcessType, verb)
	}
	return p, t, nil
}

// Retry runs a FAILURE task again with the same inputs (Attempt+1).
func (e *Engine) Retry(ctx context.Context, userID, taskID int64) error {
	p, t, err := e.ownedTask(ctx, userID, taskID, "retried")
	if err != nil {
		return err
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		if err := bump(ctx, tx, p); err != nil {
			return err
		}
		ok, err := tx.UpdateTaskIf(ctx, t.ID, []string{store.StatusFailure}, resubmit(t, t.Input))
		if err != nil {
			return err
		}
		if !ok {
			return conflict("task %d changed meanwhile: reload it", t.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.st.AppendTaskLog(ctx, t.ID, []byte(fmt.Sprintf("\n--- retry: attempt %d ---\n", t.Attempt+1))); err != nil {
		e.log.Warn("mark retry in task log", "task", t.ID, "error", err)
	}
	e.notify()
	return nil
}

// Skip marks a FAILURE task as done without success; later steps leave out
// what depends on it.
func (e *Engine) Skip(ctx context.Context, userID, taskID int64) error {
	p, t, err := e.ownedTask(ctx, userID, taskID, "skipped")
	if err != nil {
		return err
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		if err := bump(ctx, tx, p); err != nil {
			return err
		}
		ok, err := tx.UpdateTaskIf(ctx, t.ID, []string{store.StatusFailure}, map[string]any{"skip": true})
		if err != nil {
			return err
		}
		if !ok {
			return conflict("task %d changed meanwhile: reload it", t.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.notify() // tasks ordered after it may run now
	return nil
}

// Unskip takes back the skip of a task while its process is still at the
// task's step: the task runs again (Attempt+1), as a retry would, since
// skipping gave up on the work it had not done.
func (e *Engine) Unskip(ctx context.Context, userID, taskID int64) error {
	p, t, err := e.taskAtStep(ctx, userID, taskID, "unskipped")
	if err != nil {
		return err
	}
	if !t.Skip {
		return conflict("task %d is not skipped (it is %s)", t.ID, t.Status)
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		if err := bump(ctx, tx, p); err != nil {
			return err
		}
		up := resubmit(t, t.Input)
		up["skip"] = false
		ok, err := tx.UpdateTaskIf(ctx, t.ID, []string{t.Status}, up)
		if err != nil {
			return err
		}
		if !ok {
			return conflict("task %d changed meanwhile: reload it", t.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.st.AppendTaskLog(ctx, t.ID, []byte(fmt.Sprintf("\n--- unskipped: attempt %d ---\n", t.Attempt+1))); err != nil {
		e.log.Warn("mark unskip in task log", "task", t.ID, "error", err)
	}
	e.notify()
	return nil
}

// bump increments the process version so a concurrent step change notices.
func bump(ctx context.Context, tx *store.Store, p store.Process) error {
	ok, err := tx.UpdateProcessIf(ctx, p.ID, p.Version, nil)
	if err != nil {
		return err
	}
	if !ok {
		return changedMeanwhile(ctx, tx, p.ID, "")
	}
	return nil
}

// Back returns a process one step:
//
//   - from START_SERVICE to DEPLOY_CONFIG: what START_SERVICE started is
//     stopped (through the Stopper) and its tasks are removed;
//   - from BUILD_CLUSTER to START_SERVICE: its tasks are removed and
//     nothing else changes: the nodes keep running, and those its ADD_
//     tasks registered stay members of the cluster. Sending buildCluster
//     again is safe (Register adds only the nodes the cluster does not
//     list, SECURE_CLUSTER keeps a password that works); a second back
//     stops the nodes for a config fix, and the role plugins refuse a
//     redeployed conf that changes what the cluster knows a member by
//     (its membership port), which would leave a dead entry behind and
//     register the node twice.
//
// Back is refused while a task of the step runs; tasks still waiting are
// canceled.
func (e *Engine) Back(ctx context.Context, userID, processID int64) error {
	p, err := e.loadOwned(ctx, userID, processID)
	if err != nil {
		return err
	}
	if p.Step != StepStartService && p.Step != StepBuildCluster {
		return conflict("process %d is at %s: back is only possible from START_SERVICE (to DEPLOY_CONFIG) or from BUILD_CLUSTER (to START_SERVICE)",
			p.ID, p.ProcessType)
	}
	if err := e.guard(ctx, p.ClusterID); err != nil {
		return err
	}
	to := p.Step - 1
	if p.Step == StepBuildCluster {
		// Nothing to stop: one transaction leaves no moment in which a
		// retried task could start and then lose its row.
		err := e.st.Tx(ctx, func(tx *store.Store) error {
			if _, err := cancelForBack(ctx, tx, p); err != nil {
				return err
			}
			return stepBack(ctx, tx, p, p.Version+1)
		})
		if err != nil {
			return err
		}
		e.log.Info("process went back", "process", p.ID, "to", StepTypes[to])
		return nil
	}
	var tasks []store.Task
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		tasks, err = cancelForBack(ctx, tx, p)
		return err
	})
	if err != nil {
		return err
	}
	if len(tasks) > 0 {
		if e.stopper == nil {
			return fmt.Errorf("cannot go back: no stopper is configured to stop the services START_SERVICE started")
		}
		if err := e.stopper.StopStarted(ctx, tasks); err != nil {
			return fmt.Errorf("stop what START_SERVICE started (the process stays at START_SERVICE; call back again to retry): %w", err)
		}
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		cur, err := tx.GetProcess(ctx, p.ID)
		if err != nil {
			return err
		}
		if cur.Step != p.Step || cur.Finish {
			return conflict("process %d changed while its services were being stopped: reload it", p.ID)
		}
		return stepBack(ctx, tx, p, cur.Version)
	})
	if err != nil {
		return err
	}
	e.log.Info("process went back", "process", p.ID, "to", StepTypes[to])
	return nil
}

// cancelForBack bumps p's version, refuses while a task of its step runs
// and cancels the tasks still waiting; it returns the step's other tasks
// that were not skipped.
func cancelForBack(ctx context.Context, tx *store.Store, p store.Process) ([]store.Task, error) {
	if err := bump(ctx, tx, p); err != nil {
		return nil, err
	}
	all, err := tx.TasksOfStep(ctx, p.ID, p.Step)
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Status == store.StatusRunning {
			return nil, conflict("task %d %s on %s is still running: wait for it to end, then go back", t.ID, t.TaskType, t.Host)
		}
	}
	var rest []store.Task
	for _, t := range all {
		if t.Status == store.StatusSubmitted {
			ok, err := tx.UpdateTaskIf(ctx, t.ID, []string{store.StatusSubmitted}, map[string]any{
				"status": store.StatusFailure, "finish": true, "response": "canceled: the process went back to " + StepTypes[p.Step-1]})
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, conflict("task %d started meanwhile: wait for it to end, then go back", t.ID)
			}
			continue
		}
		if !t.Skip {
			rest = append(rest, t)
		}
	}
	return rest, nil
}

// stepBack moves p (at version) one step back and removes the tasks of
// the step it leaves.
func stepBack(ctx context.Context, tx *store.Store, p store.Process, version int64) error {
	to := p.Step - 1
	ok, err := tx.UpdateProcessIf(ctx, p.ID, version, map[string]any{"step": to, "process_type": StepTypes[to]})
	if err != nil {
		return err
	}
	if !ok {
		return changedMeanwhile(ctx, tx, p.ID, "")
	}
	return tx.DeleteTasksOfStep(ctx, p.ID, p.Step)
}

// Complete finishes a process: finish=YES, status SUCCESS, SSH credentials
// wiped; afterwards it is read-only. Tasks that never started are canceled.
func (e *Engine) Complete(ctx context.Context, userID, processID int64) error {
	p, err := e.loadOwned(ctx, userID, processID)
	if err != nil {
		return err
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		all, err := tx.TasksOfStep(ctx, p.ID, p.Step)
		if err != nil {
			return err
		}
		for _, t := range all {
			if t.Status == store.StatusRunning {
				return conflict("task %d %s on %s is still running: wait for it to end before completing", t.ID, t.TaskType, t.Host)
			}
		}
		status := StatusSuccess
		if p.Step != StepBuildCluster || !stepDone(p.Step, all) {
			status = StatusCanceled
		}
		for _, t := range all {
			if t.Status == store.StatusSubmitted {
				if _, err := tx.UpdateTaskIf(ctx, t.ID, []string{store.StatusSubmitted}, map[string]any{
					"status": store.StatusFailure, "finish": true, "response": "canceled: the process was completed before this task ran"}); err != nil {
					return err
				}
			}
		}
		ok, err := tx.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{
			"finish": true, "status": status, "credentials": nil})
		if err != nil {
			return err
		}
		if !ok {
			return changedMeanwhile(ctx, tx, p.ID, "")
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.forgetCredentials(ctx, p.ID)
	return nil
}

// forgetCredentials makes sure SSH credentials just wiped or replaced
// leave no copy in the database files. The change itself is committed, so
// a failure here is only logged.
func (e *Engine) forgetCredentials(ctx context.Context, processID int64) {
	if err := e.st.ForgetDeleted(ctx); err != nil {
		e.log.Warn("old SSH credentials may remain in the database files", "process", processID, "error", err)
	}
}
