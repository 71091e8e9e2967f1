package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// TestDemoUpDown runs the demo program as `make demo` and `make demo-down`
// do, and checks that down leaves no process, namespace, link or file.
//
// Not parallel: demo down restores vm.max_map_count, which is global to the
// machine, to what it was at demo up, under the feet of any BE another test
// is starting. Go runs the tests that are not parallel first, alone.
func TestDemoUpDown(t *testing.T) {
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	demo := filepath.Join(tmp, "demo-bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", demo, "./test/demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v: %s", err, out)
	}
	dir := filepath.Join(tmp, "demo")
	run := func(args ...string) string {
		cmd := exec.CommandContext(ctx, demo, append(args, "--dir", dir)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	down := func() { run("down") }
	out := run("up", "--bin", binDir)
	downed := false
	defer func() {
		if !downed {
			down()
		}
	}()
	for _, want := range []string{"step 4 BUILD_CLUSTER", "SECURE_CLUSTER", "root's password, revealed once", "mysql> SHOW FRONTENDS;",
		"FOLLOWER  true      true", "-P 9030 -uroot -p'",
		"/api/server/agentList?clusterId=1", "token:      dm_"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo up output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		ManagerPID int             `json:"managerPid"`
		Hosts      testhosts.State `json:"hosts"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if !testhosts.PidAlive(st.ManagerPID) {
		t.Errorf("the manager (pid %d) does not outlive demo up", st.ManagerPID)
	}
	// Every process of the hosts, to check after down.
	var pids []int
	for _, h := range st.Hosts.Hosts {
		o, err := exec.Command("ip", "netns", "pids", h.NS).Output()
		if err != nil {
			t.Fatalf("ip netns pids %s: %v", h.NS, err)
		}
		for _, f := range strings.Fields(string(o)) {
			var p int
			if _, err := fmt.Sscan(f, &p); err == nil {
				pids = append(pids, p)
			}
		}
	}
	if len(pids) < 3*3 { // sshd, agent and at least one Doris process per host
		t.Errorf("only %d processes in the demo's namespaces after up", len(pids))
	}
	down()
	downed = true
	for _, p := range append(pids, st.ManagerPID) {
		if testhosts.PidAlive(p) {
			t.Errorf("pid %d still runs after down", p)
		}
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	links, _ := exec.Command("ip", "-br", "link").Output()
	for _, h := range st.Hosts.Hosts {
		if strings.Contains(string(ns), h.NS) || strings.Contains(string(links), h.Veth) {
			t.Errorf("namespace %s or link %s left after down", h.NS, h.Veth)
		}
	}
	if strings.Contains(string(links), st.Hosts.Bridge) {
		t.Errorf("bridge %s left after down", st.Hosts.Bridge)
	}
	for _, d := range []string{dir, st.Hosts.Dir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after down", d)
		}
	}
}
