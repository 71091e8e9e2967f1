package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestWizard walks the whole wizard as the API document shows it, then
// checks what the API reports and asks the cluster itself who is alive.
func TestWizard(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			o := sandbox.Options{}
			if db == "postgres" {
				o.DB = pgtest.Start(t)
			}
			s := start(t, o)
			ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
			defer cancel()
			c := s.Client()
			plan := s.StandardPlan()
			pid, timings, err := c.Walk(ctx, s, plan, func(step string, task *sandbox.Task) {
				if task != nil {
					t.Logf("%s: task %d %s on %s: %s", step, task.ID, task.TaskType, task.Host, task.Status)
				}
			})
			if err != nil {
				t.Fatalf("wizard (process %d): %v", pid, err)
			}
			t.Logf("step timings: %v", timings)
			checkAPI(ctx, t, c, plan, pid)
			checkPackageVerified(ctx, t, c, s, pid)
			checkAdminPassword(ctx, t, s, c, plan, pid)
			checkCluster(ctx, t, s, plan)
			checkHosts(t, s, plan)
			if db == "sqlite" {
				checkRoleListFollowsCluster(ctx, t, s, c, plan)
			}
		})
	}
}

var memoryFormat = regexp.MustCompile(`^\d+(\.\d)? (B|KiB|MiB|GiB|TiB)$`)

func checkAPI(ctx context.Context, t *testing.T, c *sandbox.Client, plan sandbox.Plan, pid int64) {
	t.Helper()
	// The finished process is no longer the caller's current one.
	r, err := c.OK(ctx, http.MethodGet, "/api/process/currentProcess", nil)
	if err != nil || string(r.Data) != "null" {
		t.Fatalf("currentProcess after installComplete: %s, %v; want null data", r.Data, err)
	}

	var agents []struct {
		ID               int64   `json:"id"`
		Host             string  `json:"host"`
		Port             int     `json:"port"`
		Status           string  `json:"status"`
		RegisterTime     *string `json:"registerTime"`
		LastReportedTime *string `json:"lastReportedTime"`
	}
	mustDecode(t, c, fmt.Sprintf("/api/server/agentList?clusterId=%d", plan.ClusterID), &agents)
	if len(agents) != len(plan.Hosts) {
		t.Fatalf("agentList has %d agents, want %d", len(agents), len(plan.Hosts))
	}
	for _, a := range agents {
		if a.Status != "RUNNING" || a.Port != 9602 || a.RegisterTime == nil || a.LastReportedTime == nil {
			t.Errorf("agent %+v: want RUNNING on 9602 with register and report times", a)
		}
	}

	var roles []struct {
		Host       string  `json:"host"`
		Role       string  `json:"role"`
		FENodeType *string `json:"feNodeType"`
		InstallDir string  `json:"installDir"`
		Register   string  `json:"register"`
	}
	mustDecode(t, c, fmt.Sprintf("/api/server/roleList?clusterId=%d", plan.ClusterID), &roles)
	want := len(plan.FEs) + len(plan.BEs) + len(plan.Brokers)
	if len(roles) != want {
		t.Fatalf("roleList has %d roles, want %d", len(roles), want)
	}
	dirs := map[string]string{"FE": "/fe", "BE": "/be", "BROKER": "/apache_hdfs_broker"}
	for _, r := range roles {
		if r.Register != "YES" || r.InstallDir != sandbox.InstallDir+dirs[r.Role] {
			t.Errorf("role %+v: want register YES in %s%s", r, sandbox.InstallDir, dirs[r.Role])
		}
		if r.Role == "FE" && (r.FENodeType == nil || (*r.FENodeType != "FOLLOWER" && *r.FENodeType != "OBSERVER")) {
			t.Errorf("FE on %s has feNodeType %v", r.Host, r.FENodeType)
		}
	}

	var hw []struct {
		Host        string `json:"host"`
		CPU         string `json:"cpu"`
		TotalMemory string `json:"totalMemory"`
	}
	mustDecode(t, c, fmt.Sprintf("/api/agent/hardware/%d", plan.ClusterID), &hw)
	if len(hw) != len(plan.Hosts) {
		t.Fatalf("hardware lists %d hosts, want %d", len(hw), len(plan.Hosts))
	}
	for _, h := range hw {
		if h.CPU == "" || !memoryFormat.MatchString(h.TotalMemory) {
			t.Errorf("hardware of %s: cpu %q, totalMemory %q (want like \"15.5 GiB\")", h.Host, h.CPU, h.TotalMemory)
		}
	}

	// Every task of the process, through task/info; the START_FE of the
	// master has its own log with the start script in it.
	var startFE int64
	for id := int64(1); ; id++ {
		r, err := c.Call(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/info/%d", id), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == http.StatusNotFound {
			if id == 1 {
				t.Fatal("task 1 not found")
			}
			break
		}
		var task sandbox.Task
		if err := r.Decode(&task); err != nil {
			t.Fatal(err)
		}
		if task.ProcessID != pid || task.Finish != "YES" || task.Status != "SUCCESS" || task.StartTime == nil || task.EndTime == nil {
			t.Errorf("task/info/%d: %+v: want a finished SUCCESS task of process %d with times", id, task, pid)
		}
		if task.TaskType == "START_FE" && task.Host == plan.FEs[0].Host {
			startFE = task.ID
		}
	}
	if startFE == 0 {
		t.Fatal("no START_FE task for the master")
	}
	var lg struct {
		LogPath *string `json:"logPath"`
		Log     string  `json:"log"`
	}
	mustDecode(t, c, fmt.Sprintf("/api/process/task/log/%d", startFE), &lg)
	if !strings.Contains(lg.Log, "start_fe.sh") {
		t.Errorf("START_FE log does not show the start script:\n%s", lg.Log)
	}
	// logPath is the task's own log on its host, as the agent wrote it.
	if lg.LogPath == nil || !strings.HasPrefix(*lg.LogPath, sandbox.InstallDir+"/agent/") || !strings.Contains(*lg.LogPath, fmt.Sprintf("task-%d", startFE)) {
		t.Errorf("START_FE logPath %v: want the agent's log of task %d under %s/agent", sandbox.Str(lg.LogPath), startFE, sandbox.InstallDir)
	}
}

