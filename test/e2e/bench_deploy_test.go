package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// wizardSteps are the install wizard's steps in order.
var wizardSteps = []string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"}

// BenchmarkDeploy runs the built `dorismanager cluster deploy` with
// examples/topology.yaml on three fresh sandbox hosts per iteration (3 FEs:
// the follower master, a follower and an observer; 3 BEs; 1 broker) and
// reports, from the tasks' start and end times (task/info), for each step:
// its wall time as the command saw it, the span from its first task start
// to its last task end, the sum and the longest of its task times, and the
// gap from the previous step's last task end to its first task start; and
// where the master FE's START task spent its time (BENCHMARKS.md, "cluster
// deploy"). Medians over the iterations; with -v, the last iteration's
// START_SERVICE and BUILD_CLUSTER task logs; with DM_BENCH_TRACE=1 the manager logs at
// debug level and -v shows its request and task lines of the last
// iteration (the debug log costs the manager time: not for the numbers).
//
//	go test -run XXX -bench BenchmarkDeploy -benchtime 3x -v ./test/e2e
func BenchmarkDeploy(b *testing.B) {
	m := map[string][]float64{}
	add := func(k string, v float64) { m[k] = append(m[k], v) }
	var last string
	var managerArgs []string
	trace := os.Getenv("DM_BENCH_TRACE") == "1"
	if trace {
		managerArgs = []string{"--log-level", "debug"}
	}
	for b.Loop() {
		b.StopTimer()
		s := startBench(b, managerArgs...)
		top := writeTopology(b, s, b.TempDir())
		ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
		mgr := s.ManagerPID()
		cpu0 := procCPU(mgr)
		b.StartTimer()
		t0 := time.Now()
		out, cliCPU, err := runDeploy(ctx, s, "cluster", "deploy", top, "--plain", "--no-input", "--timings")
		t1 := time.Now()
		b.StopTimer()
		add("manager-cpu-s", (procCPU(mgr) - cpu0).Seconds())
		add("cli-cpu-s", cliCPU.Seconds())
		add("load1", loadAverage())
		if err != nil {
			cancel()
			b.Logf("the sandbox:\n%s", s.Diagnose())
			s.Close()
			b.Fatalf("cluster deploy: %v\n%s", err, out)
		}
		tasks, err := allTasks(ctx, s.Client())
		if err != nil {
			cancel()
			s.Close()
			b.Fatal(err)
		}
		add("deploy-s", t1.Sub(t0).Seconds())
		st := stepStats(tasks)
		walls := cliWalls(out)
		var prevEnd time.Time
		for _, step := range wizardSteps {
			x, ok := st[step]
			if !ok {
				cancel()
				s.Close()
				b.Fatalf("no task of %s:\n%s", step, out)
			}
			add(step+"-wall-s", walls[step])
			add(step+"-span-s", x.end.Sub(x.first).Seconds())
			add(step+"-tasksum-s", x.sum.Seconds())
			add(step+"-taskmax-s", x.max.Seconds())
			if prevEnd.IsZero() {
				add("lead-in-s", x.first.Sub(t0).Seconds())
			} else {
				add(step+"-gap-s", x.first.Sub(prevEnd).Seconds())
			}
			prevEnd = x.end
		}
		add("tail-s", t1.Sub(prevEnd).Seconds())

		var report strings.Builder
		c := s.Client()
		for _, t := range tasks {
			if t.ProcessType != "START_SERVICE" && t.ProcessType != "BUILD_CLUSTER" {
				continue
			}
			stepStart := st[t.ProcessType].first
			st, ok1 := apiTime(t.StartTime)
			en, ok2 := apiTime(t.EndTime)
			if !ok1 || !ok2 {
				continue
			}
			log, err := c.TaskLogText(ctx, t.ID)
			if err != nil {
				cancel()
				s.Close()
				b.Fatal(err)
			}
			if t.TaskType == "START_FE" && t.Host == s.Hosts.Hosts[0].Addr {
				ph, err := startPhases(log, st, en)
				if err != nil {
					cancel()
					s.Close()
					b.Fatalf("master FE START task %d: %v\n%s", t.ID, err, log)
				}
				add("fe-master-start-s", en.Sub(st).Seconds())
				add("fe-master-before-script-s", ph.beforeScript.Seconds())
				add("fe-master-script-s", ph.script.Seconds())
				add("fe-master-health-s", ph.health.Seconds())
				// The finer split where the plugin logs its steps.
				for k, d := range ph.fine {
					add("fe-master-"+k+"-s", d.Seconds())
				}
			}
			fmt.Fprintf(&report, "task %d %s on %s: starts +%.3fs into the step, runs %.3fs\n%s",
				t.ID, t.TaskType, t.Host, st.Sub(stepStart).Seconds(), en.Sub(st).Seconds(), timedLines(log, st, en))
		}
		// What one poll costs the manager: currentTasks of the finished
		// process, one after the other on a kept-alive connection as
		// the command polls.
		const polls = 300
		cpu1 := procCPU(mgr)
		for range polls {
			if _, err := c.CurrentTasks(ctx, 1); err != nil {
				cancel()
				s.Close()
				b.Fatal(err)
			}
		}
		add("poll-manager-cpu-ms", (procCPU(mgr)-cpu1).Seconds()*1000/polls)
		last = fmt.Sprintf("%s\n%s", out, report.String())
		if trace {
			last += "\nmanager log:\n" + managerTrace(s.ManagerLog())
		}
		cancel()
		s.Close()
		b.StartTimer() // Loop wants it running
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sum strings.Builder
	for _, k := range keys {
		b.ReportMetric(median(m[k]), k)
		fmt.Fprintf(&sum, "  %-28s median %.3f (runs: %s)\n", k, median(m[k]), secs3(m[k]))
	}
	b.Logf("medians:\n%s\nlast run:\n%s", sum.String(), last)
}

// runDeploy runs the built dorismanager with the sandbox's connection in
// the environment and returns its standard output (and standard error)
// and the CPU time it used.
func runDeploy(ctx context.Context, s *sandbox.Sandbox, args ...string) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "dorismanager"), args...)
	cmd.Env = append(os.Environ(), "DORISMANAGER_SERVER="+s.URL, "DORISMANAGER_TOKEN_FILE="+filepath.Join(s.DataDir, "admin.token"),
		"DORISMANAGER_CA_FILE="+filepath.Join(s.DataDir, "pki", "bundle.crt"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return out.String(), cpu, err
}

// procCPU is the CPU time (user and system) a process has used so far,
// its children not counted; 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

type phases struct {
	beforeScript, script, health time.Duration
	// fine splits the task by the lines the plugin logs since it says
	// when it checks the host, when the script returned and when the
	// role was healthy: setup (task start to the check), probe (the
	// check, to the start script's line), script (to its return),
	// health (to healthy), record (the rest: desired state, facts, end).
	fine map[string]time.Duration
}

// startPhases splits a START task's time by its log: until the line that
// runs the start script ("starting FE: bash .../start_fe.sh ..."), from
// there to the first process state read after it ("pid=...", the start
// script has returned and the first health poll has read the pid file),
// and the rest (health probes until healthy, recording the start).
func startPhases(log string, start, end time.Time) (phases, error) {
	var script, pid, check, returned, healthy time.Time
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
		switch {
		case script.IsZero() && strings.HasPrefix(m[2], "starting FE: "):
			script = at
		case !script.IsZero() && pid.IsZero() && strings.HasPrefix(m[2], "pid="):
			pid = at
		case check.IsZero() && strings.HasPrefix(m[2], "checking FE on "):
			check = at
		case returned.IsZero() && strings.HasPrefix(m[2], "start_fe.sh returned after "):
			returned = at
		case healthy.IsZero() && strings.HasPrefix(m[2], "FE healthy "):
			healthy = at
		}
	}
	if script.IsZero() || pid.IsZero() {
		return phases{}, fmt.Errorf("no start script line and pid line after it in the log")
	}
	ph := phases{beforeScript: script.Sub(start), script: pid.Sub(script), health: end.Sub(pid)}
	if !check.IsZero() && !returned.IsZero() && !healthy.IsZero() {
		ph.fine = map[string]time.Duration{"setup": check.Sub(start), "probe": script.Sub(check),
			"script-only": returned.Sub(script), "health-only": healthy.Sub(returned), "record": end.Sub(healthy)}
	}
	return ph, nil
}

