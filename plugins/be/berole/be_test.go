package berole

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
	"github.com/dorismanager/dorismanager/sdk"
)

func newRole() *Role {
	r := New("1.2.3")
	r.Backoff = doris.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	r.DecommissionBackoff = r.Backoff
	return r
}

func beReq(host string) sdk.Request {
	return sdk.Request{
		Node: sdk.Node{Host: host, Role: doris.RoleBE, InstallDir: "/opt/doris"},
		Cluster: sdk.Cluster{Nodes: []sdk.Node{
			{Host: "10.0.0.1", Role: doris.RoleFE, Labels: map[string]string{doris.LabelMaster: "true"}, Ports: map[string]int{"query_port": 9030}},
			{Host: "10.0.0.4", Role: doris.RoleBE}, {Host: "10.0.0.5", Role: doris.RoleBE}, {Host: "10.0.0.6", Role: doris.RoleBE},
		}},
		Params: map[string]string{"startTimeout": "2s", "aliveTimeout": "1s"},
	}
}

func failure(t *testing.T, err error) *sdk.Failure {
	t.Helper()
	var f *sdk.Failure
	if !errors.As(err, &f) {
		t.Fatalf("want *sdk.Failure, got %T %v", err, err)
	}
	return f
}

func TestPrecheckKernelIsHardForBE(t *testing.T) {
	ctx := context.Background()
	h := doristest.New()
	h.MaxMapCount, h.Swaps = 65530, []string{"/dev/sda2"}
	_, err := newRole().Precheck(ctx, h, beReq("10.0.0.4"))
	f := failure(t, err)
	if !strings.Contains(f.Summary, "vm.max_map_count is 65530, Doris BE needs >= 2000000: run sysctl -w vm.max_map_count=2000000 or install with autoFix") ||
		!strings.Contains(f.Detail, "swap is on (/dev/sda2)") {
		t.Errorf("failure %+v", f)
	}
	// One exec reads the pid file and probes the host; nothing changed
	// without autoFix.
	if ex := h.Execs(); len(ex) != 1 || ex[0][3] != "doris-proc-probe" {
		t.Errorf("execs %v", ex)
	}
}

func TestPrecheckAutoFix(t *testing.T) {
	h := doristest.New()
	h.MaxMapCount, h.Swaps = 65530, []string{"/swapfile"}
	h.ExecOK("vm.max_map_count = 2000000", "sysctl", "-w", "vm.max_map_count=2000000")
	h.ExecOK("", "swapoff", "-a")
	req := beReq("10.0.0.4")
	req.AutoFix = true
	res, err := newRole().Precheck(context.Background(), h, req)
	if err != nil {
		t.Fatalf("precheck: %v", err)
	}
	if !strings.Contains(res.Detail, "FIXED: vm.max_map_count raised to 2000000") || !strings.Contains(res.Detail, "FIXED: swap turned off") ||
		res.Facts["swap"] != "off" || res.Facts["maxMapCount"] != "2000000" || !strings.Contains(res.Summary, "2 fixed") {
		t.Errorf("result %+v", res)
	}
	// A fix that fails is reported with what happened.
	h2 := doristest.New()
	h2.MaxMapCount = 65530
	h2.ExecExit(255, "sysctl: permission denied on key \"vm.max_map_count\"", "sysctl")
	_, err = newRole().Precheck(context.Background(), h2, req)
	if f := failure(t, err); !strings.Contains(f.Summary, "autoFix could not raise it") || !strings.Contains(f.Summary, "permission denied") {
		t.Errorf("failure %+v", f)
	}
}

func TestPrecheckOpenFiles(t *testing.T) {
	h := doristest.New()
	h.NoFileHard = 20000
	_, err := newRole().Precheck(context.Background(), h, beReq("10.0.0.4"))
	if f := failure(t, err); !strings.Contains(f.Summary, "open-files hard limit of the agent is 20000, Doris BE needs >= 60000") {
		t.Errorf("failure %+v", f)
	}
	req := beReq("10.0.0.4")
	req.Params["minOpenFiles"] = "10000"
	res, err := newRole().Precheck(context.Background(), h, req)
	if err != nil || res.Facts["openFiles"] != "20000" {
		t.Errorf("lowered floor: %+v %v", res, err)
	}
}

