package ferole

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

func newRole() *Role {
	r := New("1.2.3")
	r.Backoff = doris.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	return r
}

func feReq(host string, master bool) sdk.Request {
	n := sdk.Node{Host: host, Role: doris.RoleFE, InstallDir: "/opt/doris"}
	if master {
		n.Labels = map[string]string{doris.LabelMaster: "true"}
	}
	return sdk.Request{Node: n, Cluster: sdk.Cluster{Nodes: []sdk.Node{
		{Host: "10.0.0.1", Role: doris.RoleFE, Labels: map[string]string{doris.LabelMaster: "true"}},
		{Host: "10.0.0.2", Role: doris.RoleFE, Labels: map[string]string{doris.LabelFENodeType: doris.FEFollower}},
		{Host: "10.0.0.3", Role: doris.RoleFE, Labels: map[string]string{doris.LabelFENodeType: doris.FEObserver}},
	}}, Params: map[string]string{"startTimeout": "2s", "aliveTimeout": "1s"}}
}

func failure(t *testing.T, err error) *sdk.Failure {
	t.Helper()
	var f *sdk.Failure
	if !errors.As(err, &f) {
		t.Fatalf("want *sdk.Failure, got %T %v", err, err)
	}
	return f
}

func TestInfo(t *testing.T) {
	info, err := newRole().Info(context.Background())
	if err != nil || info.Name != "doris-role-fe" || info.Role != doris.RoleFE || info.Version != "1.2.3" || info.APIMajor != sdk.APIMajor {
		t.Fatalf("info %+v %v", info, err)
	}
}

func TestPrecheck(t *testing.T) {
	ctx := context.Background()
	t.Run("kernel settings only warn for FE", func(t *testing.T) {
		h := doristest.New()
		h.MaxMapCount, h.Swaps, h.NoFileHard = 65530, []string{"/swapfile"}, 20000
		res, err := newRole().Precheck(ctx, h, feReq("10.0.0.1", true))
		if err != nil {
			t.Fatalf("precheck: %v", err)
		}
		if !strings.Contains(res.Detail, "WARN: vm.max_map_count is 65530") || !strings.Contains(res.Detail, "WARN: swap is on") || res.Facts["openFiles"] != "20000" {
			t.Errorf("result %+v", res)
		}
		for _, argv := range h.Execs() {
			if argv[0] == "sysctl" || argv[0] == "swapoff" {
				t.Errorf("FE precheck must not change the kernel: %v", argv)
			}
		}
	})
	t.Run("java missing", func(t *testing.T) {
		h := doristest.New()
		h.Java = ""
		_, err := newRole().Precheck(ctx, h, feReq("10.0.0.1", true))
		if f := failure(t, err); !strings.Contains(f.Summary, "no usable java") || !strings.Contains(f.Summary, "JAVA_HOME") {
			t.Errorf("failure %v", f)
		}
	})
	t.Run("port busy names the key", func(t *testing.T) {
		h := doristest.New()
		h.Busy[19030] = true
		req := feReq("10.0.0.1", true)
		req.Node.Ports = map[string]int{"query_port": 19030}
		_, err := newRole().Precheck(ctx, h, req)
		if f := failure(t, err); !strings.Contains(f.Summary, "port 19030 (query_port) is already in use") {
			t.Errorf("failure %v", f)
		}
	})
	t.Run("a running FE holds its own ports", func(t *testing.T) {
		h := doristest.New()
		h.SetRunning(doris.FE, 1234)
		h.Busy[9030], h.Busy[9010] = true, true
		res, err := newRole().Precheck(ctx, h, feReq("10.0.0.1", true))
		if err != nil || !strings.Contains(res.Detail, "FE already running from /opt/doris/fe (pid 1234)") {
			t.Errorf("precheck %+v %v", res, err)
		}
		if ex := h.Execs(); len(ex) != 1 {
			t.Errorf("execs %v, want one (pid file and probe together)", ex)
		}
	})
	t.Run("a stale pid of another process does not hide busy ports", func(t *testing.T) {
		h := doristest.New()
		h.HandleExec(func(sdk.Command) (sdk.ExecResult, error) {
			return sdk.ExecResult{Output: "[proc]\npid=99\nstate=S\ncmdline=/usr/sbin/nginx\n[probe]\nmax_map_count=2000000\nnofile_hard=65536\ndisk_avail_kb=104857600\njava=/j/bin/java\njava_version=17\nport_busy=9030\n"}, nil
		}, "bash", "-c", doris.ProcProbeScript)
		_, err := newRole().Precheck(ctx, h, feReq("10.0.0.1", true))
		if f := failure(t, err); !strings.Contains(f.Summary, "port 9030 (query_port) is already in use") {
			t.Errorf("failure %v", f)
		}
	})
	t.Run("probe prints nothing usable", func(t *testing.T) {
		h := doristest.New()
		h.ExecExit(126, "[proc]\n[probe]\nbash: awk: command not found", "bash", "-c", doris.ProcProbeScript)
		_, err := newRole().Precheck(ctx, h, feReq("10.0.0.1", true))
		if err == nil || !strings.Contains(err.Error(), "probe host") {
			t.Errorf("want the probe's failure, got %v", err)
		}
	})
	t.Run("disk", func(t *testing.T) {
		h := doristest.New()
		h.DiskAvailKB = 1 << 20
		_, err := newRole().Precheck(ctx, h, feReq("10.0.0.1", true))
		if f := failure(t, err); !strings.Contains(f.Summary, "only 1.0 GB free") {
			t.Errorf("failure %v", f)
		}
	})
	t.Run("relative install dir", func(t *testing.T) {
		req := feReq("10.0.0.1", true)
		req.Node.InstallDir = "doris"
		_, err := newRole().Precheck(ctx, doristest.New(), req)
		if f := failure(t, err); !strings.Contains(f.Summary, "absolute") {
			t.Errorf("failure %v", f)
		}
	})
}

