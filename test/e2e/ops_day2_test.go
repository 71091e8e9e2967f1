package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// masterDB opens the MySQL protocol of the plan's first FE as root with
// the revealed password.
func masterDB(t *testing.T, s *sandbox.Sandbox, plan sandbox.Plan) *sql.DB {
	t.Helper()
	db, err := s.MySQL(context.Background(), plan.ClusterID, net.JoinHostPort(plan.FEs[0].Host, "9030"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(ctx context.Context, t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestOpsScaleIn takes one BE out of a cluster holding a table: the
// cluster moves its tablets away (progress in the task log), drops it from
// SHOW BACKENDS, and it leaves status, roleList and its host.
func TestOpsScaleIn(t *testing.T) {
	t.Parallel()
	eachDB(t, 4*time.Minute, func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
		mdb := masterDB(t, s, plan)
		execSQL(ctx, t, mdb, "CREATE DATABASE d2")
		execSQL(ctx, t, mdb, `CREATE TABLE d2.t (k INT) DISTRIBUTED BY HASH(k) BUCKETS 12 PROPERTIES ("replication_num" = "2")`)
		be := plan.BEs[2]
		pid, ts, err := c.RunOperation(ctx, plan.ClusterID, "scaleIn", map[string]any{
			"nodes": []sandbox.NodeRef{{Host: be, Role: "BE"}}, "purge": true})
		if err != nil {
			t.Fatal(err)
		}
		log, err := c.TaskLogText(ctx, ts[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(log), "tablet") {
			t.Errorf("the task log of process %d shows no decommission progress:\n%s", pid, tail(log, 3000))
		}
		for _, r := range showRows(ctx, t, mdb, "SHOW BACKENDS") {
			if r["Host"] == be {
				t.Fatalf("SHOW BACKENDS still lists %s: %v", be, r)
			}
		}
		st, err := c.Status(ctx, plan.ClusterID)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Node(be, "BE"); ok || len(st.Nodes) != len(plan.FEs)+len(plan.BEs)+len(plan.Brokers)-1 {
			t.Fatalf("status after scale-in:%s", st)
		}
		roles, err := c.RoleList(ctx, plan.ClusterID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if r.Host == be && r.Role == "BE" {
				t.Fatalf("roleList still lists BE on %s", be)
			}
		}
		if p, _ := sandbox.OnHost(hostOf(t, s, be), sandbox.InstallDir+"/be"); true {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("the BE's folder is left on %s: %v", be, err)
			}
		}
		if n := len(roleProcesses(ctx, t, hostOf(t, s, be), "BE")); n != 0 {
			t.Fatalf("%d BE processes still run on %s", n, be)
		}
		// The other nodes serve on.
		rest := plan
		rest.BEs = plan.BEs[:2]
		waitAlive(ctx, t, s, rest)
	})
}

// TestOpsUpgrade upgrades every node to a second simulated version, one at
// a time in Doris's order, checked in SHOW FRONTENDS/BACKENDS and status.
func TestOpsUpgrade(t *testing.T) {
	t.Parallel()
	eachDB(t, 6*time.Minute, func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
		url, sum, err := s.PackVersion(ctx, upgradeVersion)
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		_, ts, err := c.RunOperation(ctx, plan.ClusterID, "upgrade", map[string]any{"packageUrl": url, "packageSha256": sum})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("upgrade of %d nodes took %s", len(ts), time.Since(started).Round(time.Millisecond))
		checkUpgraded(ctx, t, s, c, plan)
	})
}

// upgradeVersion is the second simulated version upgrades go to.
const upgradeVersion = "2.0.4"

func checkUpgraded(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
	t.Helper()
	want := "doris-" + upgradeVersion
	mdb := masterDB(t, s, plan)
	for _, q := range []string{"SHOW FRONTENDS", "SHOW BACKENDS"} {
		for _, r := range showRows(ctx, t, mdb, q) {
			if !strings.HasPrefix(r["Version"], want) {
				t.Errorf("%s: %s runs %q, want %s", q, r["Host"], r["Version"], want)
			}
		}
	}
	st, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP at the new version", func(st sandbox.ClusterStatus) bool {
		if !sandbox.AllUp(st) {
			return false
		}
		for _, n := range st.Nodes {
			if n.Role != "BROKER" && !strings.Contains(sandbox.Str(n.Version), upgradeVersion) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the upgrade:%s", st)
	waitAlive(ctx, t, s, plan)
}

// TestOpsManagerKilledMidUpgrade SIGKILLs the manager while an upgrade
// runs and starts it again: the upgrade resumes and completes, each node
// upgraded once.
func TestOpsManagerKilledMidUpgrade(t *testing.T) {
	t.Parallel()
	s, c, plan := installed(t, "sqlite")
	ctx, cancel := deadline.Context(context.Background(), 6*time.Minute)
	defer cancel()
	url, sum, err := s.PackVersion(ctx, upgradeVersion)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.Operation(ctx, plan.ClusterID, "upgrade", map[string]any{"packageUrl": url, "packageSha256": sum})
	if err != nil {
		t.Fatal(err)
	}
	// Kill once the second node's upgrade runs.
	var before []sandbox.Task
	for {
		ts, err := c.CurrentTasks(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) > 1 && ts[1].Status == "RUNNING" {
			before = ts
			break
		}
		if f := sandbox.Failed(ts); len(f) > 0 {
			t.Fatalf("upgrade failed:%s", sandbox.Describe(f))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the second upgrade task never ran:%s", sandbox.Describe(ts))
		case <-time.After(10 * time.Millisecond):
		}
	}
	restartManager(ctx, t, s)
	after, err := c.WaitOperation(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := sandbox.Failed(after); len(f) > 0 {
		t.Fatalf("the resumed upgrade failed:%s", sandbox.Describe(f))
	}
	sameTasks(t, before, after)
	log, err := c.TaskLogText(ctx, before[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, restartNote) {
		t.Errorf("the interrupted task's log does not note the restart:\n%s", tail(log, 3000))
	}
	for _, h := range s.Hosts.Hosts {
		for _, role := range []string{"FE", "BE"} {
			if n := len(roleProcesses(ctx, t, h, role)); n != 1 {
				t.Errorf("%s: %d %s processes, want 1", h.Name, n, role)
			}
		}
	}
	checkUpgraded(ctx, t, s, c, plan)
}

// beConfig asks a BE's webserver for one config item's value.
func beConfig(ctx context.Context, t *testing.T, host, key string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:8040/api/show_config?conf_item=%s", host, key), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var rows [][]string
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) != 1 || len(rows[0]) < 3 {
		t.Fatalf("show_config %s on %s: %s", key, host, b)
	}
	return rows[0][2]
}

// TestOpsConfig changes the BEs' config with one key Doris changes live
// and one that needs a restart: a dry run first changes nothing; then the
// live key is applied at once and written, and the BEs restart, one at a
// time, for the other.
func TestOpsConfig(t *testing.T) {
	t.Parallel()
	eachDB(t, 5*time.Minute, func(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
		_, beConf, _ := s.Confs()
		conf := beConf + "write_buffer_size = 104857600\nmax_base_compaction_threads = 2\n"
		be := plan.BEs[0]
		confPath, _ := sandbox.OnHost(hostOf(t, s, be), sandbox.InstallDir+"/be/conf/be.conf")
		deployed, err := os.ReadFile(confPath)
		if err != nil {
			t.Fatal(err)
		}
		pidsBefore := len(roleProcesses(ctx, t, hostOf(t, s, be), "BE"))

		// Dry run: the diff and each key's impact, nothing changed.
		_, ts, err := c.RunOperation(ctx, plan.ClusterID, "config", map[string]any{"role": "BE", "conf": conf, "dryRun": true})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != len(plan.BEs) {
			t.Fatalf("dry run: %d tasks, want one RECONFIGURE_NODE per BE:%s", len(ts), sandbox.Describe(ts))
		}
		for _, x := range ts {
			r := sandbox.Str(x.Response)
			if x.TaskType != "RECONFIGURE_NODE" || !strings.Contains(r, "dry run") || !strings.Contains(r, "write_buffer_size") ||
				!strings.Contains(r, "(live)") || !strings.Contains(r, "max_base_compaction_threads") || !strings.Contains(r, "(restart)") {
				t.Fatalf("dry-run task %d: %s", x.ID, r)
			}
		}
		if now, _ := os.ReadFile(confPath); string(now) != string(deployed) {
			t.Fatal("a dry run changed be.conf")
		}
		if v := beConfig(ctx, t, be, "write_buffer_size"); v == "104857600" {
			t.Fatal("a dry run changed write_buffer_size live")
		}

		// Applied.
		_, ts, err = c.RunOperation(ctx, plan.ClusterID, "config", map[string]any{"role": "BE", "conf": conf})
		if err != nil {
			t.Fatal(err)
		}
		restarts := 0
		for _, x := range ts {
			if x.TaskType == "RESTART_NODE" && strings.Contains(sandbox.Str(x.Response), "restarted") {
				restarts++
			}
		}
		if restarts != len(plan.BEs) {
			t.Fatalf("want each BE restarted for max_base_compaction_threads:%s", sandbox.Describe(ts))
		}
		for _, h := range plan.BEs {
			if v := beConfig(ctx, t, h, "write_buffer_size"); v != "104857600" {
				t.Errorf("%s: write_buffer_size %s, want 104857600", h, v)
			}
			if v := beConfig(ctx, t, h, "max_base_compaction_threads"); v != "2" {
				t.Errorf("%s: max_base_compaction_threads %s after the restart, want 2", h, v)
			}
		}
		if now, _ := os.ReadFile(confPath); !strings.Contains(string(now), "max_base_compaction_threads = 2") {
			t.Errorf("be.conf was not written:\n%s", now)
		}
		if n := len(roleProcesses(ctx, t, hostOf(t, s, be), "BE")); n != pidsBefore {
			t.Errorf("%d BE processes on %s after the restart, want %d", n, be, pidsBefore)
		}
		if _, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP", sandbox.AllUp); err != nil {
			t.Fatal(err)
		}
		waitAlive(ctx, t, s, plan)
	})
}