func TestConfigureStorageRoots(t *testing.T) {
	h := doristest.New()
	h.Install(doris.BE, "")
	req := beReq("10.0.0.4")
	req.Conf = "storage_root_path = /data1,SSD;/data2,medium:HDD;${DORIS_HOME}/storage\nheartbeat_service_port = 19050\n"
	res, err := newRole().Configure(context.Background(), h, req)
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	if got := strings.Join(h.Execs()[0], " "); got != "mkdir -p -- /data1 /data2 /opt/doris/be/storage" {
		t.Errorf("mkdir %q", got)
	}
	if res.Facts["storageRootPath"] != "/data1;/data2;/opt/doris/be/storage" || res.Facts["port.heartbeat_service_port"] != "19050" || res.Facts["port.webserver_port"] != "8040" {
		t.Errorf("facts %v", res.Facts)
	}
	h.ExecExit(1, "mkdir: cannot create directory '/data1': Permission denied", "mkdir")
	_, err = newRole().Configure(context.Background(), h, req)
	if f := failure(t, err); !strings.Contains(f.Summary, "cannot create /data1") || !strings.Contains(f.Summary, "Permission denied") {
		t.Errorf("failure %+v", f)
	}
	req.Conf = "storage_root_path = data1\n"
	_, err = newRole().Configure(context.Background(), h, req)
	if f := failure(t, err); !strings.Contains(f.Summary, "must be absolute") {
		t.Errorf("failure %+v", f)
	}
}

func TestStartWaitsForHealth(t *testing.T) {
	h := doristest.New()
	h.Install(doris.BE, "webserver_port = 18040\n")
	h.NoFileHard = 1048576
	var mu sync.Mutex
	probes := 0
	h.HandleHTTPGet("http://10.0.0.4:18040/api/health", func(string) (sdk.HTTPResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		probes++
		if probes < 3 {
			return sdk.HTTPResponse{}, errors.New("connection refused")
		}
		return sdk.HTTPResponse{Status: 200, Body: []byte(`{"status": "OK","msg": "To Be Added"}`)}, nil
	})
	res, err := newRole().Start(context.Background(), h, beReq("10.0.0.4"))
	if err != nil || res.Facts["healthy"] != "true" {
		t.Fatalf("start %+v %v", res, err)
	}
	if probes != 3 {
		t.Errorf("health probed %d times, want 3", probes)
	}
	var before []string // what ran before start_be.sh
	for _, c := range h.CallsOf("Exec") {
		if strings.HasSuffix(c.Command.Argv[1], "start_be.sh") {
			if c.Command.NoFile != 65536 || strings.Join(c.Command.Argv[2:], " ") != "--daemon" {
				t.Errorf("start command %+v", c.Command)
			}
			break
		}
		before = append(before, c.Command.Argv[3])
	}
	// The pid file and the start's host probe (no disk, no java) in one exec.
	if len(before) != 1 || before[0] != "doris-start-probe" {
		t.Errorf("execs before the start script: %v, want [doris-start-probe]", before)
	}
}

func TestStartRefusesKernelBeforeScript(t *testing.T) {
	h := doristest.New()
	h.Install(doris.BE, "")
	h.MaxMapCount = 65530
	_, err := newRole().Start(context.Background(), h, beReq("10.0.0.4"))
	if f := failure(t, err); !strings.Contains(f.Summary, "vm.max_map_count >= 2000000") {
		t.Errorf("failure %+v", f)
	}
	if h.Running(doris.BE) {
		t.Error("BE started on a host start_be.sh refuses")
	}
}

type cluster struct {
	mu       sync.Mutex
	backends []string
	adds     []string
}

