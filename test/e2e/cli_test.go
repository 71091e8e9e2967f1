package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestCLIDeploy deploys the test cluster with the client, as an operator
// would: examples/topology.yaml with the test hosts' addresses, the test
// package and key, run by the built `dorismanager cluster deploy` (output
// to a pipe: the plain progress lines). It checks the final table, `cluster
// display --format json`, the progress against a golden file (ids, times,
// addresses normalised), and that a second run finds every node there and
// changes nothing.
func TestCLIDeploy(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
	defer cancel()
	work := t.TempDir()
	top := writeTopology(t, s, work)

	out := cli(ctx, t, s, 0, "cluster", "deploy", top, "--timings")
	t.Logf("cluster deploy:\n%s", out)
	hosts := s.Hosts.Hosts
	// The final table: every node UP, the first FE the master.
	want := []string{
		hosts[0].Addr + ` +FE +FOLLOWER \(master\) +edit_log=9010 http=8030 query=9030 rpc=9020 +UP`,
		hosts[1].Addr + ` +FE +FOLLOWER +edit_log=9010 http=8030 query=9030 rpc=9020 +UP`,
		hosts[2].Addr + ` +FE +OBSERVER +edit_log=9010 http=8030 query=9030 rpc=9020 +UP`,
		hosts[0].Addr + ` +BE +- +be=9060 brpc=8060 heartbeat_service=9050 webserver=8040 +UP`,
		hosts[2].Addr + ` +BROKER +- +broker_ipc=8000 +UP`,
	}
	for _, w := range want {
		if !regexp.MustCompile(`(?m)^` + w).MatchString(out) {
			t.Errorf("the final table has no line like %q", w)
		}
	}
	for _, step := range []string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"} {
		if !regexp.MustCompile(`(?m)^` + step + ` +\d+ +[\d.]+s +`).MatchString(out) {
			t.Errorf("--timings has no line for %s", step)
		}
	}
	checkGolden(t, "cli_deploy.golden", normaliseProgress(out, s))

	// display --format json is the API's status as it came.
	var st struct {
		ClusterID int64  `json:"clusterId"`
		Name      string `json:"name"`
		Nodes     []struct {
			Host       string         `json:"host"`
			Role       string         `json:"role"`
			FENodeType *string        `json:"feNodeType"`
			Master     bool           `json:"master"`
			Status     string         `json:"status"`
			Ports      map[string]int `json:"ports"`
		} `json:"nodes"`
	}
	js := cli(ctx, t, s, 0, "cluster", "display", "demo", "--format", "json")
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("display --format json: %v\n%s", err, js)
	}
	if st.Name != "demo" || len(st.Nodes) != 7 {
		t.Fatalf("display --format json: cluster %q with %d nodes, want demo with 7:\n%s", st.Name, len(st.Nodes), js)
	}
	masters := 0
	for _, n := range st.Nodes {
		if n.Status != "UP" || len(n.Ports) == 0 {
			t.Errorf("node %s %s: status %s, ports %v", n.Host, n.Role, n.Status, n.Ports)
		}
		if n.Master {
			masters++
			if n.Host != hosts[0].Addr || n.Role != "FE" {
				t.Errorf("the master is %s %s, want the FE on %s (the file's master)", n.Host, n.Role, hosts[0].Addr)
			}
		}
	}
	if masters != 1 {
		t.Errorf("%d masters in display --format json", masters)
	}
	if list := cli(ctx, t, s, 0, "cluster", "list"); !regexp.MustCompile(`(?m)^1 +demo +`).MatchString(list) {
		t.Errorf("cluster list:\n%s", list)
	}

	// A second run finds every node of the file and sends nothing.
	again := cli(ctx, t, s, 0, "cluster", "deploy", top)
	if !strings.Contains(again, `cluster "demo" has every node of `+top+` already: nothing to do`) || strings.Contains(again, "step 1/5") {
		t.Errorf("second deploy:\n%s", again)
	}
	if n := countAudit(ctx, t, s, "installAgent"); n != 1 {
		t.Errorf("installAgent was called %d times over both runs, want 1", n)
	}
	if n := countAudit(ctx, t, s, "POST /api/cluster"); n != 1 {
		t.Errorf("a cluster was created %d times over both runs, want 1", n)
	}
	// scale-out with the same file has nothing to add either.
	if so := cli(ctx, t, s, 0, "cluster", "scale-out", top); !strings.Contains(so, "nothing to do") {
		t.Errorf("scale-out of a complete cluster:\n%s", so)
	}
}