// checkPackageVerified: installService named no checksum, so every
// INSTALL task's log says the host checked the SHA-512 published beside
// the package (or used a download it checked with it).
func checkPackageVerified(ctx context.Context, t *testing.T, c *sandbox.Client, s *sandbox.Sandbox, pid int64) {
	t.Helper()
	n := 0
	for id := int64(1); ; id++ {
		task, err := c.TaskInfo(ctx, id)
		if err != nil {
			break // past the last task
		}
		if task.ProcessID != pid || !strings.HasPrefix(task.TaskType, "INSTALL_") || task.TaskType == "INSTALL_AGENT" {
			continue
		}
		n++
		log, err := c.TaskLogText(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := "the host checks its SHA-512 " + s.PackageSHA512 + ", published at " + s.PackageURL + ".sha512"
		// A download the host made for another role with the same sum is
		// used from its cache.
		checked := strings.Contains(log, "SHA-512 matches") || strings.Contains(log, "using cached")
		if !strings.Contains(log, want) || !checked {
			t.Errorf("task %d %s on %s: log does not say the package was checked against the published SHA-512:\n%s", id, task.TaskType, task.Host, log)
		}
	}
	if n == 0 {
		t.Error("no INSTALL_ task found")
	}
}

func mustDecode(t *testing.T, c *sandbox.Client, path string, v any) {
	t.Helper()
	r, err := c.OK(context.Background(), http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, r.Data)
	}
}

