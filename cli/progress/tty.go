package progress

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/cli/rest"
)

// TTY redraws one line per task of the current block in place.
type TTY struct {
	w      io.Writer
	now    func() time.Time
	color  bool
	width  int
	tasks  map[int64]*state
	order  []int64
	drawn  int // lines of the block on screen
	frame  int
	header string
}

// NewTTY returns a TTY printer; width is the terminal's (0: 100).
func NewTTY(w io.Writer, now func() time.Time, color bool, width int) *TTY {
	if now == nil {
		now = time.Now
	}
	if width <= 0 {
		width = 100
	}
	return &TTY{w: w, now: now, color: color, width: width, tasks: map[int64]*state{}}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	dim    = "\x1b[2m"
	reset  = "\x1b[0m"
)

func (p *TTY) paint(code, s string) string {
	if !p.color {
		return s
	}
	return code + s + reset
}

// clear moves the cursor to the first line of the block and erases it.
func (p *TTY) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *TTY) draw() {
	p.frame++
	var b strings.Builder
	for _, id := range p.order {
		s := p.tasks[id]
		b.WriteString(p.row(s))
		b.WriteByte('\n')
	}
	fmt.Fprint(p.w, b.String())
	p.drawn = len(p.order)
}

func (p *TTY) row(s *state) string {
	t := s.task
	st := status(t)
	var mark, stc string
	switch st {
	case rest.TaskSuccess:
		mark, stc = p.paint(green, "✓"), p.paint(green, st)
	case rest.TaskFailure:
		mark, stc = p.paint(red, "✗"), p.paint(red, st)
	case "SKIPPED":
		mark, stc = p.paint(yellow, "↷"), p.paint(yellow, st)
	case rest.TaskRunning:
		mark, stc = spinner[p.frame%len(spinner)], st
	default:
		mark, stc = p.paint(dim, "·"), p.paint(dim, st)
	}
	var took string
	switch {
	case !s.running.IsZero() && !s.ended.IsZero():
		took = fmt.Sprintf("%.1fs", s.ended.Sub(s.running).Seconds())
	case !s.running.IsZero():
		took = fmt.Sprintf("%.1fs", p.now().Sub(s.running).Seconds())
	}
	head := fmt.Sprintf("  %s %-20s %-15s ", mark, t.TaskType, t.Host)
	// Pad the status by its visible width (colour codes take none).
	line := head + stc + strings.Repeat(" ", max(0, 9-len(st))) + fmt.Sprintf(" %6s", took)
	room := p.width - (4 + 20 + 1 + 15 + 1 + 9 + 7 + 2)
	if msg := t.Message(); msg != "" && ended(st) && room > 10 {
		line += "  " + oneLine(msg, room)
	}
	return line
}

// Step implements Printer.
func (p *TTY) Step(title string) {
	p.clear()
	p.tasks, p.order, p.header = map[int64]*state{}, nil, title
	fmt.Fprintln(p.w, title)
}

// Update implements Printer. The block shows the tasks of this update
// only: one the manager no longer lists (a skipped task on managers that
// hide them, a step sent again) leaves it.
func (p *TTY) Update(tasks []rest.Task) {
	now := p.now()
	p.order = p.order[:0]
	for _, t := range sorted(tasks) {
		s, ok := p.tasks[t.ID]
		if !ok {
			s = &state{}
			p.tasks[t.ID] = s
		}
		p.order = append(p.order, t.ID)
		st := status(t)
		if st == rest.TaskRunning && (s.running.IsZero() || !s.ended.IsZero()) {
			s.running, s.ended = now, time.Time{}
		}
		if ended(st) && s.ended.IsZero() {
			if s.running.IsZero() {
				s.running = now
			}
			s.ended = now
		}
		s.task = t
	}
	p.clear()
	p.draw()
}

// Line implements Printer: the text goes above the block, which is redrawn.
func (p *TTY) Line(text string) {
	p.clear()
	fmt.Fprintln(p.w, strings.TrimRight(text, "\n"))
	p.draw()
}

// Release implements Printer.
func (p *TTY) Release() { p.drawn = 0 }

// StepDone implements Printer: the block stays as last drawn.
func (p *TTY) StepDone(text string) {
	p.clear()
	p.draw()
	p.drawn = 0
	p.tasks, p.order = map[int64]*state{}, nil
	fmt.Fprintln(p.w, p.paint(green, text))
}