func installHost(found string) *doristest.Host {
	h := doristest.New()
	h.ExecOK(found, "find")
	h.ExecOK("", "bash", "-c", doris.InstallArgv("", "", "", "")[2])
	return h
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	req := feReq("10.0.0.1", true)
	req.PackageURL, req.PackageSHA256 = "http://repo/apache-doris-2.0.3-bin-x64.tar.xz", "AB12"
	cache := doris.PackageCacheDir("/opt/doris", req.PackageURL)
	h := installHost(cache + "/apache-doris-2.0.3-bin-x64/fe/bin/start_fe.sh\n")
	res, err := newRole().Install(ctx, h, req)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if res.Facts["installDir"] != "/opt/doris/fe" {
		t.Errorf("facts %v", res.Facts)
	}
	dl := h.CallsOf("Download")
	if len(dl) != 1 || dl[0].Download.Dest != cache || !dl[0].Download.Unpack || dl[0].Download.SHA256 != "AB12" {
		t.Fatalf("download %+v", dl)
	}
	var inst []string
	for _, argv := range h.Execs() {
		if len(argv) > 3 && argv[3] == "doris-install" {
			inst = argv
		}
	}
	if inst == nil || inst[4] != cache+"/apache-doris-2.0.3-bin-x64/fe" || inst[5] != "/opt/doris/fe" || inst[6] != req.PackageURL+" sha256:ab12" {
		t.Fatalf("install argv %q", inst)
	}

	// Running it again with the install in place changes nothing.
	h.SetFile("/opt/doris/fe/.doris-manager-package", []byte(inst[6]+"\n"), 0o644)
	h.ResetCalls()
	res, err = newRole().Install(ctx, h, req)
	if err != nil || !strings.Contains(res.Summary, "already installed") || len(h.CallsOf("Download")) != 0 || len(h.Execs()) != 0 {
		t.Fatalf("re-install: %+v %v, calls %v", res, err, h.Calls())
	}

	// Another package over it is refused.
	other := req
	other.PackageURL = "http://repo/apache-doris-2.1.0-bin-x64.tar.gz"
	_, err = newRole().Install(ctx, h, other)
	if f := failure(t, err); !strings.Contains(f.Summary, "installed from another package") {
		t.Errorf("failure %v", f)
	}
}

func TestInstallPackageWithoutRole(t *testing.T) {
	req := feReq("10.0.0.1", true)
	req.PackageURL = "http://repo/apache-doris-be-2.0.3-bin-x64.tar.gz"
	_, err := newRole().Install(context.Background(), installHost(""), req)
	f := failure(t, err)
	if !strings.Contains(f.Summary, "has no FE folder") || !strings.Contains(f.Summary, req.PackageURL) {
		t.Errorf("failure %v", f)
	}
}

