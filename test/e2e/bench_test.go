package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// BenchmarkWizard walks the whole wizard on three fresh sandbox hosts per
// iteration (SQLite) and reports each step's wall time, the median over
// the iterations. With -v it logs, for the last iteration, every task's
// queueing delay, run time and the timed lines of its log (see
// BENCHMARKS.md, "Whole wizard"):
//
//	go test -run XXX -bench BenchmarkWizard -benchtime 5x -v ./test/e2e
func BenchmarkWizard(b *testing.B) {
	steps := map[string][]float64{}
	tasks := map[string][]float64{} // step/taskType -> slowest task of the run, s
	var total []float64
	var last string
	for b.Loop() {
		b.StopTimer()
		s := startBench(b)
		c := s.Client()
		plan := s.StandardPlan()
		stepOf := map[int64]string{}
		var ids []int64
		b.StartTimer()
		t0 := time.Now()
		pid, timings, err := c.Walk(context.Background(), s, plan, func(step string, t *sandbox.Task) {
			if t != nil && stepOf[t.ID] == "" {
				stepOf[t.ID] = step
				ids = append(ids, t.ID)
			}
		})
		wall := time.Since(t0)
		b.StopTimer()
		if err != nil {
			s.Close()
			b.Fatalf("wizard (process %d): %v", pid, err)
		}
		total = append(total, wall.Seconds())
		for _, st := range timings {
			steps[st.Step] = append(steps[st.Step], st.Duration.Seconds())
		}
		var report strings.Builder
		slowest := map[string]float64{}
		stepStart := map[string]time.Time{}
		var infos []sandbox.Task
		for _, id := range ids {
			t, err := c.TaskInfo(context.Background(), id)
			if err != nil {
				s.Close()
				b.Fatal(err)
			}
			infos = append(infos, t)
			if st, ok := apiTime(t.StartTime); ok {
				k := stepOf[id]
				if cur, seen := stepStart[k]; !seen || st.Before(cur) {
					stepStart[k] = st
				}
			}
		}
		for _, t := range infos {
			st, ok1 := apiTime(t.StartTime)
			en, ok2 := apiTime(t.EndTime)
			if !ok1 || !ok2 {
				continue
			}
			d := en.Sub(st).Seconds()
			k := stepOf[t.ID] + "/" + t.TaskType
			slowest[k] = max(slowest[k], d)
			log, _ := c.TaskLogText(context.Background(), t.ID)
			fmt.Fprintf(&report, "task %d %s on %s: starts +%.2fs into the step, runs %.2fs\n%s",
				t.ID, t.TaskType, t.Host, st.Sub(stepStart[stepOf[t.ID]]).Seconds(), d, timedLines(log, st, en))
		}
		for k, v := range slowest {
			tasks[k] = append(tasks[k], v)
		}
		last = report.String()
		s.Close()
		b.StartTimer() // Loop wants it running
	}
	for step, v := range steps {
		b.ReportMetric(median(v), step+"-s")
	}
	b.ReportMetric(median(total), "wizard-s")
	keys := make([]string, 0, len(tasks))
	for k := range tasks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sum strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sum, "  %-40s slowest task median %.2fs (runs: %s)\n", k, median(tasks[k]), secs(tasks[k]))
	}
	for _, step := range []string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"} {
		fmt.Fprintf(&sum, "  step %-35s median %.2fs (runs: %s)\n", step, median(steps[step]), secs(steps[step]))
	}
	fmt.Fprintf(&sum, "  whole wizard median %.2fs (runs: %s)\n", median(total), secs(total))
	b.Logf("per task type and step:\n%s\nlast run, task by task:\n%s", sum.String(), last)
}

// startBench is start for a benchmark: hosts and manager outside the timer.
func startBench(b *testing.B, managerArgs ...string) *sandbox.Sandbox {
	b.Helper()
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{BinDir: binDir, ManagerArgs: managerArgs})
	if err != nil {
		b.Fatalf("sandbox: %v", err)
	}
	if err := s.StartManager(ctx); err != nil {
		s.Close()
		b.Fatalf("start manager: %v", err)
	}
	return s
}

func apiTime(p *string) (time.Time, bool) {
	if p == nil {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02T15:04:05.000-07:00", *p)
	return t, err == nil
}

var stampRE = regexp.MustCompile(`^(\d\d:\d\d:\d\d\.\d\d\d) (.*)$`)

// timedLines shows the log lines that carry a time stamp as offsets from
// the task's start, each with the time until the next one (or the end).
func timedLines(log string, start, end time.Time) string {
	type line struct {
		at   time.Time
		text string
	}
	var ls []line
	for _, l := range strings.Split(log, "\n") {
		m := stampRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		hms, err := time.Parse("15:04:05.000", m[1])
		if err != nil {
			continue
		}
		s := start.UTC()
		at := time.Date(s.Year(), s.Month(), s.Day(), hms.Hour(), hms.Minute(), hms.Second(), hms.Nanosecond(), time.UTC)
		ls = append(ls, line{at, m[2]})
	}
	var b strings.Builder
	for i, l := range ls {
		next := end
		if i+1 < len(ls) {
			next = ls[i+1].at
		}
		text := l.text
		if len(text) > 100 {
			text = text[:97] + "..."
		}
		fmt.Fprintf(&b, "    +%5.2fs  %5.2fs  %s\n", l.at.Sub(start).Seconds(), next.Sub(l.at).Seconds(), text)
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, " ")
}
