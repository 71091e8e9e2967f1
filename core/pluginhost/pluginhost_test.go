package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

func TestDiscoveryAcceptsAndRefuses(t *testing.T) {
	dir := twoVersions(t)
	bad := map[string]string{ // file name -> expected reason
		fileName("1.3.0", 2, 0):                  "checksum mismatch",
		fileName("1.4.0", 2, 0):                  "unsigned: no checksum file",
		fileName("1.5.0", 2, 0):                  `describe disagrees with the file name: version "1.0.0" (name says "1.5.0")`,
		fileName("2.0.0", 3, 0):                  "speaks plugin API 3.0, this manager speaks API 2.x",
		fileName("1.6.0", 2, 7):                  "API 2.0 (name says 2.7)",
		fileName("1.7.0", 2, 0):                  `its Info breaks the contract: home "FE_HOME"`,
		"doris-role-test-1.0.0":                  "name is not doris-role-",
		"doris-role-test_v1.0.0_x2.0_plan9_mips": "built for plan9/mips",
	}
	place(t, dir, "1.0.0", fileName("1.3.0", 2, 0), strings.Repeat("0", 64))
	p := place(t, dir, "1.0.0", fileName("1.4.0", 2, 0), "")
	os.Remove(p + SumSuffix)
	place(t, dir, "1.0.0", fileName("1.5.0", 2, 0), "")
	place(t, dir, "api2", fileName("2.0.0", 3, 0), "")
	place(t, dir, "1.0.0", fileName("1.6.0", 2, 7), "")
	place(t, dir, "badhome", fileName("1.7.0", 2, 0), "")
	place(t, dir, "1.0.0", "doris-role-test-1.0.0", "")
	place(t, dir, "1.0.0", "doris-role-test_v1.0.0_x2.0_plan9_mips", "")
	// A plugin in the wrong role directory.
	os.MkdirAll(filepath.Join(dir, "fe"), 0o755)
	copyFileAtomic(filepath.Join(dir, "test", fileName("1.0.0", 2, 0)), filepath.Join(dir, "fe", fileName("1.0.0", 2, 0)), 0o755)
	bad[filepath.Join("..", "fe", fileName("1.0.0", 2, 0))] = `role "test" in the name does not match its directory "fe"`

	m := newManager(t, Config{Dir: dir})
	l := m.List()
	var got []string
	for _, p := range l.Plugins {
		got = append(got, p.Role+" "+p.Version)
	}
	if strings.Join(got, ",") != "TEST 1.1.0,TEST 1.0.0" {
		t.Errorf("accepted %v, want TEST 1.1.0 then TEST 1.0.0", got)
	}
	if len(l.Refused) != len(bad) {
		t.Errorf("refused %d files, want %d: %+v", len(l.Refused), len(bad), l.Refused)
	}
	for name, reason := range bad {
		path := filepath.Clean(filepath.Join(dir, "test", name))
		found := false
		for _, r := range l.Refused {
			if r.Path == path {
				found = true
				if !strings.Contains(r.Reason, reason) {
					t.Errorf("%s refused for %q, want %q", name, r.Reason, reason)
				}
				if !strings.Contains(r.Error(), filepath.Base(path)) {
					t.Errorf("refusal %q does not name the file", r.Error())
				}
			}
		}
		if !found {
			t.Errorf("%s was not refused", name)
		}
	}
}

