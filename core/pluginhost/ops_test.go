package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// A constraint pin resolves once to the highest match and stays there when
// newer matching versions are installed; a cluster pinned at first use
// keeps its version too.
func TestConstraintPinsStayResolved(t *testing.T) {
	st := testStore(t, "")
	c1, c2 := newCluster(t, st, "c1"), newCluster(t, st, "c2")
	dir := twoVersions(t)
	m := newManager(t, Config{Dir: dir, Store: st})
	ctx := context.Background()
	pin, err := m.Pin(ctx, c1.ID, "test", ">=1.0 <2")
	if err != nil || pin != (PinInfo{ClusterID: c1.ID, Role: "TEST", Version: "1.1.0", Constraint: ">=1.0 <2", SHA256: fileSum(t, dir, "1.1.0")}) {
		t.Fatalf("pin >=1.0 <2: %+v %v", pin, err)
	}
	if _, err := m.Resolve(ctx, c2.ID, "TEST"); err != nil { // first use pins c2 to 1.1.0
		t.Fatal(err)
	}
	place(t, dir, "wire2", fileName("1.2.0", 2, 0), "")
	if err := m.Rescan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []int64{c1.ID, c2.ID} {
		if p, err := m.Resolve(ctx, c, "TEST"); err != nil || p.Version != "1.1.0" {
			t.Errorf("cluster %d after installing 1.2.0: %s %v, want 1.1.0 still", c, p.Version, err)
		}
	}
	// Pinning again with the same rule is what moves a cluster.
	if pin, err := m.Pin(ctx, c1.ID, "TEST", ">=1.0 <2"); err != nil || pin.Version != "1.2.0" {
		t.Errorf("re-pin: %+v %v, want 1.2.0", pin, err)
	}
	for rule, want := range map[string]error{"^3": ErrNoPlugin, "1.5.0": ErrNoPlugin, "one": ErrBadVersion} {
		if _, err := m.Pin(ctx, c1.ID, "TEST", rule); !errors.Is(err, want) {
			t.Errorf("pin %q: %v, want %v", rule, err, want)
		}
	}
	if err := m.Unpin(ctx, c2.ID, "TEST"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unpin(ctx, c2.ID, "TEST"); !errors.Is(err, ErrNotPinned) {
		t.Errorf("second unpin: %v, want ErrNotPinned", err)
	}
	pins, err := m.Pins(ctx)
	if err != nil || len(pins) != 1 || pins[0].ClusterID != c1.ID {
		t.Errorf("pins after unpin: %+v %v", pins, err)
	}
}

// Catalogue reports the pinned version's Info, or the highest for a
// cluster without a pin, and never pins.
func TestCatalogue(t *testing.T) {
	st := testStore(t, "")
	c1, c2 := newCluster(t, st, "c1"), newCluster(t, st, "c2")
	dir := twoVersions(t)
	m := newManager(t, Config{Dir: dir, Store: st})
	ctx := context.Background()
	if _, err := m.Pin(ctx, c1.ID, "TEST", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cluster int64
		version string
	}{{c1.ID, "1.0.0"}, {c2.ID, "1.1.0"}, {0, "1.1.0"}} {
		cat, err := m.Catalogue(ctx, tc.cluster)
		if err != nil {
			t.Fatal(err)
		}
		if len(cat) != 1 || cat["TEST"].Version != tc.version || cat["TEST"].Role != "TEST" {
			t.Errorf("cluster %d: catalogue %+v, want TEST %s", tc.cluster, cat, tc.version)
		}
	}
	if pins, _ := m.Pins(ctx); len(pins) != 1 {
		t.Errorf("Catalogue pinned: %+v", pins)
	}
	// A cluster pinned to a version that went away has no such role.
	os.Remove(filepath.Join(dir, "test", fileName("1.0.0", 2, 0)))
	if err := m.Rescan(ctx); err != nil {
		t.Fatal(err)
	}
	if cat, err := m.Catalogue(ctx, c1.ID); err != nil || len(cat) != 0 {
		t.Errorf("catalogue with a broken pin: %+v %v, want no role", cat, err)
	}
	// Without a store every cluster sees the highest.
	if cat, err := newManager(t, Config{Dir: twoVersions(t)}).Catalogue(ctx, c1.ID); err != nil || cat["TEST"].Version != "1.1.0" {
		t.Errorf("no store: %+v %v", cat, err)
	}
}

// Role hands out a typed role whose calls reach the pinned plugin, write
// its log lines into the task log and its Info over gRPC.
func TestRoleIsTyped(t *testing.T) {
	st := testStore(t, "")
	c := newCluster(t, st, "c1")
	m := newManager(t, Config{Dir: twoVersions(t), Store: st})
	ctx := context.Background()
	if _, err := m.Pin(ctx, c.ID, "TEST", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r, err := m.Role(ctx, c.ID, "test", &log)
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.Info(ctx)
	if err != nil || info.Version != "1.0.0" {
		t.Fatalf("Info: %+v %v", info, err)
	}
	res, err := r.Precheck(ctx, sdktest.NewFakeHost(), testRequest(1))
	if err != nil || res.Facts["version"] != "1.0.0" {
		t.Errorf("Precheck: %+v %v", res, err)
	}
	if _, err := m.Role(ctx, c.ID, "NOPE", nil); !errors.Is(err, ErrNoPlugin) {
		t.Errorf("unknown role: %v, want ErrNoPlugin", err)
	}
}

// A plugin that crashes when started fails the call with its stderr (the
// error and the task log), not only go-plugin's "Unrecognized remote
// plugin message".
func TestCrashAtStartCarriesStderr(t *testing.T) {
	dir := t.TempDir()
	place(t, dir, "crash", fileName("1.2.0", 2, 0), "")
	m := newManager(t, Config{Dir: dir})
	var taskLog bytes.Buffer
	_, err := testRole(t, m, 1, &taskLog).Precheck(context.Background(), sdktest.NewFakeHost(), testRequest(1))
	var se *StderrError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StderrError", err)
	}
	for _, want := range []string{"start TEST plugin 1.2.0", "loading config: no such file", "panic: boom at start", "goroutine 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if !strings.Contains(taskLog.String(), "panic: boom at start") {
		t.Errorf("task log does not have the panic:\n%s", taskLog.String())
	}
}

// A plugin that never answers the handshake fails after StartTimeout with
// what it said on stderr.
func TestHangAtStartTimesOut(t *testing.T) {
	dir := t.TempDir()
	place(t, dir, "hang", fileName("1.2.0", 2, 0), "")
	m := newManager(t, Config{Dir: dir, StartTimeout: 2 * time.Second})
	_, err := testRole(t, m, 1, nil).Precheck(context.Background(), sdktest.NewFakeHost(), testRequest(1))
	if err == nil || !strings.Contains(err.Error(), "timeout while waiting for plugin to start") || !strings.Contains(err.Error(), "warming up forever") {
		t.Fatalf("err = %v, want a start timeout naming the plugin's stderr", err)
	}
	if pids := pluginProcesses(t, m.ExecDir()); len(pids) != 0 {
		t.Errorf("the hanging plugin still runs: %v", pids)
	}
}

// A plugin that panics outside any handler dies mid-call: the error names
// the panic and where.
func TestCrashMidCallCarriesStderr(t *testing.T) {
	m := newManager(t, Config{Dir: twoVersions(t)})
	_, err := testRole(t, m, 1, nil).Status(context.Background(), sdktest.NewFakeHost(), testRequest(1))
	if !errors.Is(err, ErrPluginExited) {
		t.Fatalf("err = %v, want ErrPluginExited", err)
	}
	for _, want := range []string{"exited during Status", "panic: status exploded", "main.testRole.Status"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestStderrTail(t *testing.T) {
	f := newLogFanout("X")
	w := f.writer(true)
	for i := 0; i < 30; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	fmt.Fprintln(w, `{"@level":"info","@message":"a log record"}`)
	fmt.Fprintf(w, "%s\n", strings.Repeat("x", 2*tailLineBytes))
	got := f.tail()
	if len(got) != tailLines || got[0] != "line 11" || got[tailLines-2] != "line 29" || len(got[tailLines-1]) != tailLineBytes+3 {
		t.Errorf("tail %q", got)
	}
	f.writer(false).Write([]byte("stdout line\n"))
	if strings.Contains(strings.Join(f.tail(), "\n"), "stdout line") || strings.Contains(strings.Join(f.tail(), "\n"), "a log record") {
		t.Errorf("stdout or log records in the tail: %q", f.tail())
	}
	// After a panic, its head is kept rather than the end of its stack.
	fmt.Fprintln(w, "panic: boom")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(w, "frame %d\n", i)
	}
	got = f.tail()
	if len(got) != tailLines || got[tailBeforePanic] != "panic: boom" || got[tailBeforePanic-1] != strings.Repeat("x", tailLineBytes)+"..." || got[tailLines-1] != fmt.Sprintf("frame %d", tailLines-tailBeforePanic-2) {
		t.Errorf("tail after a panic %q", got)
	}
	f.resetTail()
	if len(f.tail()) != 0 {
		t.Errorf("tail after reset %q", f.tail())
	}
}

// A binary whose describe hangs is refused after the describe timeout and
// the others are still accepted.
func TestScanRefusesHangingDescribe(t *testing.T) {
	dir := twoVersions(t)
	for _, v := range []string{"1.2.0", "1.3.0", "1.4.0"} {
		place(t, dir, "mute", fileName(v, 2, 0), "")
	}
	m := newManager(t, Config{Dir: dir, DescribeTimeout: time.Second, ScanParallel: 2})
	l := m.List()
	if len(l.Plugins) != 2 || len(l.Refused) != 3 {
		t.Fatalf("listing %+v", l)
	}
	for _, r := range l.Refused {
		if !strings.Contains(r.Reason, "describe did not answer within 1s") || r.Role != "TEST" {
			t.Errorf("refused %+v", r)
		}
	}
	if pids := pluginProcesses(t, m.ExecDir()); len(pids) != 0 {
		t.Errorf("hanging describes left running: %v", pids)
	}
}

// install and verify start the binary through the handshake and refuse
// what crashes, hangs or answers differently over gRPC.
func TestCLIHandshake(t *testing.T) {
	dir, dataDir := t.TempDir(), t.TempDir()
	trustTestKey(t, dataDir)
	ctx := context.Background()
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := runCLI(ctx, t, CLI{Dir: dir, DataDir: dataDir, Stdout: &out, Stderr: &out}, args...)
		return code, out.String()
	}
	for variant, want := range map[string][]string{
		"crash":   {"start through the plugin handshake", "panic: boom at start"},
		"liar":    {`differs from describe`, `"another-name"`},
		"wire2":   {"start through the plugin handshake", "ncompatible API version"},
		"badhome": {`its Info breaks the contract: home "FE_HOME"`},
	} {
		code, out := run("install", bins[variant])
		if code != 1 {
			t.Errorf("install %s: exit %d, want 1:\n%s", variant, code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("install %s does not say %q:\n%s", variant, w, out)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "test")); len(entries) != 0 {
		t.Errorf("refused files were installed: %v", entries)
	}
	code, out := run("install", bins["1.0.0"])
	if code != 0 || !strings.Contains(out, "no running manager found") || !strings.Contains(out, "pin one to use 1.0.0") {
		t.Errorf("install: %d\n%s", code, out)
	}
	// A crashing binary placed by hand passes describe but not verify.
	place(t, dir, "crash", fileName("1.2.0", 2, 0), "")
	code, out = run("verify")
	if code != 1 || !strings.Contains(out, "OK") || !strings.Contains(out, "REFUSED  test/"+fileName("1.2.0", 2, 0)) || !strings.Contains(out, "panic: boom at start") {
		t.Errorf("verify: %d\n%s", code, out)
	}
}

// pin and unpin from the command line work on the data dir's database.
func TestCLIPinUnpin(t *testing.T) {
	dir, dataDir := twoVersions(t), t.TempDir()
	trustTestKey(t, dataDir)
	ctx := context.Background()
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := runCLI(ctx, t, CLI{Dir: dir, DataDir: dataDir, Stdout: &out, Stderr: &out}, args...)
		return code, out.String()
	}
	if code, out := run("pin", "1", "TEST", "1.0.0"); code != 1 || !strings.Contains(out, "no database") {
		t.Errorf("pin without a database: %d %s", code, out)
	}
	st := testStore(t, dataDir)
	c := newCluster(t, st, "c1")
	id := fmt.Sprint(c.ID)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pin", id, "test", "~1.0"}, 0, `TEST pinned to 1.0.0 (rule "~1.0")`},
		{[]string{"list"}, 0, `1.0.0 (pinned by "~1.0")`},
		{[]string{"pin", id, "TEST", "~9"}, 1, "no accepted TEST plugin matches"},
		{[]string{"pin", "99", "TEST", "1.0.0"}, 1, "cluster 99"},
		{[]string{"pin", "x", "TEST", "1.0.0"}, 1, "not a cluster id"},
		{[]string{"unpin", id, "TEST"}, 0, "TEST unpinned"},
		{[]string{"unpin", id, "TEST"}, 1, "has no pin for TEST"},
		{[]string{"list"}, 0, "1.1.0 (default)"},
	} {
		code, out := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %d %s, want %d %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}