// writeTopology is examples/topology.yaml for the sandbox: its hosts, its
// package, its key, and the simulator's open-files minimum.
func writeTopology(t testing.TB, s *sandbox.Sandbox, dir string) string {
	t.Helper()
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, s.Hosts.Keys.Ed25519, 0o600); err != nil {
		t.Fatal(err)
	}
	text := string(b)
	repl := []string{
		"keyFile: ~/.ssh/id_ed25519", "keyFile: " + key,
		"url: https://downloads.apache.org/doris/2.0/2.0.3/apache-doris-2.0.3-bin-x64.tar.gz", "url: " + s.PackageURL,
		"  startTimeout: 120s", "  startTimeout: 120s\n  aliveTimeout: 120s\n  minOpenFiles: \"10000\"",
		"javaHome: /opt/jdk", "javaHome: " + sandbox.JavaHome,
	}
	for i, h := range s.Hosts.Hosts {
		repl = append(repl, fmt.Sprintf("address: 10.0.0.1%d", i+1), "address: "+h.Addr)
	}
	for i := 0; i < len(repl); i += 2 {
		if !strings.Contains(text, repl[i]) {
			t.Fatalf("examples/topology.yaml no longer has %q", repl[i])
		}
		text = strings.Replace(text, repl[i], repl[i+1], 1)
	}
	path := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs the built dorismanager with the sandbox's connection in the
// environment (a token file, never a token argument) and wants exit code.
func cli(ctx context.Context, t *testing.T, s *sandbox.Sandbox, code int, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "dorismanager"), args...)
	cmd.Env = append(os.Environ(), "DORISMANAGER_SERVER="+s.URL, "DORISMANAGER_TOKEN_FILE="+filepath.Join(s.DataDir, "admin.token"),
		"DORISMANAGER_CA_FILE="+filepath.Join(s.DataDir, "pki", "bundle.crt"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("dorismanager %s: %v", strings.Join(args, " "), err)
	}
	if got != code {
		t.Fatalf("dorismanager %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out.String(), errb.String())
	}
	return out.String()
}

// countAudit counts the audit log's entries whose route contains route.
func countAudit(ctx context.Context, t *testing.T, s *sandbox.Sandbox, route string) int {
	t.Helper()
	r, err := s.Client().OK(ctx, http.MethodGet, "/api/audit?limit=1000", nil)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Entries []struct {
			Method string `json:"method"`
			Route  string `json:"route"`
		} `json:"entries"`
	}
	if err := r.Decode(&page); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range page.Entries {
		if strings.Contains(e.Method+" "+e.Route, route) && (route != "POST /api/cluster" || e.Route == "/api/cluster") {
			n++
		}
	}
	return n
}