// allTasks reads every task of a fresh manager by id (1, 2, ... until one
// is not found): currentTasks shows only the current step's.
func allTasks(ctx context.Context, c *sandbox.Client) ([]sandbox.Task, error) {
	var out []sandbox.Task
	for id := int64(1); ; id++ {
		r, err := c.Call(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/info/%d", id), nil)
		if err != nil {
			return nil, err
		}
		if r.Status == http.StatusNotFound {
			return out, nil
		}
		if r.Code != 0 {
			return nil, fmt.Errorf("task %d: code %d: %s", id, r.Code, r.Msg)
		}
		var t sandbox.Task
		if err := r.Decode(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
}

type stepStat struct {
	first, end time.Time
	sum, max   time.Duration
}

// stepStats groups the ended, not skipped tasks by step.
func stepStats(tasks []sandbox.Task) map[string]stepStat {
	out := map[string]stepStat{}
	for _, t := range tasks {
		st, ok1 := apiTime(t.StartTime)
		en, ok2 := apiTime(t.EndTime)
		if !ok1 || !ok2 || t.Skip == "YES" {
			continue
		}
		x := out[t.ProcessType]
		if x.first.IsZero() || st.Before(x.first) {
			x.first = st
		}
		if en.After(x.end) {
			x.end = en
		}
		d := en.Sub(st)
		x.sum += d
		x.max = max(x.max, d)
		out[t.ProcessType] = x
	}
	return out
}

var timingRow = regexp.MustCompile(`(?m)^([A-Z_]+) +\d+ +[\d.]+s +\S+ +([\d.]+)s$`)

// cliWalls reads each step's wall time from the command's --timings table.
func cliWalls(out string) map[string]float64 {
	w := map[string]float64{}
	for _, m := range timingRow.FindAllStringSubmatch(out, -1) {
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			w[m[1]] = v
		}
	}
	return w
}

func secs3(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(parts, " ")
}

// managerTrace is the manager log's lines about requests and tasks.
func managerTrace(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "request:") || strings.Contains(l, "task started") || strings.Contains(l, "task ended") {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}