func (c *cluster) host(t *testing.T, liveAfterAdd bool) *doristest.Host {
	h := doristest.New()
	h.QueryRows("SHOW FRONTENDS", doristest.FrontendsRows("10.0.0.1:9010:9030:FOLLOWER:true:true"))
	h.HandleQuery("SHOW BACKENDS", func(fe, _ string) (sdk.Rows, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return doristest.BackendsRows(c.backends...), nil
	})
	h.HandleQuery("ALTER SYSTEM ADD BACKEND", func(fe, sql string) (sdk.Rows, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.adds = append(c.adds, sql)
		var eps []string
		for _, q := range strings.Split(strings.TrimPrefix(sql, "ALTER SYSTEM ADD BACKEND "), ", ") {
			eps = append(eps, strings.Trim(q, `"`))
		}
		for _, ep := range eps {
			for _, b := range c.backends {
				if strings.HasPrefix(b, ep+":") {
					return sdk.Rows{}, errors.New("errCode = 2, detailMessage = Same backend already exists[" + ep + "]")
				}
			}
		}
		for _, ep := range eps {
			c.backends = append(c.backends, ep+":"+map[bool]string{true: "true", false: "false"}[liveAfterAdd])
		}
		return sdk.Rows{}, nil
	})
	return h
}

func targets(hosts ...string) []sdk.Node {
	var ns []sdk.Node
	for _, h := range hosts {
		ns = append(ns, sdk.Node{Host: h, Role: doris.RoleBE})
	}
	return ns
}

func TestRegisterAddsMissingInOneStatement(t *testing.T) {
	c := &cluster{backends: []string{"10.0.0.4:9050:true"}}
	h := c.host(t, true)
	req := beReq("10.0.0.4")
	req.Targets = targets("10.0.0.4", "10.0.0.5", "10.0.0.6")
	res, err := newRole().Register(context.Background(), h, req)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if len(c.adds) != 1 || c.adds[0] != `ALTER SYSTEM ADD BACKEND "10.0.0.5:9050", "10.0.0.6:9050"` {
		t.Errorf("adds %v", c.adds)
	}
	if res.Facts[sdk.FactRegistered] != "true" || res.Facts[sdk.FactAlive] != "true" || res.Facts["master"] != "10.0.0.1" {
		t.Errorf("facts %v", res.Facts)
	}
}

func TestRegisterAlreadyExistsFallsBackToOneByOne(t *testing.T) {
	c := &cluster{}
	h := c.host(t, true)
	// SHOW BACKENDS lags: it does not list 10.0.0.5 yet, but the FE has it.
	h.HandleQuery("SHOW BACKENDS", func(string, string) (sdk.Rows, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.adds) == 0 {
			c.backends = []string{"10.0.0.5:9050:true"}
			return doristest.BackendsRows(), nil
		}
		return doristest.BackendsRows(c.backends...), nil
	})
	req := beReq("10.0.0.4")
	req.Targets = targets("10.0.0.4", "10.0.0.5")
	if _, err := newRole().Register(context.Background(), h, req); err != nil {
		t.Fatalf("register: %v", err)
	}
	want := []string{`ALTER SYSTEM ADD BACKEND "10.0.0.4:9050", "10.0.0.5:9050"`, `ALTER SYSTEM ADD BACKEND "10.0.0.4:9050"`, `ALTER SYSTEM ADD BACKEND "10.0.0.5:9050"`}
	if strings.Join(c.adds, "|") != strings.Join(want, "|") {
		t.Errorf("adds %q", c.adds)
	}
}

func TestRegisterNamesDeadNodes(t *testing.T) {
	c := &cluster{backends: []string{"10.0.0.4:9050:true"}}
	h := c.host(t, false)
	req := beReq("10.0.0.4")
	req.Targets = targets("10.0.0.4", "10.0.0.5")
	_, err := newRole().Register(context.Background(), h, req)
	f := failure(t, err)
	if !strings.Contains(f.Summary, "BE not alive after 1s: 10.0.0.5:9050 (Alive=false)") || strings.Contains(f.Summary, "10.0.0.4") {
		t.Errorf("failure %+v", f)
	}
}

// decommissioning is a fake cluster whose master moves a decommissioned
// BE's tablets off it, two per SHOW BACKENDS, and drops it when none are left.
type decommissioning struct {
	mu    sync.Mutex
	bes   map[string]*fakeBE // by "host:port"
	order []string
	stmts []string
}

type fakeBE struct {
	alive, decom bool
	tablets      int
}