func TestConfigure(t *testing.T) {
	ctx := context.Background()
	h := doristest.New()
	h.Install(doris.FE, "")
	h.RemoveFile("/opt/doris/fe/conf/fe.conf")
	req := feReq("10.0.0.1", true)
	req.Conf = "# fe\nJAVA_OPTS=\"-Xmx4g\"\nmeta_dir = /data/doris-meta\nquery_port = 19030\n"
	res, err := newRole().Configure(ctx, h, req)
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	f, ok := h.File("/opt/doris/fe/conf/fe.conf")
	if !ok || string(f.Data) != req.Conf {
		t.Fatalf("conf written: %q", f.Data)
	}
	want := map[string]string{"port.query_port": "19030", "port.http_port": "8030", "port.edit_log_port": "9010", "port.rpc_port": "9020", "metaDir": "/data/doris-meta", "installDir": "/opt/doris/fe"}
	for k, v := range want {
		if res.Facts[k] != v {
			t.Errorf("fact %s = %q, want %q", k, res.Facts[k], v)
		}
	}
	if ex := h.Execs(); len(ex) != 1 || strings.Join(ex[0], " ") != "mkdir -p -- /data/doris-meta" {
		t.Errorf("execs %v", ex)
	}

	bad := req
	bad.Conf = "query_port = 19030\nquery_port = 19031\nbogus line\n"
	_, err = newRole().Configure(ctx, h, bad)
	if f := failure(t, err); !strings.Contains(f.Summary, "line 2: query_port is already set on line 1") || !strings.Contains(f.Summary, "line 3: expected key = value") {
		t.Errorf("failure %v", f)
	}

	clash := req
	clash.Conf = "http_port = 8040\n"
	clash.Cluster.Nodes = append(clash.Cluster.Nodes, sdk.Node{Host: "10.0.0.1", Role: doris.RoleBE, Ports: map[string]int{"webserver_port": 8040}})
	_, err = newRole().Configure(ctx, h, clash)
	if f := failure(t, err); !strings.Contains(f.Summary, "http_port 8040 is also BE's webserver_port") {
		t.Errorf("failure %v", f)
	}

	h.RemoveFile("/opt/doris/fe/bin/start_fe.sh")
	_, err = newRole().Configure(ctx, h, req)
	if f := failure(t, err); !strings.Contains(f.Summary, "run installService first") {
		t.Errorf("failure %v", f)
	}
}

const bootOK = `{"msg":"success","code":0,"data":{"replayedJournalId":0},"count":0}`

func TestStartMaster(t *testing.T) {
	h := doristest.New()
	h.Install(doris.FE, "http_port = 8030\n")
	h.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, bootOK)
	res, err := newRole().Start(context.Background(), h, feReq("10.0.0.1", true))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var start sdk.Command
	for _, c := range h.CallsOf("Exec") {
		if strings.HasSuffix(c.Command.Argv[1], "start_fe.sh") {
			start = c.Command
		}
	}
	if strings.Join(start.Argv, " ") != "bash /opt/doris/fe/bin/start_fe.sh --daemon" || start.Dir != "/opt/doris/fe" || !start.Detach || start.NoFile != 65536 {
		t.Errorf("start command %+v", start)
	}
	if len(h.CallsOf("Query")) != 0 {
		t.Error("the master FE must start without asking anyone")
	}
	if res.Facts["healthy"] != "true" || res.Facts["running"] != "true" || res.Facts["openFiles"] != "65536" {
		t.Errorf("facts %v", res.Facts)
	}
}

// TestStartWaitsForTheRewrittenPidFile: DorisFE truncates and rewrites the
// fe.pid that start_fe.sh wrote, so a poll can find it empty for a moment;
// that is an FE still starting, not one that exited.
func TestStartWaitsForTheRewrittenPidFile(t *testing.T) {
	h := doristest.New()
	h.Install(doris.FE, "http_port = 8030\n")
	h.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, bootOK)
	h.OnStart = func([]string) {
		h.SetRunning(doris.FE, 0)
		time.AfterFunc(300*time.Millisecond, func() { h.SetRunning(doris.FE, 4343) })
	}
	res, err := newRole().Start(context.Background(), h, feReq("10.0.0.1", true))
	if err != nil {
		t.Fatalf("start with a pid file rewritten after the script: %v", err)
	}
	if res.Facts["pid"] != "4343" || res.Facts["healthy"] != "true" {
		t.Errorf("facts %v: want the pid the FE wrote and healthy", res.Facts)
	}
}

