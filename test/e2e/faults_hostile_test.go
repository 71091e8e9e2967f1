package e2e

import (
	"context"
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

// TestHostileInput sends hostile input through the real API of a running
// manager: shell metacharacters in host names and installDir, path
// traversal in ids, a body over 1 MiB, wrong JSON types. Each is refused
// with a non-zero code and a message naming the field, nothing is written
// (no process, unchanged tasks) and nothing runs (marker files absent on
// the manager's side and on every host).
//
// Conf text is different: it is the operator's Doris config, deployed
// verbatim as data. The manager, its plugins and the agent never evaluate
// it (they write it with a file write, never through a shell); Doris's own
// start scripts later evaluate UPPERCASE keys (JAVA_OPTS, LOG_DIR) as
// Doris always does, which is the operator's business. So a conf with
// $(...) and backticks in values is accepted, lands byte for byte in the
// file, and runs nothing.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := start(t, sandbox.Options{})
	ctx, cancel := deadline.Context(context.Background(), 100*time.Second)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	tag := fmt.Sprint(time.Now().UnixNano())
	marker := func(name string) string { return "/tmp/pwned-" + tag + "-" + name }

	base := func() map[string]any {
		return map[string]any{"clusterId": "1", "packageUrl": s.PackageURL, "installDir": sandbox.InstallDir,
			"hosts": plan.Hosts, "user": "root", "sshPort": 22, "sshKey": string(plan.SSHKey)}
	}
	with := func(k string, v any) map[string]any {
		b := base()
		b[k] = v
		return b
	}
	refusals := []struct {
		name, method, path string
		body               any
		field              string // named in the message
		status             int
	}{
		{"host with ;", "POST", "/api/server/installAgent", with("hosts", []string{"h1;touch " + marker("semicolon")}), "hosts[0]", 400},
		{"host with $()", "POST", "/api/server/installAgent", with("hosts", []string{"$(touch " + marker("dollar") + ")"}), "hosts[0]", 400},
		{"host with backticks", "POST", "/api/server/installAgent", with("hosts", []string{"`touch " + marker("tick") + "`"}), "hosts[0]", 400},
		{"host list as a string", "POST", "/api/server/installAgent", with("hosts", "a"), "hosts", 400},
		{"installDir with ;", "POST", "/api/server/installAgent", with("installDir", "/opt/doris;touch "+marker("dir")), "installDir", 400},
		{"installDir with ..", "POST", "/api/server/installAgent", with("installDir", "/opt/../etc"), "installDir", 400},
		{"installDir relative", "POST", "/api/server/installAgent", with("installDir", "opt/doris"), "installDir", 400},
		{"installDir with $()", "POST", "/api/server/installAgent", with("installDir", "/opt/$(touch "+marker("dir2")+")"), "installDir", 400},
		{"sshPort with ;", "POST", "/api/server/installAgent", with("sshPort", "22; touch "+marker("port")), "sshPort", 400},
		{"user with ;", "POST", "/api/server/installAgent", with("user", "root;touch "+marker("user")), "user", 400},
		{"processId object", "POST", "/api/agent/installService", map[string]any{"processId": map[string]any{"x": 1}, "installInfos": []any{}}, "processId", 400},
		{"log path traversal", "GET", "/api/process/task/log/..%2F..%2Fetc%2Fpasswd", nil, "taskId", 400},
		{"info id with ;", "GET", "/api/process/task/info/1;ls", nil, "taskId", 400},
		{"info id with encoded ;", "GET", "/api/process/task/info/1%3Bls", nil, "taskId", 400},
		{"retry id traversal", "POST", "/api/process/task/retry/..%2F1", nil, "taskId", 400},
		{"huge body", "POST", "/api/server/installAgent", `{"hosts":["` + strings.Repeat("a", 1<<20+10) + `"]}`, "larger than", 413},
	}
	check := func(name, method, path string, body any, field string, status int) {
		t.Helper()
		r, err := c.Call(ctx, method, path, body)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if r.Code == 0 || r.Status != status || r.Code != status {
			t.Errorf("%s: HTTP %d code %d (%s), want %d", name, r.Status, r.Code, r.Msg, status)
		}
		if !strings.Contains(r.Msg, field) {
			t.Errorf("%s: the message does not name %s: %s", name, field, r.Msg)
		}
		if strings.Contains(string(r.Data), "root:") || strings.Contains(r.Msg, "root:x:0:0") {
			t.Errorf("%s: the answer leaks a file: %s %s", name, r.Msg, r.Data)
		}
	}
	for _, x := range refusals {
		check(x.name, x.method, x.path, x.body, x.field, x.status)
	}
	if r, err := c.OK(ctx, http.MethodGet, "/api/process/currentProcess", nil); err != nil || string(r.Data) != "null" {
		t.Fatalf("a refused request left a process behind: %s %v", r.Data, err)
	}

	// A real process, then hostile hosts in later steps: refused, and the
	// step's tasks stay as they were.
	pid, err := c.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	agentTasks, err := c.WaitStep(ctx, pid, nil)
	if err != nil || len(sandbox.Failed(agentTasks)) > 0 {
		t.Fatalf("INSTALL_AGENT: %v%s", err, sandbox.Describe(sandbox.Failed(agentTasks)))
	}
	check("installService host with ;", "POST", "/api/agent/installService", map[string]any{"processId": pid,
		"installInfos": []map[string]any{{"host": plan.Hosts[0] + ";touch " + marker("svc"), "role": "FE"}}}, "installInfos[0].host", 400)
	check("installService role with $()", "POST", "/api/agent/installService", map[string]any{"processId": pid,
		"installInfos": []map[string]any{{"host": plan.Hosts[0], "role": "$(touch " + marker("role") + ")"}}}, "installInfos[0].role", 400)
	check("installService param with newline", "POST", "/api/agent/installService", map[string]any{"processId": pid,
		"installInfos": []map[string]any{{"host": plan.Hosts[0], "role": "FE"}}, "params": map[string]string{"javaHome": "/opt/jdk\ntouch " + marker("param")}}, "params.javaHome", 400)
	if ts, err := c.CurrentTasks(ctx, pid); err != nil || len(ts) != len(agentTasks) || ts[0].ProcessType != "INSTALL_AGENT" {
		t.Fatalf("refused installService calls changed the step: %v%s", err, sandbox.Describe(ts))
	}

	// Conf values with command substitutions are data: deployed verbatim,
	// never run.
	if err := c.InstallService(ctx, pid, plan, map[string]any{"packageSha256": s.PackageSHA256}); err != nil {
		t.Fatal(err)
	}
	if ts, err := c.WaitStep(ctx, pid, nil); err != nil || len(sandbox.Failed(ts)) > 0 {
		t.Fatalf("INSTALL_SERVICE: %v%s", err, sandbox.Describe(sandbox.Failed(ts)))
	}
	hostile := plan
	extra := "sys_log_verbose_modules = $(touch " + marker("conf") + "; touch /opt/pwned-conf)\n" +
		"audit_log_modules = `touch " + marker("conf-tick") + "; touch /opt/pwned-conf-tick`\n"
	hostile.FEConf = plan.FEConf + extra
	hostile.BEConf = plan.BEConf + extra
	if err := c.DeployConfig(ctx, pid, hostile); err != nil {
		t.Fatalf("deployConfig with $() in conf values: %v", err)
	}
	if ts, err := c.WaitStep(ctx, pid, nil); err != nil || len(sandbox.Failed(ts)) > 0 {
		t.Fatalf("DEPLOY_CONFIG: %v%s", err, sandbox.Describe(sandbox.Failed(ts)))
	}
	for _, h := range s.Hosts.Hosts {
		p, err := sandbox.OnHost(h, sandbox.InstallDir+"/fe/conf/fe.conf")
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("fe.conf on %s: %v", h.Name, err)
		}
		if !strings.Contains(string(b), extra) {
			t.Errorf("fe.conf on %s does not hold the conf text verbatim:\n%s", h.Name, b)
		}
	}

	// Nothing ran: no marker on the manager's side (and /tmp is shared
	// with the hosts) nor in any host's private /opt.
	left, _ := filepath.Glob("/tmp/pwned-" + tag + "-*")
	for _, h := range s.Hosts.Hosts {
		more, _ := filepath.Glob(filepath.Join(h.Root, "pwned*"))
		left = append(left, more...)
		if out, err := h.Exec(ctx, "sh", "-c", `ls /opt/pwned* /tmp/pwned-"$1"-* 2>/dev/null; true`, "sh", tag); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("markers on %s: %q %v", h.Name, out, err)
		}
	}
	if len(left) > 0 {
		t.Errorf("hostile input ran: %v", left)
	}
}