func newDecommissioning(bes ...string) *decommissioning {
	d := &decommissioning{bes: map[string]*fakeBE{}}
	for _, b := range bes {
		d.bes[b] = &fakeBE{alive: true, tablets: 5}
		d.order = append(d.order, b)
	}
	return d
}

func (d *decommissioning) host(replication ...int) *doristest.Host {
	h := doristest.New()
	h.QueryRows("SHOW FRONTENDS", doristest.FrontendsRows("10.0.0.1:9010:9030:FOLLOWER:true:true"))
	h.HandleQuery("SHOW PROC '/dbs", doristest.CatalogRows(replication...))
	h.HandleQuery("SHOW BACKENDS", func(string, string) (sdk.Rows, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		var rows []string
		for _, ep := range d.order {
			b, ok := d.bes[ep]
			if !ok {
				continue
			}
			if b.decom {
				if b.tablets == 0 {
					delete(d.bes, ep)
					continue
				}
				b.tablets = max(0, b.tablets-2)
			}
			rows = append(rows, fmt.Sprintf("%s:%v:%v:%d", ep, b.alive, b.decom, b.tablets))
		}
		return doristest.BackendsRows(rows...), nil
	})
	h.HandleQuery("ALTER SYSTEM", func(_, sql string) (sdk.Rows, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.stmts = append(d.stmts, sql)
		for _, ep := range strings.Split(sql[strings.Index(sql, `"`):], ", ") {
			b := d.bes[strings.Trim(ep, `"`)]
			switch {
			case b == nil:
				return sdk.Rows{}, errors.New("errCode = 2, detailMessage = Backend does not exist[" + ep + "]")
			case strings.HasPrefix(sql, "ALTER SYSTEM DECOMMISSION"):
				b.decom = true
			case strings.HasPrefix(sql, "ALTER SYSTEM DROPP"):
				delete(d.bes, strings.Trim(ep, `"`))
			}
		}
		return sdk.Rows{}, nil
	})
	return h
}

func TestUnregisterDecommissions(t *testing.T) {
	d := newDecommissioning("10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050")
	h := d.host(1, 2)
	req := beReq("10.0.0.4")
	req.Targets = targets("10.0.0.4", "10.0.0.9")
	res, err := newRole().Unregister(context.Background(), h, req)
	if err != nil || res.Facts[sdk.FactRegistered] != "false" || res.Facts[sdk.FactDecommissioning] != "false" {
		t.Fatalf("unregister %+v %v", res, err)
	}
	if strings.Join(d.stmts, "|") != `ALTER SYSTEM DECOMMISSION BACKEND "10.0.0.4:9050"` {
		t.Errorf("statements %q", d.stmts)
	}
	if _, listed := d.bes["10.0.0.4:9050"]; listed {
		t.Error("returned before the cluster dropped the BE")
	}
	var progress []string
	for _, l := range h.Logs() {
		if strings.HasPrefix(l, "decommissioning: ") {
			progress = append(progress, l)
		}
	}
	want := []string{"decommissioning: 3 tablets left (10.0.0.4:9050 3)", "decommissioning: 1 tablets left (10.0.0.4:9050 1)",
		"decommissioning: 0 tablets left (10.0.0.4:9050 0)"}
	if strings.Join(progress, "|") != strings.Join(want, "|") {
		t.Errorf("progress %q", progress)
	}

	// Already gone: nothing to do.
	res, err = newRole().Unregister(context.Background(), h, req)
	if err != nil || len(d.stmts) != 1 || !strings.Contains(res.Summary, "not members") {
		t.Errorf("again: %+v %v %q", res, err, d.stmts)
	}
}