func TestHandshakeCallAndPinSwitch(t *testing.T) {
	st := testStore(t, "")
	c1, c2 := newCluster(t, st, "c1"), newCluster(t, st, "c2")
	m := newManager(t, Config{Dir: twoVersions(t), Store: st})
	ctx := context.Background()
	version := func(cluster int64) string {
		t.Helper()
		r, err := m.Role(ctx, cluster, "test", nil) // role names are case-insensitive
		if err != nil {
			t.Fatalf("Role: %v", err)
		}
		res, err := r.Precheck(ctx, sdktest.NewFakeHost(), testRequest(1))
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		return res.Facts["version"]
	}
	if v := version(c1.ID); v != "1.1.0" {
		t.Errorf("default version %s, want the highest, 1.1.0", v)
	}
	if _, err := m.Pin(ctx, c1.ID, "TEST", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if v := version(c1.ID); v != "1.0.0" {
		t.Errorf("pinned cluster got %s, want 1.0.0", v)
	}
	if v := version(c2.ID); v != "1.1.0" {
		t.Errorf("other cluster got %s, want 1.1.0", v)
	}
	if _, err := m.Pin(ctx, c1.ID, "test", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if v := version(c1.ID); v != "1.1.0" {
		t.Errorf("re-pinned cluster got %s, want 1.1.0", v)
	}
	if _, err := m.Pin(ctx, c1.ID, "TEST", "9.9.9"); !errors.Is(err, ErrNoPlugin) {
		t.Errorf("pin to a missing version: %v, want ErrNoPlugin", err)
	}

	// A running task of the cluster blocks pin changes.
	runningTask(t, st, c1.ID)
	if _, err := m.Pin(ctx, c1.ID, "TEST", "1.0.0"); !errors.Is(err, ErrBusy) {
		t.Errorf("pin with a running task: %v, want ErrBusy", err)
	}
	if err := m.Unpin(ctx, c1.ID, "TEST"); !errors.Is(err, ErrBusy) {
		t.Errorf("unpin with a running task: %v, want ErrBusy", err)
	}
	if _, err := m.Pin(ctx, c2.ID, "TEST", "1.0.0"); err != nil {
		t.Errorf("other cluster's pin: %v", err)
	}

	// The first use recorded a default pin, so a newer install does not
	// change what a cluster already uses.
	pins, _ := m.Pins(ctx)
	if len(pins) != 2 {
		t.Errorf("pins %+v, want one per cluster", pins)
	}
}

func TestAPINegotiationRefused(t *testing.T) {
	dir := t.TempDir()
	place(t, dir, "wire2", fileName("1.2.0", 2, 0), "")
	m := newManager(t, Config{Dir: dir})
	_, err := testRole(t, m, 1, nil).Precheck(context.Background(), sdktest.NewFakeHost(), testRequest(1))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
		t.Fatalf("err = %v, want an incompatible API version error", err)
	}
	if !strings.Contains(err.Error(), fileName("1.2.0", 2, 0)) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestFailureAndHostCallsAcrossProcess(t *testing.T) {
	reg := metrics.NewRegistry()
	m := newManager(t, Config{Dir: twoVersions(t), Metrics: reg})
	ctx := context.Background()
	_, err := testRole(t, m, 1, nil).Configure(ctx, sdktest.NewFakeHost(), testRequest(1))
	var f *sdk.Failure
	if !errors.As(err, &f) || *f != (sdk.Failure{Summary: "http_port 8030 is in use", Detail: "ss -ltn", Retryable: true}) {
		t.Fatalf("err = %#v, want the plugin's failure", err)
	}
	h := benchHost()
	res, err := testRole(t, m, 1, nil).Install(ctx, h, testRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Facts["conf"] != "k = v\n" || res.Facts["alive"] != "true" || res.Facts["exit"] != "0" {
		t.Errorf("facts %v", res.Facts)
	}
	var b strings.Builder
	if err := reg.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	got, err := metricstest.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`dorismanager_plugin_call_duration_seconds_count{role="TEST",method="Configure",outcome="failure"}`: 1,
		`dorismanager_plugin_call_duration_seconds_count{role="TEST",method="Install",outcome="ok"}`:        1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v\n%s", series, got[series], want, b.String())
		}
	}
}

func TestReady(t *testing.T) {
	var logs strings.Builder
	loud := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	empty := newManager(t, Config{Dir: t.TempDir(), Logger: loud})
	if err := empty.Ready(); err == nil || !strings.Contains(err.Error(), "no role plugin is loaded") {
		t.Errorf("Ready with no plugins = %v", err)
	}
	if !strings.Contains(logs.String(), "NO ROLE PLUGINS") || !strings.Contains(logs.String(), "dorismanager plugins install") {
		t.Errorf("a manager without plugins starts without a loud word of what to do; log:\n%s", logs.String())
	}
	logs.Reset()
	if err := newManager(t, Config{Dir: twoVersions(t), Logger: loud}).Ready(); err != nil {
		t.Errorf("Ready with plugins = %v", err)
	}
	if strings.Contains(logs.String(), "NO ROLE PLUGINS") {
		t.Errorf("warned about missing plugins while they are there:\n%s", logs.String())
	}
}

// pidHost reports the pid the test role writes to /pid.
type pidHost struct {
	*sdktest.FakeHost
	pid chan int
}

func (h *pidHost) WriteFile(ctx context.Context, path string, data []byte, mode uint32) error {
	if path == "/pid" {
		n, _ := strconv.Atoi(string(data))
		h.pid <- n
	}
	return h.FakeHost.WriteFile(ctx, path, data, mode)
}

func TestKilledMidCallFailsAndRestarts(t *testing.T) {
	dir := twoVersions(t)
	m := newManager(t, Config{Dir: dir})
	ctx := context.Background()
	h := &pidHost{FakeHost: sdktest.NewFakeHost(), pid: make(chan int, 1)}
	errc := make(chan error, 1)
	go func() {
		_, err := testRole(t, m, 1, nil).Start(ctx, h, testRequest(1))
		errc <- err
	}()
	var pid int
	select {
	case pid = <-h.pid:
	case err := <-errc:
		t.Fatalf("Start returned before blocking: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if !errors.Is(err, ErrPluginExited) || !strings.Contains(err.Error(), "exited during Start") {
		t.Fatalf("err = %v, want ErrPluginExited naming the call", err)
	}
	res, err := testRole(t, m, 1, nil).Precheck(ctx, sdktest.NewFakeHost(), testRequest(2))
	if err != nil {
		t.Fatalf("call after the crash: %v", err)
	}
	if res.Facts["pid"] == strconv.Itoa(pid) {
		t.Error("the dead process answered")
	}
}

func TestExitMidCall(t *testing.T) {
	m := newManager(t, Config{Dir: twoVersions(t)})
	ctx := context.Background()
	_, err := testRole(t, m, 1, nil).Status(ctx, sdktest.NewFakeHost(), testRequest(1))
	if !errors.Is(err, ErrPluginExited) {
		t.Fatalf("err = %v, want ErrPluginExited", err)
	}
	if _, err := testRole(t, m, 1, nil).Precheck(ctx, sdktest.NewFakeHost(), testRequest(2)); err != nil {
		t.Fatalf("call after exit: %v", err)
	}
}

// logHost answers the test role's "wait-for-log" once the plugin's lines
// reached both the task log and the manager's log.
type logHost struct {
	*sdktest.FakeHost
	task, manager *notifyWriter
}

func (h *logHost) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	for _, w := range []*notifyWriter{h.task, h.manager} {
		select {
		case <-w.done:
		case <-ctx.Done():
			return sdk.ExecResult{}, ctx.Err()
		}
	}
	return sdk.ExecResult{}, nil
}

func TestPluginLogsReachTaskAndManagerLogs(t *testing.T) {
	mgrLog := newNotifyWriter("stopping test role", "marker=m-42")
	taskLog := newNotifyWriter("stopping test role", "marker=m-42", "raw stderr line m-42")
	m := newManager(t, Config{Dir: twoVersions(t), Logger: hclog.New(&hclog.LoggerOptions{Output: mgrLog, Level: hclog.Debug})})
	req := testRequest(42)
	req.Params = map[string]string{"marker": "m-42"}
	other := newNotifyWriter()
	// A concurrent call of another task must not receive task 42's lines.
	h := &logHost{FakeHost: sdktest.NewFakeHost(), task: taskLog, manager: mgrLog}
	if _, err := testRole(t, m, 1, other).Precheck(context.Background(), sdktest.NewFakeHost(), testRequest(7)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := testRole(t, m, 1, taskLog).Stop(ctx, h, req); err != nil {
		t.Fatalf("%v\ntask log:\n%s\nmanager log:\n%s", err, taskLog.String(), mgrLog.String())
	}
	if !strings.Contains(taskLog.String(), "[INFO] plugin TEST 1.1.0: stopping test role") {
		t.Errorf("task log:\n%s", taskLog.String())
	}
	if strings.Contains(other.String(), "m-42") {
		t.Errorf("another task's log got task 42's lines:\n%s", other.String())
	}
}

func TestCloseLeavesNoPluginProcess(t *testing.T) {
	dir := twoVersions(t)
	m, err := New(Config{Dir: dir, DataDir: trustedData, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range []string{"1.0.0", "1.1.0"} {
		// Without a DB both calls would pick 1.1.0; use the versions directly.
		p, err := m.lookup("TEST", v)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := m.client(p)
		if _, err := c.call(ctx, "Precheck", (*sdk.RoleClient).Precheck, sdktest.NewFakeHost(), nil, testRequest(1)); err != nil {
			t.Fatal(err)
		}
	}
	execDir := m.ExecDir()
	if n := len(pluginProcesses(t, execDir)); n != 2 {
		t.Fatalf("%d plugin processes running, want 2", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(execDir); !os.IsNotExist(err) {
		t.Errorf("Close left the folder of checked copies: %v", err)
	}
	if pids := pluginProcesses(t, execDir); len(pids) != 0 {
		t.Errorf("plugin processes left after Close: %v", pids)
	}
	r, err := m.Role(ctx, 1, "TEST", nil)
	if err == nil {
		_, err = r.Precheck(ctx, sdktest.NewFakeHost(), testRequest(1))
	}
	if err == nil {
		t.Error("call after Close succeeded")
	}
}

func TestRescanSeesNewVersionAndRetiresRemoved(t *testing.T) {
	dir := t.TempDir()
	place(t, dir, "1.0.0", fileName("1.0.0", 2, 0), "")
	m := newManager(t, Config{Dir: dir})
	ctx := context.Background()
	if _, err := testRole(t, m, 1, nil).Precheck(ctx, sdktest.NewFakeHost(), testRequest(1)); err != nil {
		t.Fatal(err)
	}
	p, err := Install(ctx, dir, bins["1.1.0"], plugintrust.Load(trustedData))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Remove(ctx, dir, nil, "TEST", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := m.Rescan(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := testRole(t, m, 1, nil).Precheck(ctx, sdktest.NewFakeHost(), testRequest(2))
	if err != nil || res.Facts["version"] != "1.1.0" {
		t.Fatalf("after rescan: %v %v", res.Facts, err)
	}
	// Only the new version's process is left.
	if pids := pluginProcesses(t, m.ExecDir()); len(pids) != 1 {
		t.Errorf("processes %v, want only %s's", pids, p.Path)
	}
}

func TestRelativePluginsDir(t *testing.T) {
	dir := twoVersions(t)
	t.Chdir(filepath.Dir(dir))
	m := newManager(t, Config{Dir: filepath.Base(dir)})
	if l := m.List(); len(l.Plugins) != 2 || len(l.Refused) != 0 {
		t.Fatalf("relative dir: %+v", l)
	}
	if _, err := testRole(t, m, 1, nil).Precheck(context.Background(), sdktest.NewFakeHost(), testRequest(1)); err != nil {
		t.Fatal(err)
	}
}
