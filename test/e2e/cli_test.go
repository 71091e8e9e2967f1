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
	// A manager that answers installComplete with the process as it ended
	// (newer ones) shows its status; the golden file holds the line
	// without it, so it fits both.
	if !regexp.MustCompile(`installComplete: process 1 ended( SUCCESS)?\n`).MatchString(out) {
		t.Errorf("deploy did not end with installComplete of process 1 (SUCCESS when the manager says)")
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

	// The read commands around it: a task's log (followed: it has ended),
	// the process's last step as JSON, and a day-2 operation followed to
	// its end.
	if log := cli(ctx, t, s, 0, "task", "log", "-f", "4"); !strings.Contains(log, "-- task 4 ended SUCCESS") {
		t.Errorf("task log -f 4:\n%s", log)
	}
	var shown struct {
		Process any `json:"process"`
		Tasks   []struct {
			ID       int64  `json:"id"`
			TaskType string `json:"taskType"`
			Status   string `json:"status"`
		} `json:"tasks"`
	}
	js = cli(ctx, t, s, 0, "process", "show", "1", "--format", "json")
	if err := json.Unmarshal([]byte(js), &shown); err != nil || shown.Process != nil || len(shown.Tasks) != 8 || shown.Tasks[0].Status != "SUCCESS" {
		t.Errorf("process show 1 --format json (the finished process's BUILD_CLUSTER tasks): %v\n%s", err, js)
	}
	// process list needs GET /api/process: a manager without it is named too old.
	switch code, list, errs := cliRun(ctx, t, s, "process", "list", "--cluster", "demo"); {
	case code == 0:
		if !regexp.MustCompile(`(?m)^1 +BUILD_CLUSTER +\d+ +SUCCESS +YES`).MatchString(list) {
			t.Errorf("process list:\n%s", list)
		}
	case code != 2 || !strings.Contains(errs, "this manager is too old to list processes (it has no GET /api/process)"):
		t.Errorf("process list: exit %d\n%s%s", code, list, errs)
	}
	restart := cli(ctx, t, s, 0, "cluster", "restart", "demo", "--node", hosts[2].Addr+":BROKER")
	if !regexp.MustCompile(`restart of cluster demo: process 2\n[\s\S]*task \d+ +RESTART_NODE +` + regexp.QuoteMeta(hosts[2].Addr) + ` +SUCCESS[\s\S]*process 2: every task done`).MatchString(restart) {
		t.Errorf("cluster restart --node %s:BROKER:\n%s", hosts[2].Addr, restart)
	}
	if _, errs := cliFails(ctx, t, s, "cluster", "destroy", "demo"); !strings.Contains(errs, "destroy asks for confirmation and there is no terminal to ask: add --yes") {
		t.Errorf("destroy without a terminal or --yes: %q", errs)
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

// cli runs the built dorismanager and wants exit code; it answers stdout.
func cli(ctx context.Context, t *testing.T, s *sandbox.Sandbox, code int, args ...string) string {
	t.Helper()
	got, out, errs := cliRun(ctx, t, s, args...)
	if got != code {
		t.Fatalf("dorismanager %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errs)
	}
	return out
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
	reEnded    = regexp.MustCompile(`(installComplete: process N ended) \w+$`)
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
		l = reEnded.ReplaceAllString(l, "$1")
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
	code, out, errs := cliRun(ctx, t, s, args...)
	if code != 2 {
		t.Fatalf("dorismanager %s: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

// cliRun runs the built dorismanager with the sandbox's connection in the
// environment (a token file, never a token argument): exit code, stdout,
// stderr.
func cliRun(ctx context.Context, t *testing.T, s *sandbox.Sandbox, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "dorismanager"), args...)
	cmd.Env = append(os.Environ(), "DORISMANAGER_SERVER="+s.URL, "DORISMANAGER_TOKEN_FILE="+filepath.Join(s.DataDir, "admin.token"),
		"DORISMANAGER_CA_FILE="+filepath.Join(s.DataDir, "pki", "bundle.crt"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatalf("dorismanager %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String(), errb.String()
}

// TestCLIDeployTerminal runs cluster deploy in a terminal (tmux) as a
// person would: the progress redrawn in place, and at a failed task (the
// second FE's query_port is taken) the question; the answer "s" skips the
// task, the deploy goes on without that FE and ends with the table.
func TestCLIDeployTerminal(t *testing.T) {
	t.Parallel()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is missing (.ci/run installs it)")
		}
		t.Skip("no tmux")
	}
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
	defer cancel()
	work := t.TempDir()
	top := writeTopology(t, s, work)
	hosts := s.Hosts.Hosts
	ln, err := sandbox.HoldPort(hosts[1], 9030)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	script := filepath.Join(work, "deploy.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\nexport DORISMANAGER_SERVER=%s DORISMANAGER_TOKEN_FILE=%s DORISMANAGER_CA_FILE=%s TERM=xterm-256color\n%s cluster deploy %s\necho EXIT=$?\nsleep 600\n",
		s.URL, filepath.Join(s.DataDir, "admin.token"), filepath.Join(s.DataDir, "pki", "bundle.crt"), filepath.Join(binDir, "dorismanager"), top)), 0o755); err != nil {
		t.Fatal(err)
	}
	session := fmt.Sprintf("dmcli%d", os.Getpid())
	if b, err := exec.CommandContext(ctx, tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "60", script).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v: %s", err, b)
	}
	defer exec.Command(tmux, "kill-session", "-t", session).Run()
	screen := func() string {
		b, _ := exec.Command(tmux, "capture-pane", "-p", "-S", "-", "-t", session).Output()
		return string(b)
	}
	waitFor := func(what string) string {
		t.Helper()
		for {
			sc := screen()
			if strings.Contains(sc, what) {
				return sc
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the terminal never showed %q:\n%s", what, sc)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	asked := waitFor("[r]etry, [s]kip (leave this node out), [a]bort?") // tmux drops trailing spaces
	t.Logf("the terminal at the question:\n%s", asked)
	for _, w := range []string{"step 2/5 INSTALL_SERVICE", "✗ INSTALL_FE", "FAILURE", "✓ INSTALL_BE", "port 9030 (query_port) is already in use",
		"task 5 INSTALL_FE on " + hosts[1].Addr + " failed: [r]etry"} {
		if !strings.Contains(asked, w) {
			t.Errorf("the terminal at the question lacks %q", w)
		}
	}
	if b, err := exec.Command(tmux, "send-keys", "-t", session, "s", "Enter").CombinedOutput(); err != nil {
		t.Fatalf("send-keys: %v: %s", err, b)
	}
	end := waitFor("EXIT=")
	t.Logf("the terminal at the end:\n%s", end)
	if !strings.Contains(end, "EXIT=0") {
		t.Errorf("deploy did not exit 0")
	}
	for _, w := range []string{"task 5 skipped: " + hosts[1].Addr + " FE is left out of the later steps", "step BUILD_CLUSTER done", "FOLLOWER (master)"} {
		if !strings.Contains(end, w) {
			t.Errorf("the terminal at the end lacks %q", w)
		}
	}
	if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(hosts[1].Addr) + ` +FE +FOLLOWER .* UP`).MatchString(end) {
		t.Errorf("the skipped FE is UP in the table")
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(hosts[1].Addr) + ` +BE .* UP`).MatchString(end) {
		t.Errorf("the BE of the host whose FE was skipped is not UP in the table")
	}
}

// TestCLIScaleOut grows a cluster with the client: deploy a file with an
// FE and two BEs on two hosts, then scale-out with examples/topology.yaml
// (three FEs, three BEs, a broker): only the nodes the cluster lacks are
// installed, the new FEs join the running master, and every node is UP.
func TestCLIScaleOut(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
	defer cancel()
	work := t.TempDir()
	full := writeTopology(t, s, work)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	// The small file: the full one without host3 and with one FE and two BEs.
	text := string(b)
	small := text[:strings.Index(text, "  - name: host3")] + "fe:\n  - host: host1\nbe:\n  - host: host1\n  - host: host2\n"
	smallPath := filepath.Join(work, "small.yaml")
	if err := os.WriteFile(smallPath, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	out := cli(ctx, t, s, 0, "cluster", "deploy", smallPath)
	t.Logf("deploy of the small file:\n%s", out)
	if n := strings.Count(out, " UP "); n != 3 {
		t.Fatalf("the small cluster's table has %d nodes UP, want 3", n)
	}
	// deploy refuses to grow a cluster: that is scale-out's.
	if _, errs := cliFails(ctx, t, s, "cluster", "deploy", full); !strings.Contains(errs, `cluster "demo" exists with 3 nodes and `+full+` adds 4: add them with dorismanager cluster scale-out `+full) {
		t.Errorf("deploy of the full file on the small cluster: %q", errs)
	}
	out = cli(ctx, t, s, 0, "cluster", "scale-out", full)
	t.Logf("scale-out:\n%s", out)
	hosts := s.Hosts.Hosts
	for _, w := range []string{
		"task \\d+ +INSTALL_AGENT +" + regexp.QuoteMeta(hosts[1].Addr) + " +SUCCESS",
		"task \\d+ +INSTALL_AGENT +" + regexp.QuoteMeta(hosts[2].Addr) + " +SUCCESS",
		"task \\d+ +INSTALL_FE +" + regexp.QuoteMeta(hosts[1].Addr) + " +SUCCESS",
		"task \\d+ +INSTALL_FE +" + regexp.QuoteMeta(hosts[2].Addr) + " +SUCCESS",
		"task \\d+ +INSTALL_BE +" + regexp.QuoteMeta(hosts[2].Addr) + " +SUCCESS",
		"task \\d+ +INSTALL_BROKER +" + regexp.QuoteMeta(hosts[2].Addr) + " +SUCCESS",
	} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("scale-out's progress has no line like %q", w)
		}
	}
	// Nothing of the first deploy is installed again.
	for _, again := range []string{"INSTALL_AGENT +" + regexp.QuoteMeta(hosts[0].Addr), "INSTALL_FE +" + regexp.QuoteMeta(hosts[0].Addr),
		"INSTALL_BE +" + regexp.QuoteMeta(hosts[0].Addr), "INSTALL_BE +" + regexp.QuoteMeta(hosts[1].Addr)} {
		if regexp.MustCompile(again).MatchString(out) {
			t.Errorf("scale-out installed %s again", again)
		}
	}
	if n := strings.Count(out, " UP "); n != 7 {
		t.Errorf("the grown cluster's table has %d nodes UP, want 7", n)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(hosts[0].Addr) + ` +FE +FOLLOWER \(master\)`).MatchString(out) {
		t.Errorf("the first FE is no longer the master")
	}
}