func TestStartFollowerIsAddedBeforeItStarts(t *testing.T) {
	for _, tc := range []struct {
		host, typ string
	}{{"10.0.0.2", "FOLLOWER"}, {"10.0.0.3", "OBSERVER"}} {
		t.Run(tc.typ, func(t *testing.T) {
			h := doristest.New()
			h.Install(doris.FE, "")
			h.NoFileHard = 20000
			var mu sync.Mutex
			members := []string{"10.0.0.1:9010:9030:FOLLOWER:true:true"}
			h.HandleQuery("SHOW FRONTENDS", func(fe, _ string) (sdk.Rows, error) {
				mu.Lock()
				defer mu.Unlock()
				return doristest.FrontendsRows(members...), nil
			})
			h.HandleQuery("ALTER SYSTEM ADD", func(fe, sql string) (sdk.Rows, error) {
				if fe != "10.0.0.1:9030" {
					t.Errorf("DDL sent to %s, not the master", fe)
				}
				return sdk.Rows{}, nil
			})
			h.HTTPGetResponse("http://"+tc.host+":8030/api/bootstrap", 200, bootOK)
			res, err := newRole().Start(context.Background(), h, feReq(tc.host, false))
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			addAt, startAt := -1, -1
			for i, c := range h.Calls() {
				if c.Method == "Query" && c.SQL == `ALTER SYSTEM ADD `+tc.typ+` "`+tc.host+`:9010"` {
					addAt = i
				}
				if c.Method == "Exec" && strings.HasSuffix(c.Command.Argv[1], "start_fe.sh") {
					startAt = i
					if got := strings.Join(c.Command.Argv[2:], " "); got != "--helper 10.0.0.1:9010 --daemon" {
						t.Errorf("start args %q", got)
					}
					if c.Command.NoFile != 20000 {
						t.Errorf("NoFile %d, want the hard limit 20000", c.Command.NoFile)
					}
				}
			}
			if addAt < 0 || startAt < 0 || addAt > startAt {
				t.Fatalf("ALTER SYSTEM ADD at call %d, start_fe.sh at %d: the FE must be added first", addAt, startAt)
			}
			if res.Facts["master"] != "10.0.0.1" {
				t.Errorf("facts %v", res.Facts)
			}
		})
	}
}

func TestStartFollowerWithoutMasterFails(t *testing.T) {
	h := doristest.New()
	h.Install(doris.FE, "")
	h.HandleQuery("SHOW FRONTENDS", func(string, string) (sdk.Rows, error) { return sdk.Rows{}, errors.New("connection refused") })
	_, err := newRole().Start(context.Background(), h, feReq("10.0.0.2", false))
	f := failure(t, err)
	if !strings.Contains(f.Summary, "start the master FE first") || !f.Retryable {
		t.Errorf("failure %+v", f)
	}
	if h.Running(doris.FE) {
		t.Error("follower started without a master")
	}
}

func TestStartIsIdempotent(t *testing.T) {
	h := doristest.New()
	h.Install(doris.FE, "")
	h.SetRunning(doris.FE, 1234)
	h.HTTPGetResponse("http://10.0.0.2:8030/api/bootstrap", 200, bootOK)
	res, err := newRole().Start(context.Background(), h, feReq("10.0.0.2", false))
	if err != nil || !strings.Contains(res.Summary, "already running") || res.Facts["pid"] != "1234" {
		t.Fatalf("start: %+v %v", res, err)
	}
	for _, c := range h.Calls() {
		if c.Method == "Query" || (c.Method == "Exec" && strings.HasSuffix(c.Command.Argv[1], "start_fe.sh")) {
			t.Errorf("unexpected call on a running FE: %+v", c)
		}
	}
	// The probe is not needed for a running FE: its failure does not fail
	// the start.
	h.ExecExit(1, "[proc]\npid=1234\nstate=S\ncmdline=java org.apache.doris.DorisFE\n[probe]\n", "bash", "-c", doris.StartProbeScript)
	res, err = newRole().Start(context.Background(), h, feReq("10.0.0.2", false))
	if err != nil || !strings.Contains(res.Summary, "already running") {
		t.Fatalf("start with a failing probe: %+v %v", res, err)
	}
	// For an FE to start it is: the start is refused, naming the probe.
	h.SetRunning(doris.FE, 0)
	h.ExecExit(1, "[proc]\n[probe]\n", "bash", "-c", doris.StartProbeScript)
	if _, err := newRole().Start(context.Background(), h, feReq("10.0.0.2", false)); err == nil || !strings.Contains(err.Error(), "probe host") {
		t.Fatalf("start of a stopped FE with a failing probe: %v", err)
	}
}

