package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/dorissim"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestLayouts walks the wizard with the other release layouts and formats
// (the 2.x tar.gz one is TestWizard's): the plugins find each role's folder.
func TestLayouts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		layout dorissim.Layout
		format dorissim.Format
	}{
		{dorissim.Layout015, dorissim.TarGz},
		{dorissim.Layout12, dorissim.TarXz},
	} {
		t.Run(string(c.layout)+"-"+string(c.format), func(t *testing.T) {
			t.Parallel()
			s := start(t, sandbox.Options{Layout: c.layout, Format: c.format})
			ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
			defer cancel()
			plan := s.StandardPlan()
			pid, timings, err := s.Client().Walk(ctx, s, plan, nil)
			if err != nil {
				t.Fatalf("wizard (process %d): %v", pid, err)
			}
			t.Logf("steps: %v", timings)
			checkCluster(ctx, t, s, plan)
			checkHosts(t, s, plan)
		})
	}
}

// checkHosts looks at the hosts themselves: no FE was ever started before
// it was added (Doris would have logged it), and every BE runs with the
// open-files limit the plugin asked for, not the agent's own soft limit.
func checkHosts(t *testing.T, s *sandbox.Sandbox, plan sandbox.Plan) {
	t.Helper()
	byAddr := map[string]string{}
	for _, h := range s.Hosts.Hosts {
		byAddr[h.Addr] = h.Root // the host's /opt on the real file system
	}
	for _, fe := range plan.FEs[1:] {
		log, err := os.ReadFile(filepath.Join(byAddr[fe.Host], "doris/fe/log/fe.log"))
		if err != nil {
			t.Fatalf("fe.log of %s: %v", fe.Host, err)
		}
		if strings.Contains(string(log), "not added to the group") {
			t.Errorf("the FE on %s was started before it was added:\n%s", fe.Host, log)
		}
	}
	limit := regexp.MustCompile(`Max open files\s+(\d+)\s+(\d+)`)
	for _, be := range plan.BEs {
		pidText, err := os.ReadFile(filepath.Join(byAddr[be], "doris/be/bin/be.pid"))
		if err != nil {
			t.Fatalf("be.pid of %s: %v", be, err)
		}
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%s/limits", strings.TrimSpace(string(pidText))))
		if err != nil {
			t.Fatalf("limits of the BE on %s: %v", be, err)
		}
		m := limit.FindStringSubmatch(string(limits))
		if m == nil {
			t.Fatalf("no open-files line in the BE's limits:\n%s", limits)
		}
		soft, _ := strconv.Atoi(m[1])
		if soft < 10000 {
			t.Errorf("BE on %s runs with %d open files; the plugin should have raised it", be, soft)
		}
	}
}

// TestLowOpenFilesBE starts a BE on a host whose agent runs with a soft
// open-files limit of 1024 (a common distribution default): the plugin
// raises the limit for the BE, so start_be.sh's check passes.
func TestLowOpenFilesBE(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{Hosts: 1})
	ctx, cancel := deadline.Context(context.Background(), 3*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	h := s.Hosts.Hosts[0]
	agentPid := agentPID(t, s, 0)
	// Lower the running agent's soft limit, as if its host defaulted to 1024.
	if out, err := h.Exec(ctx, "prlimit", "--pid", strconv.Itoa(agentPid), "--nofile=1024:"); err != nil {
		t.Fatalf("prlimit: %v: %s", err, out)
	}
	if lim, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", agentPid)); !regexp.MustCompile(`Max open files\s+1024\s`).Match(lim) {
		t.Fatalf("the agent's limit was not lowered:\n%s", lim)
	}
	walkRest(ctx, t, c, s, pid, plan)
	checkHosts(t, s, plan)
}

// agentPID finds the doris-agent process of host i.
func agentPID(t *testing.T, s *sandbox.Sandbox, i int) int {
	t.Helper()
	pids, err := s.Hosts.Hosts[i].Pids(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.Contains(string(cmd), "doris-agent") {
			return p
		}
	}
	t.Fatalf("no doris-agent process on %s", s.Hosts.Hosts[i].Name)
	return 0
}

func mustStep(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64) []sandbox.Task {
	t.Helper()
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := sandbox.Failed(ts); len(f) > 0 {
		t.Fatalf("step failed:%s", sandbox.Describe(f))
	}
	return ts
}

// toDeployConfig installs plan's agents and services with s's package and
// returns the process, at DEPLOY_CONFIG.
func toDeployConfig(ctx context.Context, t *testing.T, s *sandbox.Sandbox, plan sandbox.Plan) int64 {
	t.Helper()
	c := s.Client()
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	return pid
}

// walkRest runs installService through installComplete for a process
// whose agents are installed.
func walkRest(ctx context.Context, t *testing.T, c *sandbox.Client, s *sandbox.Sandbox, pid int64, plan sandbox.Plan) {
	t.Helper()
	steps := []func() error{
		func() error {
			return c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256})
		},
		func() error { return c.DeployConfig(ctx, pid, plan) },
		func() error { return c.StartService(ctx, pid, plan) },
		func() error { return c.BuildCluster(ctx, pid, plan) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		mustStep(ctx, t, c, pid)
	}
	if _, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", pid), nil); err != nil {
		t.Fatal(err)
	}
}

// TestConfigFailuresSayWhatToFix deploys configs a role cannot use: each
// DEPLOY task fails with a message naming what to change, and a fixed
// config then deploys.
func TestConfigFailuresSayWhatToFix(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{Hosts: 1})
	ctx, cancel := deadline.Context(context.Background(), 3*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	plan.Brokers = nil
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	if err := c.InstallService(ctx, pid, plan, nil); err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)

	bad := plan
	bad.FEConf = strings.Replace(plan.FEConf, "http_port = 8030", "http_port = 80x30", 1)
	// /proc refuses new directories: the storage dir cannot exist.
	bad.BEConf = strings.Replace(plan.BEConf, "storage_root_path = ${DORIS_HOME}/storage;", "storage_root_path = /proc/doris-storage;", 1)
	if err := c.DeployConfig(ctx, pid, bad); err != nil {
		t.Fatal(err)
	}
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"DEPLOY_FE_CONFIG": {"http_port", "80x30"},
		"DEPLOY_BE_CONFIG": {"/proc/doris-storage"},
	}
	for _, task := range ts {
		if task.Status != "FAILURE" {
			t.Errorf("%s: %s, want FAILURE", task.TaskType, task.Status)
			continue
		}
		for _, w := range want[task.TaskType] {
			if !strings.Contains(sandbox.Str(task.Response), w) {
				t.Errorf("%s response does not name %q: %s", task.TaskType, w, sandbox.Str(task.Response))
			}
		}
	}
	// The operator fixes the configs and sends them again, in the same step.
	if err := c.DeployConfig(ctx, pid, plan); err != nil {
		t.Fatalf("deployConfig again after failures: %v", err)
	}
	mustStep(ctx, t, c, pid)
}