func TestUnregisterRefusesWhenReplicasCannotBePlaced(t *testing.T) {
	cases := []struct {
		name    string
		bes     []string
		dead    string
		targets []string
		rep     []int
		wantErr string
	}{
		{name: "three replicas on three BEs", bes: []string{"10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050"}, targets: []string{"10.0.0.4"},
			rep: []int{1, 3}, wantErr: "only 2 alive BEs would remain, but table db.t1 needs 3 replicas"},
		{name: "a dead BE does not count", bes: []string{"10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050", "10.0.0.7:9050"}, dead: "10.0.0.7:9050",
			targets: []string{"10.0.0.4"}, rep: []int{3}, wantErr: "only 2 alive BEs would remain"},
		{name: "two at once", bes: []string{"10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050", "10.0.0.7:9050"},
			targets: []string{"10.0.0.4", "10.0.0.5"}, rep: []int{3}, wantErr: "cannot take out 10.0.0.4:9050, 10.0.0.5:9050"},
		{name: "enough left", bes: []string{"10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050", "10.0.0.7:9050"}, targets: []string{"10.0.0.4"}, rep: []int{3}},
		{name: "no tables", bes: []string{"10.0.0.4:9050"}, targets: []string{"10.0.0.4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDecommissioning(c.bes...)
			if c.dead != "" {
				d.bes[c.dead].alive = false
			}
			h := d.host(c.rep...)
			req := beReq(c.targets[0])
			req.Targets = targets(c.targets...)
			_, err := newRole().Unregister(context.Background(), h, req)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unregister: %v", err)
				}
				return
			}
			if f := failure(t, err); !strings.Contains(f.Summary, c.wantErr) {
				t.Fatalf("failure %q, want %q", f.Summary, c.wantErr)
			}
			if len(d.stmts) != 0 {
				t.Errorf("statements sent although refused: %q", d.stmts)
			}
		})
	}
}

func TestUnregisterForceDrops(t *testing.T) {
	for _, how := range []string{"force", "param"} {
		d := newDecommissioning("10.0.0.4:9050", "10.0.0.5:9050")
		h := d.host(2)
		req := beReq("10.0.0.4")
		if how == "force" {
			req.Force = true
		} else {
			req.Params["unregisterMode"] = "drop"
		}
		res, err := newRole().Unregister(context.Background(), h, req)
		if err != nil || res.Facts[sdk.FactRegistered] != "false" || strings.Join(d.stmts, "|") != `ALTER SYSTEM DROPP BACKEND "10.0.0.4:9050"` {
			t.Errorf("%s: %+v %v %q", how, res, err, d.stmts)
		}
	}
}

func TestUnregisterWaitsForRunningDecommission(t *testing.T) {
	d := newDecommissioning("10.0.0.4:9050", "10.0.0.5:9050")
	d.bes["10.0.0.4:9050"].decom = true
	h := d.host(2) // would be refused if it were asked again
	res, err := newRole().Unregister(context.Background(), h, beReq("10.0.0.4"))
	if err != nil || len(d.stmts) != 0 {
		t.Fatalf("unregister %+v %v %q", res, err, d.stmts)
	}
}

func TestUnregisterNoticesCancel(t *testing.T) {
	d := newDecommissioning("10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050")
	d.bes["10.0.0.4:9050"].tablets = 100
	h := d.host(1)
	h.HandleQuery("ALTER SYSTEM DECOMMISSION", func(string, string) (sdk.Rows, error) { return sdk.Rows{}, nil }) // nobody marks it
	_, err := newRole().Unregister(context.Background(), h, beReq("10.0.0.4"))
	if f := failure(t, err); !strings.Contains(f.Summary, "was cancelled") {
		t.Fatalf("failure %+v", f)
	}
}

func TestUnregisterOutOfTime(t *testing.T) {
	d := newDecommissioning("10.0.0.4:9050", "10.0.0.5:9050", "10.0.0.6:9050")
	d.bes["10.0.0.4:9050"].tablets = 1 << 30
	h := d.host(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := newRole().Unregister(ctx, h, beReq("10.0.0.4"))
	f := failure(t, err)
	if !f.Retryable || !strings.Contains(f.Summary, "10.0.0.4:9050 still decommissioning") {
		t.Fatalf("failure %+v", f)
	}
}

// doris_be writes be.pid itself after start_be.sh has returned: a pid file
// that appears a moment later is a BE starting, not one that exited.
func TestStartWaitsForThePidFile(t *testing.T) {
	h := doristest.New()
	h.Install(doris.BE, "")
	h.HTTPGetResponse("http://10.0.0.4:8040/api/health", 200, `{"status": "OK","msg": "To Be Added"}`)
	var mu sync.Mutex
	started, polls := false, 0
	h.OnStart = func([]string) {
		mu.Lock()
		defer mu.Unlock()
		started = true
	}
	h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if !started {
			return sdk.ExecResult{}, nil // nothing running before the start
		}
		if polls++; polls < 3 {
			return sdk.ExecResult{}, nil // no pid file yet
		}
		return sdk.ExecResult{Output: "pid=4242\nstate=S\ncmdline=/opt/doris/be/lib/doris_be\n"}, nil
	}, "bash", "-c", doris.ProcScript)
	res, err := newRole().Start(context.Background(), h, beReq("10.0.0.4"))
	if err != nil || res.Facts["pid"] != "4242" {
		t.Fatalf("start %+v %v", res, err)
	}
	if polls < 3 {
		t.Errorf("pid file read %d times after the start, want 3", polls)
	}
}

