// Package progress shows the tasks of a process as they run. On a terminal
// it keeps one line per task (spinner, type, host, state, time) redrawn in
// place; elsewhere (a pipe, a CI log) it writes one plain line per state
// change, stable enough to compare with a golden file.
package progress

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/cli/rest"
)

// Printer receives what a command is doing.
type Printer interface {
	// Step starts a new block of tasks under a title.
	Step(title string)
	// Update is one poll's view of the block's tasks.
	Update(tasks []rest.Task)
	// Line prints free text (a failure's log tail, a hint) above the block.
	Line(text string)
	// StepDone closes the block with a closing line.
	StepDone(text string)
	// Release leaves the block on screen as drawn, so that a question
	// can be asked below it; the next Update draws the block anew.
	Release()
}

// state is what a printer remembers of a task.
type state struct {
	task    rest.Task
	shown   string    // status last printed
	running time.Time // when it was first seen RUNNING
	ended   time.Time // when it was first seen ended
}

func status(t rest.Task) string {
	if t.Skipped() {
		return "SKIPPED"
	}
	return t.Status
}

func ended(s string) bool { return s == rest.TaskSuccess || s == rest.TaskFailure || s == "SKIPPED" }

// Plain writes one line per change: elapsed time since the printer was
// made, task id, type, host, state and, once ended, the task's response.
type Plain struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	tasks map[int64]*state
}

// NewPlain returns a Plain printer; now is time.Now unless a test fixes it.
func NewPlain(w io.Writer, now func() time.Time) *Plain {
	if now == nil {
		now = time.Now
	}
	return &Plain{w: w, now: now, start: now(), tasks: map[int64]*state{}}
}

func (p *Plain) stamp() string {
	return fmt.Sprintf("[%6.1fs]", p.now().Sub(p.start).Seconds())
}

// Step implements Printer.
func (p *Plain) Step(title string) { fmt.Fprintf(p.w, "%s %s\n", p.stamp(), title) }

// Line implements Printer.
func (p *Plain) Line(text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(p.w, "%s   %s\n", p.stamp(), l)
	}
}

// Release implements Printer (plain lines need nothing).
func (p *Plain) Release() {}

// StepDone implements Printer.
func (p *Plain) StepDone(text string) { fmt.Fprintf(p.w, "%s %s\n", p.stamp(), text) }

// Update implements Printer: a task is shown when it runs and when it
// ends; one still queued (SUBMITTED) when first seen is not, and a task
// sent back to the queue (a retry) is.
func (p *Plain) Update(tasks []rest.Task) {
	for _, t := range sorted(tasks) {
		st := status(t)
		s, seen := p.tasks[t.ID]
		if !seen {
			s = &state{}
			p.tasks[t.ID] = s
			if st == rest.TaskSubmitted {
				s.shown = st
			}
		}
		s.task = t
		if st == s.shown {
			continue
		}
		s.shown = st
		line := fmt.Sprintf("%s   task %-5d %-20s %-15s %-9s", p.stamp(), t.ID, t.TaskType, t.Host, st)
		if ended(st) {
			if msg := oneLine(t.Message(), 160); msg != "" {
				line += " " + msg
			}
		}
		fmt.Fprintln(p.w, strings.TrimRight(line, " "))
	}
}

func sorted(tasks []rest.Task) []rest.Task {
	out := append([]rest.Task(nil), tasks...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// oneLine is s on one line, cut to max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) > max {
		return string(r[:max-3]) + "..."
	}
	return s
}