func TestStartFailuresCarryTheLog(t *testing.T) {
	ctx := context.Background()
	t.Run("script refuses", func(t *testing.T) {
		h := doristest.New()
		h.Install(doris.FE, "")
		h.StartExit, h.StartOutput = 1, "The JAVA_HOME environment variable is not set correctly"
		h.SetFile("/opt/doris/fe/log/fe.out", []byte("StdoutLogger start time\n"), 0o644)
		_, err := newRole().Start(ctx, h, feReq("10.0.0.1", true))
		f := failure(t, err)
		if !strings.Contains(f.Summary, "start_fe.sh refused to start") || !strings.Contains(f.Summary, "JAVA_HOME") || !strings.Contains(f.Detail, "==> /opt/doris/fe/log/fe.out <==") {
			t.Errorf("failure %+v", f)
		}
	})
	t.Run("exits while starting", func(t *testing.T) {
		h := doristest.New()
		h.Install(doris.FE, "LOG_DIR = /var/log/fe\n")
		h.OnStart = func([]string) { h.SetExited(doris.FE, 4242) }
		h.SetFile("/var/log/fe/fe.log", []byte("line1\nERROR current node is not added to the group\n"), 0o644)
		_, err := newRole().Start(ctx, h, feReq("10.0.0.1", true))
		f := failure(t, err)
		if !strings.Contains(f.Summary, "exited while starting") || !strings.Contains(f.Detail, "not added to the group") {
			t.Errorf("failure %+v", f)
		}
	})
	t.Run("never healthy", func(t *testing.T) {
		h := doristest.New()
		h.Install(doris.FE, "")
		h.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, `{"code":1,"msg":"not ready"}`)
		req := feReq("10.0.0.1", true)
		// Long enough for a probe to finish on a loaded machine under -race.
		req.Params["startTimeout"] = "1s"
		_, err := newRole().Start(ctx, h, req)
		f := failure(t, err)
		if !strings.Contains(f.Summary, "not healthy") || !strings.Contains(f.Summary, "not ready") || !f.Retryable {
			t.Errorf("failure %+v", f)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		h := doristest.New()
		h.Install(doris.FE, "")
		h.Busy[9010] = true
		_, err := newRole().Start(ctx, h, feReq("10.0.0.1", true))
		if f := failure(t, err); !strings.Contains(f.Summary, "port in use (edit_log_port 9010)") {
			t.Errorf("failure %+v", f)
		}
	})
}

func TestStopAndStatus(t *testing.T) {
	ctx := context.Background()
	h := doristest.New()
	h.Install(doris.FE, "")
	h.SetRunning(doris.FE, 77)
	h.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, bootOK)
	st, err := newRole().Status(ctx, h, feReq("10.0.0.1", true))
	if err != nil || st.Facts["running"] != "true" || st.Facts["healthy"] != "true" {
		t.Fatalf("status %+v %v", st, err)
	}
	res, err := newRole().Stop(ctx, h, feReq("10.0.0.1", true))
	if err != nil || !strings.Contains(res.Summary, "stopped") || h.Running(doris.FE) {
		t.Fatalf("stop %+v %v", res, err)
	}
	res, err = newRole().Stop(ctx, h, feReq("10.0.0.1", true))
	if err != nil || !strings.Contains(res.Summary, "not running") {
		t.Fatalf("second stop %+v %v", res, err)
	}
	st, _ = newRole().Status(ctx, h, feReq("10.0.0.1", true))
	if st.Facts["running"] != "false" || st.Facts["healthy"] != "false" {
		t.Errorf("status after stop %v", st.Facts)
	}
}

func registerHost(t *testing.T, members *[]string, mu *sync.Mutex, addErr error) *doristest.Host {
	h := doristest.New()
	h.HandleQuery("SHOW FRONTENDS", func(string, string) (sdk.Rows, error) {
		mu.Lock()
		defer mu.Unlock()
		return doristest.FrontendsRows(*members...), nil
	})
	h.HandleQuery("ALTER SYSTEM ADD", func(_, sql string) (sdk.Rows, error) {
		if addErr != nil {
			return sdk.Rows{}, addErr
		}
		mu.Lock()
		defer mu.Unlock()
		host := strings.Split(strings.Trim(strings.Fields(sql)[4], `"`), ":")[0]
		*members = append(*members, host+":9010:9030:"+strings.Fields(sql)[3]+":false:true")
		return sdk.Rows{}, nil
	})
	return h
}

func TestRegister(t *testing.T) {
	var mu sync.Mutex
	members := []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true"}
	h := registerHost(t, &members, &mu, nil)
	req := feReq("10.0.0.1", true)
	req.Targets = req.Cluster.Nodes
	res, err := newRole().Register(context.Background(), h, req)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	var adds []string
	for _, c := range h.CallsOf("Query") {
		if strings.HasPrefix(c.SQL, "ALTER") {
			adds = append(adds, c.SQL)
		}
	}
	if len(adds) != 1 || adds[0] != `ALTER SYSTEM ADD OBSERVER "10.0.0.3:9010"` {
		t.Errorf("adds %v", adds)
	}
	if res.Facts[sdk.FactRegistered] != "true" || res.Facts["master"] != "10.0.0.1" {
		t.Errorf("facts %v", res.Facts)
	}
}

