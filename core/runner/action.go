package runner

import (
	"context"
	"io"

	"github.com/dorismanager/dorismanager/core/store"
)

// Action performs one kind of task (keyed by Task.TaskType). Real actions
// install agents over SSH or call role plugins; tests use in-process ones.
type Action interface {
	// Run performs the task. A returned error fails the task with its text
	// as the response; ctx carries the task's deadline.
	Run(ctx context.Context, job Job) (Outcome, error)
	// Idempotent reports whether a task interrupted by a manager restart may
	// simply run again; if not, it is failed with a message saying so.
	Idempotent() bool
}

// Job is what an Action gets for one run of one task.
type Job struct {
	Task store.Task // a snapshot; the runner owns persistence
	// Log appends to the task's log (the store keeps its last 1 MiB).
	Log io.Writer
}

// Outcome is a successful run's result.
type Outcome struct {
	Response string            // human-readable, for currentTasks
	Result   map[string]string // facts, stored as JSON in Task.Result
	LogPath  string            // the task's log file on the host, if any
}

// Actions maps a TaskType to its Action.
type Actions map[string]Action
