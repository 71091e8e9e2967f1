package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestFaultConcurrentSameStep sends every wizard step twice at once, from
// two clients with identical bodies released by one barrier: exactly one
// call wins (code 0), the other gets HTTP 409 with a message naming the
// process and its state, and the step has its tasks once. Then the wizard
// completes with a healthy cluster.
func TestFaultConcurrentSameStep(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) { t.Parallel(); concurrentSameStep(t, "") })
	t.Run("PostgreSQL", func(t *testing.T) { t.Parallel(); concurrentSameStep(t, pgtest.Start(t)) })
}

func concurrentSameStep(t *testing.T, db string) {
	s := start(t, sandbox.Options{DB: db})
	ctx, cancel := deadline.Context(context.Background(), 100*time.Second)
	defer cancel()
	c1, c2 := s.Client(), s.Client()
	plan := s.StandardPlan()

	pid, err := c1.InstallAgent(ctx, plan, sandbox.InstallDir, s.PackageURL)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := c1.WaitStep(ctx, pid, nil); err != nil || len(sandbox.Failed(ts)) > 0 {
		t.Fatalf("INSTALL_AGENT: %v%s", err, sandbox.Describe(sandbox.Failed(ts)))
	}
	roles := len(plan.FEs) + len(plan.BEs) + len(plan.Brokers)
	steps := []struct {
		name, path string
		body       any
		tasks      int
	}{
		{"INSTALL_SERVICE", "/api/agent/installService", installServiceBody(s, pid, plan), roles},
		{"DEPLOY_CONFIG", "/api/agent/deployConfig", deployConfigBody(pid, plan), roles},
		{"START_SERVICE", "/api/agent/startService", startServiceBody(pid, plan), roles},
		// One ADD_ per node, then SECURE_CLUSTER.
		{"BUILD_CLUSTER", "/api/agent/buildCluster", buildClusterBody(pid, plan), len(plan.FEs) + len(plan.BEs) + len(plan.Brokers) + 1},
		{"", fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"processId": pid, "hosts": plan.Hosts}, 0},
	}
	for _, st := range steps {
		r1, r2 := race2(ctx, t, c1, c2, st.path, st.body)
		win, lose := r1, r2
		if r2.Code == 0 {
			win, lose = r2, r1
		}
		if st.name == "DEPLOY_CONFIG" && r1.Code == 0 && r2.Code == 0 {
			// deployConfig may be sent again once the step's tasks ended
			// (to fix a conf): on a slow machine the second call can come
			// that late. Its tasks then replace the first ones; the count
			// check below still holds.
			t.Logf("%s: both calls succeeded: the second came after the first's tasks ended (a re-deploy)", st.path)
		} else if win.Code != 0 || lose.Code == 0 {
			t.Fatalf("%s twice at once: answers %d %q and %d %q, want exactly one success", st.path, r1.Code, r1.Msg, r2.Code, r2.Msg)
		}
		if lose.Code != 0 && (lose.Status != http.StatusConflict || lose.Code != http.StatusConflict) {
			t.Errorf("%s: the losing call got HTTP %d code %d (%s), want 409", st.path, lose.Status, lose.Code, lose.Msg)
		}
		if lose.Code != 0 && (!strings.Contains(lose.Msg, fmt.Sprintf("process %d", pid)) || !namesState(lose.Msg)) {
			t.Errorf("%s: the conflict does not name the process and its state: %s", st.path, lose.Msg)
		}
		t.Logf("%s: the loser was told: %s", st.path, lose.Msg)
		if st.name == "" {
			continue
		}
		ts, err := c1.WaitStep(ctx, pid, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f := sandbox.Failed(ts); len(f) > 0 {
			t.Fatalf("%s failed:%s", st.name, sandbox.Describe(f))
		}
		if len(ts) != st.tasks {
			t.Fatalf("%s has %d tasks, want %d (one per host and role):%s", st.name, len(ts), st.tasks, sandbox.Describe(ts))
		}
		for _, tk := range ts {
			if tk.ProcessType != st.name {
				t.Fatalf("task %d is of %s, want %s", tk.ID, tk.ProcessType, st.name)
			}
		}
	}
	if err := s.CheckAlive(ctx, plan, 9030); err != nil {
		t.Fatalf("cluster after the wizard: %v", err)
	}
}

// race2 sends the same call from two clients, released together.
func race2(ctx context.Context, t *testing.T, c1, c2 *sandbox.Client, path string, body any) (sandbox.Reply, sandbox.Reply) {
	t.Helper()
	var wg sync.WaitGroup
	var r [2]sandbox.Reply
	var errs [2]error
	gate := make(chan struct{})
	for i, c := range []*sandbox.Client{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r[i], errs[i] = c.Call(ctx, http.MethodPost, path, body)
		}()
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
	}
	return r[0], r[1]
}

// namesState reports whether a message names a wizard state.
func namesState(msg string) bool {
	for _, s := range []string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER", "complete"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// The bodies below are the ones the sandbox's Client sends, built once so
// both racing calls send the very same bytes.

func installServiceBody(s *sandbox.Sandbox, pid int64, p sandbox.Plan) map[string]any {
	var infos []map[string]any
	for _, fe := range p.FEs {
		infos = append(infos, map[string]any{"host": fe.Host, "role": "FE", "feNodeType": fe.Type})
	}
	for _, h := range p.BEs {
		infos = append(infos, map[string]any{"host": h, "role": "BE"})
	}
	for _, h := range p.Brokers {
		infos = append(infos, map[string]any{"host": h, "role": "BROKER"})
	}
	return map[string]any{"processId": pid, "installInfos": infos, "params": p.Params, "autoFix": true, "packageSha256": s.PackageSHA256}
}

func feHosts(p sandbox.Plan) []string {
	var out []string
	for _, fe := range p.FEs {
		out = append(out, fe.Host)
	}
	return out
}

func deployConfigBody(pid int64, p sandbox.Plan) map[string]any {
	return map[string]any{"processId": fmt.Sprint(pid), "deployConfigs": []map[string]any{
		{"hosts": feHosts(p), "role": "FE", "conf": p.FEConf},
		{"hosts": p.BEs, "role": "BE", "conf": p.BEConf},
		{"hosts": p.Brokers, "role": "BROKER", "conf": p.BrokerConf},
	}}
}

func startServiceBody(pid int64, p sandbox.Plan) map[string]any {
	var starts []map[string]any
	for _, h := range feHosts(p) {
		starts = append(starts, map[string]any{"host": h, "role": "FE"})
	}
	for _, h := range p.BEs {
		starts = append(starts, map[string]any{"host": h, "role": "BE"})
	}
	for _, h := range p.Brokers {
		starts = append(starts, map[string]any{"host": h, "role": "BROKER"})
	}
	return map[string]any{"processId": fmt.Sprint(pid), "dorisStarts": starts}
}

func buildClusterBody(pid int64, p sandbox.Plan) map[string]any {
	return map[string]any{"processId": pid, "feHosts": feHosts(p), "beHosts": p.BEs}
}