var (
	reStamp    = regexp.MustCompile(`^\[ *[\d.]+s\]`)
	reDuration = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s)\b`)
	reIDs      = regexp.MustCompile(`\b(task|agent|pid|process|id) \d+`)
	reSpaces   = regexp.MustCompile(`  +`)
)

// normaliseProgress keeps the progress lines of a deploy's output with
// what changes from run to run taken out: times, ids, the hosts'
// addresses. Tasks of one step run at once, so their lines are sorted
// within the step, and RUNNING lines (a short task may end between two
// reads) are left out.
func normaliseProgress(out string, s *sandbox.Sandbox) string {
	var lines, block []string
	flush := func() {
		sort.Strings(block)
		lines = append(lines, block...)
		block = nil
	}
	for _, l := range strings.Split(out, "\n") {
		if !reStamp.MatchString(l) {
			continue
		}
		l = reStamp.ReplaceAllString(l, "[T]")
		for i, h := range s.Hosts.Hosts {
			l = strings.ReplaceAll(l, h.Addr, fmt.Sprintf("host%d", i+1))
		}
		l = reDuration.ReplaceAllString(l, "D")
		l = reIDs.ReplaceAllString(l, "$1 N")
		l = reSpaces.ReplaceAllString(l, " ")
		switch {
		case strings.HasPrefix(l, "[T] task N") && strings.Contains(l, " RUNNING"):
		case strings.HasPrefix(l, "[T] task N"):
			block = append(block, l)
		default:
			flush()
			lines = append(lines, l)
		}
	}
	flush()
	return strings.Join(lines, "\n") + "\n"
}

// checkGolden compares got with testdata/name; DM_UPDATE_GOLDEN=1 rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("DM_UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (DM_UPDATE_GOLDEN=1 writes it)", err)
	}
	if got != string(want) {
		t.Errorf("progress output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestCLIDeployResume: a deploy that fails stops, says how to resume and
// exits non-zero; run again after the fix it resumes the same process at
// its step. First the key is one no host accepts (INSTALL_AGENT fails; the
// re-run sends installAgent again with the fixed file's key), then port
// 9030 is taken on the second FE's host (its INSTALL_FE precheck fails; the
// re-run retries the task once the port is free).
func TestCLIDeployResume(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
	defer cancel()
	work := t.TempDir()
	top := writeTopology(t, s, work)
	good, err := os.ReadFile(filepath.Join(work, "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "id_ed25519"), s.Hosts.Keys.Unauthorized, 0o600); err != nil {
		t.Fatal(err)
	}
	hosts := s.Hosts.Hosts
	ln, err := sandbox.HoldPort(hosts[1], 9030)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	out, errs := cliFails(ctx, t, s, "cluster", "deploy", top)
	t.Logf("first run:\n%s%s", out, errs)
	resume := "dorismanager cluster deploy " + top
	for _, w := range []string{"stopped at INSTALL_AGENT of process 1. Fix the cause, then resume (failed tasks are retried) with:\n", "   " + resume + "\n",
		"task 1 INSTALL_AGENT on " + hosts[0].Addr + " FAILED: ", "last lines of its log (dorismanager task log 1):"} {
		if !strings.Contains(out, w) {
			t.Errorf("first run's output lacks %q", w)
		}
	}
	if !strings.Contains(errs, "dorismanager: process 1 stopped at INSTALL_AGENT: task 1, 2, 3 failed (resume with: "+resume+")") {
		t.Errorf("first run's error: %q", errs)
	}

	if err := os.WriteFile(filepath.Join(work, "id_ed25519"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs = cliFails(ctx, t, s, "cluster", "deploy", top)
	t.Logf("second run:\n%s%s", out, errs)
	for _, w := range []string{"resuming process 1 of cluster \"demo\" at INSTALL_AGENT", "sending installAgent again with the file's SSH settings",
		"stopped at INSTALL_SERVICE of process 1", "INSTALL_FE on " + hosts[1].Addr + " FAILED: "} {
		if !strings.Contains(out, w) {
			t.Errorf("second run's output lacks %q", w)
		}
	}
	if !strings.Contains(errs, "9030") && !strings.Contains(out, "9030") {
		t.Errorf("the failed INSTALL_FE does not name port 9030:\n%s", out)
	}

	ln.Close()
	out = cli(ctx, t, s, 0, "cluster", "deploy", top)
	t.Logf("third run:\n%s", out)
	if !regexp.MustCompile(`resuming process 1 of cluster "demo" at INSTALL_SERVICE[\s\S]*retrying task \d+ INSTALL_FE on ` + regexp.QuoteMeta(hosts[1].Addr)).MatchString(out) {
		t.Errorf("third run did not resume INSTALL_SERVICE retrying the failed INSTALL_FE")
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(hosts[1].Addr) + ` +FE +FOLLOWER +.* UP`).MatchString(out) {
		t.Errorf("third run's table lacks the second FE UP")
	}
	if n := countAudit(ctx, t, s, "installAgent"); n != 2 {
		t.Errorf("installAgent was called %d times, want 2 (the first run and the re-run with the fixed key)", n)
	}
	if n := countAudit(ctx, t, s, "POST /api/cluster"); n != 1 {
		t.Errorf("a cluster was created %d times, want 1", n)
	}
}

// cliFails runs dorismanager and wants it to fail (exit 2); it answers
// stdout and stderr.
func cliFails(ctx context.Context, t *testing.T, s *sandbox.Sandbox, args ...string) (string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "dorismanager"), args...)
	cmd.Env = append(os.Environ(), "DORISMANAGER_SERVER="+s.URL, "DORISMANAGER_TOKEN_FILE="+filepath.Join(s.DataDir, "admin.token"),
		"DORISMANAGER_CA_FILE="+filepath.Join(s.DataDir, "pki", "bundle.crt"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("dorismanager %s: %v, want exit 2\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}
