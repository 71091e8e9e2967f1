package berole

import (
	"context"
	"errors"
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
	// The pid file and the host probe in one exec.
	if len(before) != 1 || before[0] != "doris-proc-probe" {
		t.Errorf("execs before the start script: %v, want [doris-proc-probe]", before)
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
	if res.Facts["registered"] != "YES" || res.Facts["master"] != "10.0.0.1" {
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

func TestUnregister(t *testing.T) {
	c := &cluster{backends: []string{"10.0.0.4:9050:true", "10.0.0.5:9050:true"}}
	h := c.host(t, true)
	h.QueryRows("ALTER SYSTEM DECOMMISSION", sdk.Rows{})
	h.QueryRows("ALTER SYSTEM DROPP", sdk.Rows{})
	req := beReq("10.0.0.4")
	req.Targets = targets("10.0.0.4", "10.0.0.9")
	res, err := newRole().Unregister(context.Background(), h, req)
	if err != nil || res.Facts["registered"] != "DECOMMISSIONING" {
		t.Fatalf("unregister %+v %v", res, err)
	}
	q := h.CallsOf("Query")
	if q[len(q)-1].SQL != `ALTER SYSTEM DECOMMISSION BACKEND "10.0.0.4:9050"` {
		t.Errorf("sql %q", q[len(q)-1].SQL)
	}
	req.Params["unregisterMode"] = "drop"
	res, err = newRole().Unregister(context.Background(), h, req)
	q = h.CallsOf("Query")
	if err != nil || res.Facts["registered"] != "NO" || q[len(q)-1].SQL != `ALTER SYSTEM DROPP BACKEND "10.0.0.4:9050"` {
		t.Errorf("drop: %+v %v %q", res, err, q[len(q)-1].SQL)
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