func TestReconfigure(t *testing.T) {
	h := doristest.New()
	h.Install(doris.BE, "disable_auto_compaction = false\nbe_port = 9060\n")
	h.SetRunning(doris.BE, 4100)
	h.SetFile("/opt/doris/be/conf/be_custom.conf", []byte("max_tablet_version_num = 3000\n"), 0o644)
	h.HTTPGetResponse("http://10.0.0.4:8040/api/show_config", 200,
		`[["be_port","int32_t","9060","false"],["disable_auto_compaction","bool","false","true"],["max_tablet_version_num","int32_t","3000","true"]]`)
	var posts []string
	h.HandleHTTPPost("http://10.0.0.4:8040/api/update_config", func(url, _ string, _ []byte) (sdk.HTTPResponse, error) {
		posts = append(posts, strings.TrimPrefix(url, "http://10.0.0.4:8040"))
		if strings.Contains(url, "max_tablet_version_num") {
			return sdk.HTTPResponse{Status: 200, Body: []byte(`[{"config_name":"max_tablet_version_num","status":"BAD","msg":"set max_tablet_version_num=x failed"}]`)}, nil
		}
		return sdk.HTTPResponse{Status: 200, Body: []byte(`[{"config_name":"disable_auto_compaction","status":"OK","msg":""}]`)}, nil
	})
	req := beReq("10.0.0.4")
	req.Conf = "disable_auto_compaction = true\nbe_port = 9061\nstorage_root_path = ${DORIS_HOME}/storage;/data2/be\n"
	res, err := newRole().Reconfigure(context.Background(), h, req)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(posts, "|") != "/api/update_config?disable_auto_compaction=true" {
		t.Errorf("posts %q (persist must not be asked: be_custom.conf would win over be.conf)", posts)
	}
	if res.Facts[sdk.FactRestartNeeded] != "true" || len(res.Changes) != 3 || res.Changes[0].Impact != sdk.ImpactRestart ||
		res.Changes[1].Impact != sdk.ImpactLive || res.Changes[2].Key != "storage_root_path" {
		t.Errorf("result %+v", res)
	}
	var mkdir []string
	for _, argv := range h.Execs() {
		if argv[0] == "mkdir" {
			mkdir = argv
		}
	}
	if strings.Join(mkdir, " ") != "mkdir -p -- /data2/be" {
		t.Errorf("new storage root not created: %v", mkdir)
	}

	// A key the BE refuses live fails the call; be_custom.conf is named
	// when it shadows a changed key.
	posts = nil
	req.Conf = "disable_auto_compaction = true\nbe_port = 9061\nstorage_root_path = ${DORIS_HOME}/storage;/data2/be\nmax_tablet_version_num = 10\n"
	req.DryRun = true
	res, err = newRole().Reconfigure(context.Background(), h, req)
	if err != nil || !strings.Contains(res.Detail, "be_custom.conf also sets max_tablet_version_num") || len(posts) != 0 {
		t.Fatalf("dry run %+v %v %q", res, err, posts)
	}
	req.DryRun = false
	_, err = newRole().Reconfigure(context.Background(), h, req)
	if f := failure(t, err); !strings.Contains(f.Summary, "set max_tablet_version_num=x failed") {
		t.Fatalf("failure %+v", f)
	}
}