// checkAdminPassword: after wizard process pid the cluster's root has a
// password: an empty-password login is refused by every FE, the password
// revealed through the API (once; a second reveal is refused) works on
// every FE, and the SECURE_CLUSTER task that set it does not show it.
func checkAdminPassword(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan, pid int64) {
	t.Helper()
	pw, err := s.AdminPassword(ctx, plan.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Call(ctx, http.MethodPost, fmt.Sprintf("/api/cluster/%d/adminPassword/reveal", plan.ClusterID), nil)
	if err != nil || r.Code != http.StatusConflict || !strings.Contains(r.Msg, "already revealed") || strings.Contains(string(r.Data), pw) {
		t.Errorf("second reveal: %+v %v, want 409 already revealed", r, err)
	}
	for _, fe := range plan.FEs {
		addr := net.JoinHostPort(fe.Host, "9030")
		cfg, err := s.MySQLConfig(ctx, plan.ClusterID, addr)
		if err != nil {
			t.Fatal(err)
		}
		empty := *cfg
		empty.Passwd = ""
		for _, tc := range []struct {
			cfg  *mysql.Config
			want string // "" for a login that works
		}{
			{&empty, fmt.Sprintf("Error 1045 (28000): Access denied for user 'root'@'%s' (using password: NO)", s.Hosts.BridgeAddr)},
			{cfg, ""},
		} {
			db, err := sandbox.OpenDB(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = db.PingContext(ctx)
			db.Close()
			if (tc.want == "" && err != nil) || (tc.want != "" && (err == nil || err.Error() != tc.want)) {
				t.Errorf("FE %s, root with password %t: %v, want %q", addr, tc.cfg.Passwd != "", err, tc.want)
			}
		}
	}
	var tasks []sandbox.Task
	mustDecode(t, c, fmt.Sprintf("/api/process/%d/currentTasks", pid), &tasks)
	if len(tasks) == 0 {
		t.Fatal("no BUILD_CLUSTER tasks")
	}
	last := tasks[len(tasks)-1]
	if resp := sandbox.Str(last.Response); last.TaskType != "SECURE_CLUSTER" || last.Status != "SUCCESS" ||
		!strings.Contains(resp, "reveal") || strings.Contains(resp+sandbox.Str(last.Result), pw) {
		t.Errorf("last BUILD_CLUSTER task %s %s %q: want SECURE_CLUSTER SUCCESS naming the reveal call, not the password", last.TaskType, last.Status, resp)
	}
	r, err = c.Call(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/log/%d", last.ID), nil)
	if err != nil || strings.Contains(string(r.Data), pw) || !strings.Contains(string(r.Data), "SET PASSWORD FOR 'root'") {
		t.Errorf("SECURE_CLUSTER log: %s %v: want the statement named, never the password", r.Data, err)
	}
}

// checkCluster asks the cluster itself, over the MySQL protocol, that every
// FE, BE and broker is alive and that there is exactly one master.
func checkCluster(ctx context.Context, t *testing.T, s *sandbox.Sandbox, plan sandbox.Plan) {
	t.Helper()
	db, err := s.MySQL(ctx, plan.ClusterID, net.JoinHostPort(plan.FEs[0].Host, "9030"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fes := showRows(ctx, t, db, "SHOW FRONTENDS")
	masters := 0
	for _, r := range fes {
		if r["Alive"] != "true" {
			t.Errorf("FE %s is not alive: %v", r["Host"], r)
		}
		if r["IsMaster"] == "true" {
			masters++
		}
	}
	if len(fes) != len(plan.FEs) || masters != 1 {
		t.Errorf("SHOW FRONTENDS: %d FEs with %d masters, want %d with 1", len(fes), masters, len(plan.FEs))
	}
	for q, n := range map[string]int{"SHOW BACKENDS": len(plan.BEs), "SHOW BROKER": len(plan.Brokers)} {
		rows := showRows(ctx, t, db, q)
		if len(rows) != n {
			t.Errorf("%s: %d rows, want %d", q, len(rows), n)
		}
		for _, r := range rows {
			if r["Alive"] != "true" {
				t.Errorf("%s: %v is not alive", q, r)
			}
		}
	}
}

func showRows(ctx context.Context, t *testing.T, db *sql.DB, q string) []map[string]string {
	t.Helper()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	return out
}

// checkRoleListFollowsCluster drops a BE behind the manager's back: roleList
// must come to show what the cluster reports, not what the manager once
// did, once the status cache has asked the nodes (every 5 s); each call
// answers at once from the records.
func checkRoleListFollowsCluster(ctx context.Context, t *testing.T, s *sandbox.Sandbox, c *sandbox.Client, plan sandbox.Plan) {
	t.Helper()
	db, err := s.MySQL(ctx, plan.ClusterID, net.JoinHostPort(plan.FEs[0].Host, "9030"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gone := plan.BEs[len(plan.BEs)-1]
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`ALTER SYSTEM DROPP BACKEND "%s:9050"`, gone)); err != nil {
		t.Fatalf("drop backend: %v", err)
	}
	var roles []struct {
		Host     string `json:"host"`
		Role     string `json:"role"`
		Register string `json:"register"`
	}
	wrong := func() []string {
		mustDecode(t, c, fmt.Sprintf("/api/server/roleList?clusterId=%d", plan.ClusterID), &roles)
		var out []string
		for _, r := range roles {
			want := "YES"
			if r.Role == "BE" && r.Host == gone {
				want = "NO"
			}
			if r.Register != want {
				out = append(out, fmt.Sprintf("%s on %s register=%s, want %s", r.Role, r.Host, r.Register, want))
			}
		}
		return out
	}
	wctx, cancel := deadline.Context(ctx, 30*time.Second)
	defer cancel()
	for w := wrong(); len(w) > 0; w = wrong() {
		select {
		case <-wctx.Done():
			t.Fatalf("roleList still says after 30 s: %s", strings.Join(w, "; "))
		case <-time.After(500 * time.Millisecond):
		}
	}
}
