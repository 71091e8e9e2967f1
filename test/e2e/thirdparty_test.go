package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestThirdPartyRole installs the example role (examples/exporter, built
// from the SDK module alone) with `dorismanager plugins install` into a
// running manager (refused unsigned, accepted signed with a trusted key), then walks the wizard again on the existing cluster's
// hosts for that role with its own package: it runs on every host, shows in
// roleList, and gets no BUILD_CLUSTER task (it has no membership).
func TestThirdPartyRole(t *testing.T) {
	t.Parallel()
	plugins := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join(binDir, "plugins")+"/.", plugins).CombinedOutput(); err != nil {
		t.Fatalf("copy the plugins: %v %s", err, out)
	}
	s := start(t, sandbox.Options{PluginsDir: plugins})
	ctx, cancel := deadline.Context(context.Background(), 8*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	if pid, _, err := c.Walk(ctx, s, plan, nil); err != nil {
		t.Fatalf("Doris wizard (process %d): %v", pid, err)
	}

	pkgURL, pkgSHA, err := s.ExporterPackage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, pkgURL)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := c.WaitStep(ctx, pid, nil); err != nil || len(sandbox.Failed(ts)) > 0 {
		t.Fatalf("INSTALL_AGENT: %v%s", err, sandbox.Describe(sandbox.Failed(ts)))
	}
	// Before its plugin is installed the role is refused, naming the roles
	// there are.
	r, err := c.Call(ctx, http.MethodPost, "/api/agent/installService", map[string]any{"processId": pid,
		"installInfos": []map[string]any{{"host": plan.Hosts[0], "role": "EXPORTER"}}})
	if err != nil || r.Code != http.StatusBadRequest || !strings.Contains(r.Msg, "BROKER") {
		t.Errorf("installService with an uninstalled role: %+v %v, want a 400 naming the installed roles", r, err)
	}

	// Unsigned, with a checksum file of its own making: refused, naming
	// the missing signature, and nothing is installed.
	bin := filepath.Join(t.TempDir(), "doris-role-exporter")
	if err := sandbox.BuildExampleRole(ctx, "", bin, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if err := os.WriteFile(bin+"_SHA256SUM", []byte(hex.EncodeToString(sum[:])+"  doris-role-exporter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install := func() (string, error) {
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "dorismanager"), "plugins", "--plugins-dir", plugins,
			"--data-dir", s.DataDir, "install", bin).CombinedOutput()
		return string(out), err
	}
	out, err := install()
	if err == nil || !strings.Contains(out, "unsigned: no signature file doris-role-exporter_SHA256SUM.sig") {
		t.Fatalf("plugins install of an unsigned plugin: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(plugins, "exporter")); !os.IsNotExist(err) {
		t.Errorf("the unsigned plugin was installed: %v", err)
	}
	// Signed with the development key the manager trusts: installed.
	if err := sandbox.SignPlugin(ctx, binDir, bin); err != nil {
		t.Fatal(err)
	}
	out, err = install()
	if err != nil || !strings.Contains(out, "installed EXPORTER 1.0.0") {
		t.Fatalf("plugins install: %v\n%s", err, out)
	}
	if !strings.Contains(out, "rescan") {
		t.Errorf("plugins install did not tell the running manager:\n%s", out)
	}
	waitPlugin(ctx, t, c, "EXPORTER")

	var infos, starts []map[string]any
	for _, h := range plan.Hosts {
		infos = append(infos, map[string]any{"host": h, "role": "EXPORTER"})
		starts = append(starts, map[string]any{"host": h, "role": "EXPORTER"})
	}
	steps := []struct {
		name, path string
		body       func(pid int64) map[string]any
	}{
		{"INSTALL_SERVICE", "/api/agent/installService", func(pid int64) map[string]any {
			return map[string]any{"processId": pid, "installInfos": infos, "packageSha256": pkgSHA, "params": map[string]string{"listenPort": "9100"}}
		}},
		{"DEPLOY_CONFIG", "/api/agent/deployConfig", func(pid int64) map[string]any {
			return map[string]any{"processId": pid, "deployConfigs": []map[string]any{{"hosts": plan.Hosts, "role": "EXPORTER",
				"conf": "# flags of the node exporter\n--log.level=debug\n"}}}
		}},
		{"START_SERVICE", "/api/agent/startService", func(pid int64) map[string]any {
			return map[string]any{"processId": pid, "dorisStarts": starts}
		}},
		{"BUILD_CLUSTER", "/api/agent/buildCluster", func(pid int64) map[string]any {
			return map[string]any{"processId": pid, "feHosts": []string{}, "beHosts": []string{}}
		}},
	}
	for _, st := range steps {
		if _, err := c.OK(ctx, http.MethodPost, st.path, st.body(pid)); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.name == "BUILD_CLUSTER" {
			// Nothing joins a cluster: the step has no task to wait for.
			if ts, err := c.CurrentTasks(ctx, pid); err != nil || len(ts) != 0 {
				t.Fatalf("BUILD_CLUSTER: %v, %d tasks for a role without membership:%s", err, len(ts), sandbox.Describe(ts))
			}
			continue
		}
		ts, err := c.WaitStep(ctx, pid, nil)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if f := sandbox.Failed(ts); len(f) > 0 {
			t.Fatalf("%s failed:%s", st.name, sandbox.Describe(f))
		}
	}
	if _, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"processId": pid}); err != nil {
		t.Fatalf("installComplete: %v", err)
	}

	roles, err := c.RoleList(ctx, plan.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	onHost := map[string]bool{}
	doris := 0
	for _, r := range roles {
		switch r.Role {
		case "EXPORTER":
			onHost[r.Host] = true
			if r.InstallDir != sandbox.InstallDir+"/node_exporter" {
				t.Errorf("EXPORTER on %s installDir %q, want %s/node_exporter", r.Host, r.InstallDir, sandbox.InstallDir)
			}
		case "FE", "BE", "BROKER":
			doris++
		}
	}
	if want := len(plan.FEs) + len(plan.BEs) + len(plan.Brokers); doris != want {
		t.Errorf("roleList has %d Doris roles after the second process, want %d", doris, want)
	}
	for _, h := range plan.Hosts {
		if !onHost[h] {
			t.Errorf("roleList has no EXPORTER on %s: %+v", h, roles)
		}
		resp, err := http.Get(fmt.Sprintf("http://%s:9100/metrics", h))
		if err != nil {
			t.Errorf("/metrics on %s: %v", h, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "node_exporter_build_info") {
			t.Errorf("/metrics on %s: %d %q", h, resp.StatusCode, body)
		}
	}
	checkCluster(ctx, t, s, plan)
}

// waitPlugin waits until the manager lists an accepted plugin for role.
func waitPlugin(ctx context.Context, t *testing.T, c *sandbox.Client, role string) {
	t.Helper()
	for {
		r, err := c.OK(ctx, http.MethodGet, "/api/plugins/", nil)
		if err == nil && strings.Contains(string(r.Data), `"role":"`+role+`"`) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the manager never listed a %s plugin: %v %s", role, err, r.Data)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