func TestRegisterAlreadyExistsAndDeadNodes(t *testing.T) {
	var mu sync.Mutex
	// 10.0.0.3 is missing from the list, and adding it says it exists
	// (another manager raced us); it never shows up alive.
	members := []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:false"}
	h := registerHost(t, &members, &mu, errors.New("errCode = 2, detailMessage = frontend already exists name: x"))
	req := feReq("10.0.0.1", true)
	req.Targets = req.Cluster.Nodes
	_, err := newRole().Register(context.Background(), h, req)
	f := failure(t, err)
	if !strings.Contains(f.Summary, "FE not alive") || !strings.Contains(f.Summary, "10.0.0.2:9010 (Alive=false") {
		t.Fatalf("failure %+v", f)
	}
	if strings.Contains(f.Summary, "10.0.0.1") {
		t.Errorf("alive master named as dead: %v", f.Summary)
	}
}

// dropHost answers ALTER SYSTEM DROP FOLLOWER|OBSERVER by removing the
// member, as the master does.
func dropHost(t *testing.T, members *[]string, mu *sync.Mutex) *doristest.Host {
	h := registerHost(t, members, mu, nil)
	h.HandleQuery("ALTER SYSTEM DROP", func(_, sql string) (sdk.Rows, error) {
		mu.Lock()
		defer mu.Unlock()
		host := strings.Split(strings.Trim(strings.Fields(sql)[4], `"`), ":")[0]
		kept := (*members)[:0]
		for _, m := range *members {
			if !strings.HasPrefix(m, host+":") {
				kept = append(kept, m)
			}
		}
		*members = kept
		return sdk.Rows{}, nil
	})
	return h
}

func TestUnregister(t *testing.T) {
	var mu sync.Mutex
	members := []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.3:9010:9030:OBSERVER:false:true"}
	h := dropHost(t, &members, &mu)
	req := feReq("10.0.0.3", false)
	res, err := newRole().Unregister(context.Background(), h, req)
	if err != nil || res.Facts[sdk.FactRegistered] != "false" || len(members) != 1 {
		t.Fatalf("unregister %+v %v %v", res, err, members)
	}
	if q := h.CallsOf("Query"); q[len(q)-2].SQL != `ALTER SYSTEM DROP OBSERVER "10.0.0.3:9010"` {
		t.Errorf("drop query %q", q[len(q)-2].SQL)
	}
	_, err = newRole().Unregister(context.Background(), h, feReq("10.0.0.1", true))
	if f := failure(t, err); !strings.Contains(f.Summary, "is the master FE") {
		t.Errorf("failure %v", f)
	}
}

