package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
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

// failedInstall sends installService with checksum sum (none: "") and wants every INSTALL_* task to end
// in FAILURE with a response that ok accepts. It returns the tasks.
func failedInstall(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64, plan sandbox.Plan, sum string, ok func(string) bool) []sandbox.Task {
	t.Helper()
	var extra map[string]any
	if sum != "" {
		extra = map[string]any{"packageSha256": sum}
	}
	if err := c.InstallService(ctx, pid, plan, extra); err != nil {
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

// TestFaultPackageChecksumPublished: installService names no checksum and
// the .sha512 published beside the package does not match it: every
// INSTALL_* task fails naming SHA-512 and both sums, and nothing is
// installed. The package URL carries a password: no answer, task log or
// manager log shows it.
func TestFaultPackageChecksumPublished(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	// The real package under another name, with the SHA-512 of something
	// else published beside it.
	const name = "apache-doris-tampered-bin-x64.tar.gz"
	path := filepath.Join(filepath.Dir(s.PackagePath), name)
	if err := os.Link(s.PackagePath, path); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512([]byte("not the package"))
	wrong := hex.EncodeToString(sum[:])
	if err := os.WriteFile(path+".sha512", []byte(wrong+"  "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "pw-secret-7f3a"
	url := strings.Replace(s.FileURL(name), "http://", "http://mirror:"+secret+"@", 1)

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, url)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	ts := failedInstall(ctx, t, c, pid, plan, "", func(resp string) bool {
		return strings.Contains(resp, "SHA-512 is "+s.PackageSHA512+", expected "+wrong)
	})
	for _, h := range s.Hosts.Hosts {
		nothingInstalled(t, h.Root)
	}
	for _, task := range ts {
		log, err := c.TaskLogText(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log, "the host checks its SHA-512 "+wrong+", published at http://mirror:***@") {
			t.Errorf("task %d: the log does not say which checksum the host checks:\n%s", task.ID, log)
		}
		info, err := c.TaskInfo(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		for what, text := range map[string]string{"log": log, "response": sandbox.Str(info.Response), "result": sandbox.Str(info.Result)} {
			if strings.Contains(text, secret) {
				t.Errorf("task %d: its %s shows the URL's password", task.ID, what)
			}
		}
	}
	if b, err := os.ReadFile(s.ManagerLog()); err != nil || strings.Contains(string(b), secret) {
		t.Errorf("the manager's log shows the URL's password (or cannot be read: %v)", err)
	}
}

// TestFaultPackageChecksumMissing: a package with no checksum given or
// published is refused at installService, saying what to do; allowed
// explicitly, it installs, every INSTALL_* task's log says it is
// unverified, and the cluster comes up.
func TestFaultPackageChecksumMissing(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	const name = "apache-doris-unsigned-bin-x64.tar.gz"
	if err := os.Link(s.PackagePath, filepath.Join(filepath.Dir(s.PackagePath), name)); err != nil {
		t.Fatal(err)
	}
	url := s.FileURL(name)

	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, url)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(ctx, t, c, pid)
	err = c.InstallService(ctx, pid, plan, nil)
	if err == nil || !strings.Contains(err.Error(), "packageSha256 is required") || !strings.Contains(err.Error(), url+".sha512") ||
		!strings.Contains(err.Error(), "allowUnverifiedPackage") {
		t.Fatalf("installService of a package without a checksum: %v; want a refusal saying what to do", err)
	}
	if ts, err := c.CurrentTasks(ctx, pid); err != nil || len(ts) != len(plan.Hosts) || ts[0].TaskType != "INSTALL_AGENT" {
		t.Fatalf("after the refusal the process is not at INSTALL_AGENT: %v %s", err, sandbox.Describe(ts))
	}

	if err := c.InstallService(ctx, pid, plan, map[string]any{"allowUnverifiedPackage": true}); err != nil {
		t.Fatalf("installService allowing an unverified package: %v", err)
	}
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := sandbox.Failed(ts); len(f) > 0 {
		t.Fatalf("INSTALL_SERVICE failed:%s", sandbox.Describe(f))
	}
	for _, task := range ts {
		log, err := c.TaskLogText(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log, "WARNING: package "+url+" is UNVERIFIED") {
			t.Errorf("task %d %s on %s: the log does not say the package is unverified:\n%s", task.ID, task.TaskType, task.Host, log)
		}
	}
	if _, err := c.WalkFrom(ctx, s, pid, plan, "DEPLOY_CONFIG"); err != nil {
		t.Fatalf("the rest of the wizard: %v", err)
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}
