package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// bins are test role binaries built once by TestMain, by variant, each
// signed with testKey.
var bins = map[string]string{}

// testKey is the private key file that signs the test plugins; trustedData
// is a data dir that trusts it, the default of newManager.
var testKey, trustedData string

// builds lists the variants and their -X stamps.
var builds = map[string][]string{
	"1.0.0": {"main.version=1.0.0"},
	"1.1.0": {"main.version=1.1.0"},
	"api2":  {"main.version=2.0.0", "main.apiMajor=3"},
	"wire2": {"main.version=1.2.0", "main.wireMajor=3"},
	"crash": {"main.version=1.2.0", "main.crashAtStart=1"},
	"hang":  {"main.version=1.2.0", "main.hangAtStart=1"},
	"mute":  {"main.version=1.2.0", "main.describeHang=1"},
	"liar":  {"main.version=1.2.0", "main.lieOverWire=1"},
	// An Info that breaks a rule of sdk.Info.Validate.
	"badhome": {"main.version=1.7.0", "main.home=FE_HOME"},
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "pluginhost-bins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	for name, stamps := range builds {
		out := filepath.Join(tmp, "testrole-"+name)
		var ld []string
		for _, s := range stamps {
			ld = append(ld, "-X", s)
		}
		cmd := exec.Command("go", "build", "-o", out, "-ldflags", strings.Join(ld, " "), "./testdata/testrole")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build test role %s: %v\n", name, err)
			return 1
		}
		bins[name] = out
	}
	testKey = filepath.Join(tmp, "test-key")
	pub, priv, err := plugintrust.GenerateKey()
	if err == nil {
		err = plugintrust.WriteKeyPair(testKey, pub, priv)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, out := range bins {
		if _, _, err := Sign(testKey, out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	trustedData = filepath.Join(tmp, "data")
	if _, _, err := plugintrust.Trust(trustedData, pub); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// trustTestKey makes dataDir trust testKey.
func trustTestKey(t testing.TB, dataDir string) {
	t.Helper()
	b, err := os.ReadFile(testKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := plugintrust.ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := plugintrust.Trust(dataDir, pub); err != nil {
		t.Fatal(err)
	}
}

// fileName is the canonical name of the test role at a version and API.
func fileName(version string, major, minor int) string {
	return fmt.Sprintf("doris-role-test_v%s_x%d.%d_%s_%s", version, major, minor, runtime.GOOS, runtime.GOARCH)
}

// place copies a built variant into dir/test/name with a checksum file
// signed with testKey; sum overrides the checksum when not "".
func place(t testing.TB, dir, variant, name, sum string) string {
	t.Helper()
	roleDir := filepath.Join(dir, "test")
	if err := os.MkdirAll(roleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(roleDir, name)
	if err := copyFileAtomic(bins[variant], dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if sum == "" {
		var err error
		if sum, err = fileSHA256(dest); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dest+SumSuffix, sumFileContent(sum, name), 0o644); err != nil {
		t.Fatal(err)
	}
	signSum(t, dest, testKey)
	return dest
}

// signSum signs the checksum file beside a plugin file with keyFile.
func signSum(t testing.TB, path, keyFile string) {
	t.Helper()
	priv, err := plugintrust.ReadPrivateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(path + SumSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+SigSuffix, plugintrust.Sign(priv, sum), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSum is the SHA-256 of the test role's file of version (API 2.0) in
// plugins dir dir.
func fileSum(t testing.TB, dir, version string) string {
	t.Helper()
	sum, err := fileSHA256(filepath.Join(dir, "test", fileName(version, 2, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// twoVersions is a plugins dir with test role 1.0.0 and 1.1.0.
func twoVersions(t testing.TB) string {
	dir := t.TempDir()
	place(t, dir, "1.0.0", fileName("1.0.0", 2, 0), "")
	place(t, dir, "1.1.0", fileName("1.1.0", 2, 0), "")
	return dir
}

// testStore is a fresh SQLite store in dataDir ("" for a temp dir).
func testStore(t testing.TB, dataDir string) *store.Store {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	st, err := store.Open("", dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newCluster creates a cluster named name.
func newCluster(t testing.TB, st *store.Store, name string) store.Cluster {
	t.Helper()
	c, err := st.CreateCluster(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runningTask gives cluster a RUNNING task.
func runningTask(t testing.TB, st *store.Store, clusterID int64) {
	t.Helper()
	ctx := context.Background()
	proc := store.Process{ClusterID: clusterID, UserID: clusterID, Status: store.ProcessRunning}
	if err := st.CreateProcess(ctx, &proc); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTasks(ctx, []store.Task{{ProcessID: proc.ID, Status: store.StatusRunning, TaskType: "INSTALL_FE"}}); err != nil {
		t.Fatal(err)
	}
}

// testRole is the TEST role of cluster with taskLog (nil: none); the
// test fails when the manager has no such role.
func testRole(t testing.TB, m *Manager, cluster int64, taskLog io.Writer) sdk.Remote {
	t.Helper()
	r, err := m.Role(context.Background(), cluster, "TEST", taskLog)
	if err != nil {
		t.Fatalf("Role(%d, TEST): %v", cluster, err)
	}
	return r
}

func newManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Debug})
	}
	if cfg.DataDir == "" {
		cfg.DataDir = trustedData
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// pluginProcesses lists the pids of running processes whose binary lies
// under dir.
func pluginProcesses(t testing.TB, dir string) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/exe")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		exe, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			continue
		}
		var pid int
		fmt.Sscanf(strings.TrimPrefix(p, "/proc/"), "%d/exe", &pid)
		pids = append(pids, pid)
	}
	return pids
}

// notifyWriter collects text and closes a channel once it contains every
// wanted string.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want []string
	done chan struct{}
}

func newNotifyWriter(want ...string) *notifyWriter {
	return &notifyWriter{want: want, done: make(chan struct{})}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case <-w.done:
		return len(p), nil
	default:
	}
	for _, s := range w.want {
		if !strings.Contains(w.buf.String(), s) {
			return len(p), nil
		}
	}
	close(w.done)
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func testRequest(taskID int64) sdk.Request {
	n := sdk.Node{Host: "10.0.0.1", Role: "TEST", InstallDir: "/opt/doris/test"}
	return sdk.Request{TaskID: taskID, Node: n, Cluster: sdk.Cluster{ID: 1, Name: "c1", Nodes: []sdk.Node{n}}, Conf: "k = v\n"}
}

// runCLI calls the CLI method args name with the rest of args as
// dorismanager's plugins commands do, printing an error as they do; it
// answers their exit code (0, or 1 with the error on stderr). Argument
// counts and unknown commands are the command line's business
// (cmd/dorismanager tests them).
func runCLI(ctx context.Context, t *testing.T, c CLI, args ...string) int {
	t.Helper()
	var err error
	switch a := args[1:]; {
	case args[0] == "list" && len(a) == 0:
		err = c.List(ctx)
	case args[0] == "verify" && len(a) == 0:
		err = c.Verify(ctx)
	case args[0] == "install" && len(a) == 1:
		err = c.Install(ctx, a[0])
	case args[0] == "remove" && len(a) == 2:
		err = c.Remove(ctx, a[0], a[1])
	case args[0] == "pin" && len(a) == 3:
		err = c.Pin(ctx, a[0], a[1], a[2])
	case args[0] == "unpin" && len(a) == 2:
		err = c.Unpin(ctx, a[0], a[1])
	case args[0] == "trust" && len(a) == 1:
		err = c.Trust(a[0])
	case args[0] == "untrust" && len(a) == 1:
		err = c.Untrust(a[0])
	case args[0] == "keys" && len(a) == 0:
		err = c.Keys()
	case args[0] == "keygen" && len(a) == 1:
		err = c.Keygen(a[0])
	case args[0] == "sign" && len(a) == 3 && a[0] == "--key":
		err = c.Sign(a[1], a[2])
	default:
		t.Fatalf("runCLI %q: no such call", args)
	}
	if err != nil {
		fmt.Fprintf(c.Stderr, "plugins %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