// Dropping followers must leave an alive majority of the followers left,
// force or not; the master is never dropped.
func TestUnregisterKeepsFollowerQuorum(t *testing.T) {
	cases := []struct {
		name    string
		members []string
		drop    []string
		force   bool
		wantErr string
	}{
		{name: "one of three", drop: []string{"10.0.0.2"},
			members: []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true", "10.0.0.3:9010:9030:FOLLOWER:false:true"}},
		{name: "the alive one when another is dead", drop: []string{"10.0.0.2"}, wantErr: "1 of the 2 FOLLOWERs left would be alive",
			members: []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true", "10.0.0.3:9010:9030:FOLLOWER:false:false"}},
		{name: "the dead one", drop: []string{"10.0.0.3"},
			members: []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true", "10.0.0.3:9010:9030:FOLLOWER:false:false"}},
		{name: "forced", drop: []string{"10.0.0.2"}, force: true, wantErr: "1 of the 2 FOLLOWERs left would be alive",
			members: []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true", "10.0.0.3:9010:9030:FOLLOWER:false:false"}},
		{name: "observers do not count", drop: []string{"10.0.0.4"},
			members: []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:false", "10.0.0.3:9010:9030:FOLLOWER:false:true", "10.0.0.4:9010:9030:OBSERVER:false:true"}},
		{name: "master with force", drop: []string{"10.0.0.1"}, force: true, wantErr: "is the master FE",
			members: []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			members := append([]string(nil), c.members...)
			h := dropHost(t, &members, &mu)
			req := feReq(c.drop[0], false)
			req.Force = c.force
			_, err := newRole().Unregister(context.Background(), h, req)
			if c.wantErr == "" {
				if err != nil || len(members) != len(c.members)-1 {
					t.Fatalf("unregister: %v, members %v", err, members)
				}
				return
			}
			if f := failure(t, err); !strings.Contains(f.Summary, c.wantErr) || len(members) != len(c.members) {
				t.Fatalf("failure %q (want %q), members %v", f.Summary, c.wantErr, members)
			}
		})
	}
}

var _ sdk.Host = (*sdktest.FakeHost)(nil)

// Status takes "registered" from the cluster's own SHOW FRONTENDS, and
// leaves it out when no FE answers (unknown is not "false").
func TestStatusRegisteredFromCluster(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		members []string
		err     error
		want    string
		present bool
	}{
		{"member", []string{"10.0.0.1:9010:9030:FOLLOWER:true:true", "10.0.0.2:9010:9030:FOLLOWER:false:true"}, nil, "true", true},
		{"not a member", []string{"10.0.0.1:9010:9030:FOLLOWER:true:true"}, nil, "false", true},
		{"no FE answers", nil, errors.New("connection refused"), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := doristest.New()
			h.Install(doris.FE, "")
			h.HandleQuery("SHOW FRONTENDS", func(string, string) (sdk.Rows, error) {
				return doristest.FrontendsRows(c.members...), c.err
			})
			st, err := newRole().Status(ctx, h, feReq("10.0.0.2", false))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := st.Facts[sdk.FactRegistered]
			if ok != c.present || got != c.want {
				t.Fatalf("registered=%q (present %v), want %q (present %v)", got, ok, c.want, c.present)
			}
		})
	}
}

// feConfigHost is an FE host whose running FE answers SHOW FRONTEND CONFIG
// (or only the pre-2.1 ADMIN SHOW form) and ADMIN SET FRONTEND CONFIG.
func feConfigHost(t *testing.T, conf string, adminOnly bool, refuse string) (*doristest.Host, *[]string) {
	h := doristest.New()
	h.Install(doris.FE, conf)
	h.SetRunning(doris.FE, 4000)
	rows := sdk.Rows{Columns: []string{"Key", "Value", "Type", "IsMutable", "MasterOnly", "Comment"}, Values: [][]string{
		{"qe_slow_log_ms", "5000", "long", "true", "false", ""},
		{"max_bytes_per_broker_scanner", "1", "long", "true", "true", ""},
		{"http_port", "8030", "int", "false", "false", ""},
	}}
	h.HandleQuery("SHOW FRONTEND CONFIG", func(string, string) (sdk.Rows, error) {
		if adminOnly {
			return sdk.Rows{}, errors.New("errCode = 2, detailMessage = Syntax error")
		}
		return rows, nil
	})
	h.QueryRows("ADMIN SHOW FRONTEND CONFIG", rows)
	var sets []string
	h.HandleQuery("ADMIN SET FRONTEND CONFIG", func(fe, sql string) (sdk.Rows, error) {
		if fe != "10.0.0.2:9030" {
			t.Errorf("config set on %s, want the FE itself", fe)
		}
		sets = append(sets, sql)
		if refuse != "" && strings.Contains(sql, refuse) {
			return sdk.Rows{}, errors.New("errCode = 2, detailMessage = Config '" + refuse + "' is not mutable")
		}
		return sdk.Rows{}, nil
	})
	return h, &sets
}

func TestReconfigure(t *testing.T) {
	const old = "http_port = 8030\nqe_slow_log_ms = 5000\n"
	const new = "http_port = 8031\nqe_slow_log_ms = 100\nmax_bytes_per_broker_scanner = a\"b\"c\\d\n"
	ctx := context.Background()
	for _, adminOnly := range []bool{false, true} {
		h, sets := feConfigHost(t, old, adminOnly, "")
		req := feReq("10.0.0.2", false)
		req.Conf, req.DryRun = new, true
		res, err := newRole().Reconfigure(ctx, h, req)
		if err != nil {
			t.Fatal(err)
		}
		want := []sdk.Change{
			{Key: "http_port", Old: "8030", New: "8031", Impact: sdk.ImpactRestart},
			{Key: "max_bytes_per_broker_scanner", New: `a"b"c\d`, Impact: sdk.ImpactLive},
			{Key: "qe_slow_log_ms", Old: "5000", New: "100", Impact: sdk.ImpactLive},
		}
		if !reflect.DeepEqual(res.Changes, want) {
			t.Fatalf("changes %+v", res.Changes)
		}
		if len(*sets) != 0 || len(h.CallsOf("WriteFile")) != 0 || len(res.Facts) != 0 {
			t.Fatalf("dry run changed something: sets %v, writes %d, facts %v", *sets, len(h.CallsOf("WriteFile")), res.Facts)
		}

		req.DryRun = false
		res, err = newRole().Reconfigure(ctx, h, req)
		if err != nil {
			t.Fatal(err)
		}
		wantSets := []string{`ADMIN SET FRONTEND CONFIG ("max_bytes_per_broker_scanner" = "a\"b\"c\\d")`, `ADMIN SET FRONTEND CONFIG ("qe_slow_log_ms" = "100")`}
		if strings.Join(*sets, "|") != strings.Join(wantSets, "|") {
			t.Fatalf("sets %q", *sets)
		}
		if f, _ := h.File("/opt/doris/fe/conf/fe.conf"); string(f.Data) != new {
			t.Fatalf("conf %q", f.Data)
		}
		if res.Facts[sdk.FactRestartNeeded] != "true" || res.Facts["port.http_port"] != "8031" {
			t.Fatalf("facts %v", res.Facts)
		}
	}
}

// A key the FE refuses live: the keys set before it are put back and
// nothing is written, so a retry starts over.
func TestReconfigureRefusedLive(t *testing.T) {
	h, sets := feConfigHost(t, "qe_slow_log_ms = 5000\n", false, "qe_slow_log_ms")
	req := feReq("10.0.0.2", false)
	req.Conf = "qe_slow_log_ms = 100\nmax_bytes_per_broker_scanner = 7\n"
	_, err := newRole().Reconfigure(context.Background(), h, req)
	f := failure(t, err)
	if !f.Retryable || !strings.Contains(f.Summary, "refused qe_slow_log_ms") || !strings.Contains(f.Detail, "max_bytes_per_broker_scanner put back") {
		t.Fatalf("failure %+v", f)
	}
	if len(*sets) != 3 || (*sets)[2] != `ADMIN SET FRONTEND CONFIG ("max_bytes_per_broker_scanner" = "1")` {
		t.Errorf("sets %q", *sets)
	}
	if len(h.CallsOf("WriteFile")) != 0 {
		t.Error("conf written after a refused live change")
	}
}

// A stopped FE takes every change at its next start: nothing to restart.
func TestReconfigureStopped(t *testing.T) {
	h, sets := feConfigHost(t, "qe_slow_log_ms = 5000\n", false, "")
	h.SetRunning(doris.FE, 0)
	req := feReq("10.0.0.2", false)
	req.Conf = "qe_slow_log_ms = 100\n"
	res, err := newRole().Reconfigure(context.Background(), h, req)
	if err != nil || len(*sets) != 0 || res.Facts[sdk.FactRestartNeeded] != "false" || res.Changes[0].Impact != sdk.ImpactRestart {
		t.Fatalf("%+v %v %q", res, err, *sets)
	}
	if _, err := newRole().Reconfigure(context.Background(), h, sdk.Request{Node: req.Node}); err == nil || !strings.Contains(err.Error(), "no conf given") {
		t.Errorf("empty conf: %v", err)
	}
	req.Conf = "edit_log_port = 9011\n"
	if _, err := newRole().Reconfigure(context.Background(), h, req); err == nil || !strings.Contains(err.Error(), "edit_log_port") {
		t.Errorf("edit_log_port: %v", err)
	}
}

// A package verified with a published SHA-512 is downloaded with it, and
// the install marker records it; a password in the URL is in neither the
// marker, the facts nor the log.
func TestInstallSHA512AndPassword(t *testing.T) {
	ctx := context.Background()
	req := feReq("10.0.0.1", true)
	sum := strings.Repeat("CD", 64)
	req.PackageURL, req.PackageSHA512 = "http://u:pw-secret@repo/apache-doris-2.0.3-bin-x64.tar.xz", sum
	cache := doris.PackageCacheDir("/opt/doris", req.PackageURL)
	h := installHost(cache + "/apache-doris-2.0.3-bin-x64/fe/bin/start_fe.sh\n")
	res, err := newRole().Install(ctx, h, req)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	dl := h.CallsOf("Download")
	if len(dl) != 1 || dl[0].Download.SHA512 != sum || dl[0].Download.URL != req.PackageURL {
		t.Fatalf("download %+v", dl)
	}
	var marker string
	for _, argv := range h.Execs() {
		if len(argv) > 3 && argv[3] == "doris-install" {
			marker = argv[6]
		}
	}
	if want := "http://u:***@repo/apache-doris-2.0.3-bin-x64.tar.xz sha512:" + strings.ToLower(sum); marker != want {
		t.Errorf("marker %q, want %q", marker, want)
	}
	for _, c := range h.CallsOf("Logf") {
		if strings.Contains(c.Message, "pw-secret") {
			t.Errorf("log line %q shows the password", c.Message)
		}
	}
	if strings.Contains(res.Facts["packageUrl"], "pw-secret") || res.Facts["packageSha512"] == "" {
		t.Errorf("facts %v: want the URL without its password and the SHA-512", res.Facts)
	}
}
