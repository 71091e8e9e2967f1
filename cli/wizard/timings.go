package wizard

import (
	"time"

	"github.com/dorismanager/dorismanager/cli/rest"
)

// Timing is one step of a walk as its tasks' start and end times (the
// manager's clock) tell it.
type Timing struct {
	Step  string
	Tasks int
	// TaskTime runs from the step's first task start to its last task end.
	TaskTime time.Duration
	// Gap runs from the previous step's last task end to this step's
	// first task start: the manager's and this command's share of the
	// wall time between two steps (0 for the first step seen).
	Gap time.Duration
	// Wall is the step's time as this command saw it.
	Wall       time.Duration
	First, End time.Time
}

// Timings of the steps this walk saw, in order.
func (r *Result) Timings() []Timing {
	var out []Timing
	var prevEnd time.Time
	for _, s := range Steps {
		tasks, ok := r.Steps[s]
		if !ok {
			prevEnd = time.Time{}
			continue
		}
		first, end := span(tasks)
		t := Timing{Step: s, Tasks: len(tasks), Wall: r.StepWall[s], First: first, End: end}
		if !first.IsZero() && !end.IsZero() {
			t.TaskTime = end.Sub(first)
		}
		if !prevEnd.IsZero() && !first.IsZero() {
			t.Gap = first.Sub(prevEnd)
		}
		if !end.IsZero() {
			prevEnd = end
		}
		out = append(out, t)
	}
	return out
}

func span(tasks []rest.Task) (first, end time.Time) {
	for _, t := range tasks {
		if t.Skipped() {
			continue
		}
		if !t.StartTime.IsZero() && (first.IsZero() || t.StartTime.Before(first)) {
			first = t.StartTime.Time
		}
		if !t.EndTime.IsZero() && t.EndTime.After(end) {
			end = t.EndTime.Time
		}
	}
	return first, end
}
