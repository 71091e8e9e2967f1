package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultPackage404: a packageUrl that answers 404 fails every INSTALL_*
// task saying so and leaves nothing on the hosts; once the package is
// where the URL points, retry installs it and the wizard completes.
func TestFaultPackage404(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	const name = "nope.tar.gz"
	url := s.FileURL(name)

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, url)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	ts := failedInstall(ctx, t, c, pid, plan, s.PackageSHA256, func(resp string) bool {
		return strings.Contains(resp, url) && strings.Contains(resp, "404")
	})
	for _, h := range s.Hosts.Hosts {
		nothingInstalled(t, h.Root)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The operator puts the package where the URL points, and retries.
	if err := os.Link(s.PackagePath, filepath.Join(filepath.Dir(s.PackagePath), name)); err != nil {
		t.Fatal(err)
	}
	for _, task := range ts {
		if err := c.RetryTask(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	again, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := sandbox.Failed(again); len(f) > 0 || len(again) != len(ts) {
		t.Fatalf("after retry: %d tasks (want %d), failed:%s", len(again), len(ts), sandbox.Describe(f))
	}
	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatalf("the rest of the wizard: %v", err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// TestFaultPackageChecksum: a packageSha256 that does not match fails every
// INSTALL_* task naming both sums and leaves nothing on the hosts. The
// checksum is part of installService, which cannot be sent again once the
// process is at INSTALL_SERVICE, so retry fails the same way; the way out
// is to complete (close) this process and start a new one with the right
// checksum, which then builds a healthy cluster on the same hosts.
func TestFaultPackageChecksum(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	sum := sha256.Sum256([]byte("not the package"))
	wrong := hex.EncodeToString(sum[:])

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	mismatch := func(resp string) bool {
		return strings.Contains(resp, "SHA-256") && strings.Contains(resp, wrong) && strings.Contains(resp, s.PackageSHA256)
	}
	ts := failedInstall(ctx, t, c, pid, plan, wrong, mismatch)
	for _, h := range s.Hosts.Hosts {
		nothingInstalled(t, h.Root)
	}
	if t.Failed() {
		t.FailNow()
	}

	// installService cannot be sent again with the right checksum...
	err = c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256})
	if err == nil || !strings.Contains(err.Error(), "INSTALL_SERVICE") {
		t.Fatalf("installService again: %v; want a refusal naming the step the process is at", err)
	}
	// ...and retry runs with the same checksum, failing the same way.
	if err := c.RetryTask(ctx, ts[0].ID); err != nil {
		t.Fatal(err)
	}
	again, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range again {
		if task.ID == ts[0].ID && (task.Status != "FAILURE" || !mismatch(sandbox.Str(task.Response))) {
			t.Fatalf("retried task %d: %s %q; want the same checksum failure", task.ID, task.Status, sandbox.Str(task.Response))
		}
	}
	nothingInstalled(t, s.Hosts.Hosts[0].Root)

	// The way out: close this process and start again with the right sum.
	if _, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"processId": pid}); err != nil {
		t.Fatal(err)
	}
	pid2, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatalf("a new process after closing the failed one: %v", err)
	}
	mustStep(ctx, t, c, pid2)
	if _, err := c.WalkFrom(ctx, s, pid2, plan, "INSTALL_SERVICE"); err != nil {
		t.Fatalf("the wizard with the right checksum: %v", err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// failedInstall sends installService with checksum sum and wants every INSTALL_* task to end
// in FAILURE with a response that ok accepts. It returns the tasks.
func failedInstall(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64, plan sandbox.Plan, sum string, ok func(string) bool) []sandbox.Task {
	t.Helper()
	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": sum}); err != nil {
		t.Fatal(err)
	}
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := len(plan.FEs) + len(plan.BEs) + len(plan.Brokers)
	if len(ts) != want {
		t.Fatalf("%d INSTALL_SERVICE tasks, want %d:%s", len(ts), want, sandbox.Describe(ts))
	}
	for i, task := range ts {
		resp := sandbox.Str(task.Response)
		if i == 0 {
			t.Logf("task %d %s on %s: %s", task.ID, task.TaskType, task.Host, resp)
		}
		if task.Status != "FAILURE" || !ok(resp) {
			t.Errorf("task %d %s on %s: %s %q; want FAILURE saying why", task.ID, task.TaskType, task.Host, task.Status, resp)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return ts
}

// nothingInstalled checks, on the host's real /opt (root), that the install
// dir holds only the agent: no role folders, no half-unpacked or
// half-copied temp dirs, no package cache, and that the agent kept no
// partial download.
func nothingInstalled(t *testing.T, root string) {
	t.Helper()
	base := filepath.Join(root, strings.TrimPrefix(sandbox.InstallDir, "/opt/"))
	ents, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "agent" {
			t.Errorf("%s holds %s after a failed install", sandbox.InstallDir, e.Name())
		}
	}
	for _, d := range []string{"agent/data/tmp", "agent/data/cache"} {
		ents, err := os.ReadDir(filepath.Join(base, d))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("%s/%s holds %s after a failed download", sandbox.InstallDir, d, e.Name())
		}
	}
}
