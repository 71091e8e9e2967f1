package wizard

import (
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/cli/rest"
)

func at(sec float64) rest.Time {
	return rest.Time{Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(sec * float64(time.Second)))}
}

func done(start, end float64, skip bool) rest.Task {
	t := rest.Task{Status: rest.TaskSuccess, StartTime: at(start), EndTime: at(end), Skip: "NO"}
	if skip {
		t.Status, t.Skip = rest.TaskFailure, "YES"
	}
	return t
}

func TestTimings(t *testing.T) {
	r := &Result{Steps: map[string][]rest.Task{
		"INSTALL_AGENT":   {done(0, 0.5, false), done(0.1, 0.8, false)},
		"INSTALL_SERVICE": {done(1.0, 2.0, false), done(0.9, 9, true)}, // a skipped task counts for nothing
		"START_SERVICE":   {done(3.0, 4.5, false)},                     // DEPLOY_CONFIG not seen: no gap
		"BUILD_CLUSTER":   {},                                          // no task (no role with membership)
	}, StepWall: map[string]time.Duration{"INSTALL_AGENT": time.Second}}
	got := r.Timings()
	want := []struct {
		step      string
		tasks     int
		task, gap time.Duration
	}{
		{"INSTALL_AGENT", 2, 800 * time.Millisecond, 0},
		{"INSTALL_SERVICE", 2, time.Second, 200 * time.Millisecond},
		{"START_SERVICE", 1, 1500 * time.Millisecond, 0},
		{"BUILD_CLUSTER", 0, 0, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("Timings = %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Step != w.step || g.Tasks != w.tasks || g.TaskTime != w.task || g.Gap != w.gap {
			t.Errorf("%s: tasks %d, task time %v, gap %v; want %d, %v, %v", g.Step, g.Tasks, g.TaskTime, g.Gap, w.tasks, w.task, w.gap)
		}
	}
	if got[0].Wall != time.Second {
		t.Errorf("wall %v", got[0].Wall)
	}
}

func TestTail(t *testing.T) {
	if got := Tail("a\nb\nc\n", 2, "> "); got != "> b\n> c" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail("", 2, "> "); got != "" {
		t.Errorf("Tail of nothing = %q", got)
	}
}
