package dorissim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

func TestBEStartChecks(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	swaps := filepath.Join(t.TempDir(), "swaps")
	if err := os.WriteFile(swaps, []byte("Filename Type Size Used Priority\n/swapfile file 1024 0 -2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	without := func(env []string, key string) []string {
		var out []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, key+"=") {
				out = append(out, kv)
			}
		}
		return out
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{name: "open files", env: append(slices.Clone(r.env), "DORIS_SIM_MIN_NOFILE=100000000"),
			want: "Set max number of open file descriptors to a value greater than 60000."},
		{name: "max_map_count", env: append(slices.Clone(r.env), "DORIS_SIM_MIN_MAP_COUNT=2000000000"),
			want: "Please set vm.max_map_count to be 2000000 under root using 'sysctl -w vm.max_map_count=2000000'."},
		{name: "swap on", env: append(slices.Clone(r.env), "DORIS_SIM_PROC_SWAPS="+swaps), want: "Please disable swap memory before installation."},
		{name: "no JAVA_HOME", env: without(r.env, "JAVA_HOME"), want: "The JAVA_HOME environment variable is not defined correctly"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := r.clone(dorissim.RoleBE)
			setupBE(t, home)
			out, err := script(t, tc.env, home, "start_be.sh", "--daemon")
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("got %v %q, want %q", err, out, tc.want)
			}
			if _, err := os.Stat(filepath.Join(home, "bin", "be.pid")); err == nil {
				t.Fatal("be.pid written by a refused start")
			}
		})
	}
	t.Run("skip checks", func(t *testing.T) {
		home := r.clone(dorissim.RoleBE)
		p := setupBE(t, home)
		env := append(slices.Clone(r.env), "DORIS_SIM_MIN_NOFILE=100000000", "SKIP_CHECK_ULIMIT=true")
		start(t, env, home, "start_be.sh", "stop_be.sh")
		waitBEHealthy(t, home, p)
	})
}

func waitBEHealthy(t *testing.T, home string, p bePorts) {
	t.Helper()
	waitFor(t, "BE health", func() (bool, string) {
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/api/health", p.web))
		out, _ := os.ReadFile(filepath.Join(home, "log", "be.out"))
		return err == nil && strings.Contains(body, `"status":"OK"`) && strings.Contains(body, `"msg":"To Be Added"`),
			fmt.Sprint(body, err, "; be.out: ", string(out))
	})
}

func TestBEStorageAndStop(t *testing.T) {
	r := newRelease(t, dorissim.Layout12)

	t.Run("missing storage root", func(t *testing.T) {
		home := r.clone(dorissim.RoleBE)
		data1 := t.TempDir()
		missing := filepath.Join(t.TempDir(), "data2")
		setupBE(t, home, fmt.Sprintf("storage_root_path = %s,SSD;%s,medium:HDD", data1, missing))
		start(t, r.env, home, "start_be.sh", "stop_be.sh")
		waitFor(t, "BE to fail", func() (bool, string) {
			return fileContains(filepath.Join(home, "log", "be.INFO"), "storage_root_path "+missing+" does not exist")
		})
		if ok, out := fileContains(filepath.Join(home, "log", "be.out"), "does not exist"); !ok {
			t.Fatalf("be.out: %s", out)
		}
	})

	t.Run("start then refuse second then stop", func(t *testing.T) {
		home := r.clone(dorissim.RoleBE)
		data1, data2 := t.TempDir(), t.TempDir()
		p := setupBE(t, home, fmt.Sprintf("storage_root_path = %s;%s,SSD", data1, data2))
		start(t, r.env, home, "start_be.sh", "stop_be.sh")
		waitBEHealthy(t, home, p)
		for _, d := range []string{data1, data2} {
			if _, err := os.Stat(filepath.Join(d, "data")); err != nil {
				t.Fatalf("storage root not initialised: %v", err)
			}
		}
		pid := readPid(t, filepath.Join(home, "bin", "be.pid"))
		out, err := script(t, r.env, home, "start_be.sh", "--daemon")
		if err == nil || !strings.Contains(out, "Backend running as process "+strconv.Itoa(pid)+". Stop it first.") {
			t.Fatalf("second start: %v %s", err, out)
		}
		if out, err := script(t, r.env, home, "stop_be.sh"); err != nil || !strings.Contains(out, "stop doris_be and remove pid file") {
			t.Fatalf("stop: %v %s", err, out)
		}
		if !processGone(pid) {
			t.Fatal("BE still running after stop")
		}
		if _, err := os.Stat(filepath.Join(home, "bin", "be.pid")); !os.IsNotExist(err) {
			t.Fatalf("pid file left: %v", err)
		}
	})
}

func TestHeartbeatAlive(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	feHome, beHome, brHome := r.dirs[dorissim.RoleFE], r.dirs[dorissim.RoleBE], r.dirs[dorissim.RoleBroker]
	fp := setupFE(t, feHome)
	bp := setupBE(t, beHome, "storage_root_path = "+t.TempDir())
	brPort := freePorts(t, 1)[0]
	appendConf(t, brHome, "apache_hdfs_broker.conf", fmt.Sprintf("broker_ipc_port = %d", brPort))

	startFE(t, r.env, feHome)
	start(t, r.env, beHome, "start_be.sh", "stop_be.sh")
	start(t, r.env, brHome, "start_broker.sh", "stop_broker.sh")
	waitFEReady(t, fp)
	db := openDB(t, fp.query)
	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD BACKEND "127.0.0.1:%d"`, bp.heartbeat)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD BROKER hdfs_broker "127.0.0.1:%d"`, brPort)); err != nil {
		t.Fatal(err)
	}
	aliveBE := func(want string) func() (bool, string) {
		return func() (bool, string) {
			_, rs, err := rows(db, "SHOW BACKENDS")
			return err == nil && len(rs) == 1 && rs[0]["Alive"] == want, fmt.Sprint(rs, err)
		}
	}
	aliveBroker := func(want string) func() (bool, string) {
		return func() (bool, string) {
			_, rs, err := rows(db, "SHOW BROKER")
			return err == nil && len(rs) == 1 && rs[0]["Alive"] == want, fmt.Sprint(rs, err)
		}
	}
	waitFor(t, "BE alive", aliveBE("true"))
	waitFor(t, "broker alive", aliveBroker("true"))
	_, rs, _ := rows(db, "SHOW BACKENDS")
	if rs[0]["BePort"] != strconv.Itoa(bp.be) || rs[0]["HttpPort"] != strconv.Itoa(bp.web) ||
		rs[0]["BrpcPort"] != strconv.Itoa(bp.brpc) || rs[0]["Version"] != "doris-2.0.3" {
		t.Fatalf("backend row %v", rs[0])
	}

	if out, err := script(t, r.env, beHome, "stop_be.sh"); err != nil {
		t.Fatalf("stop be: %v %s", err, out)
	}
	if out, err := script(t, r.env, brHome, "stop_broker.sh"); err != nil {
		t.Fatalf("stop broker: %v %s", err, out)
	}
	waitFor(t, "BE dead", aliveBE("false"))
	waitFor(t, "broker dead", aliveBroker("false"))

	// Decommissioning an (empty) BE removes it.
	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM DECOMMISSION BACKEND "127.0.0.1:%d"`, bp.heartbeat)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "decommissioned BE dropped", func() (bool, string) {
		_, rs, err := rows(db, "SHOW BACKENDS")
		return err == nil && len(rs) == 0, fmt.Sprint(rs, err)
	})
}

func TestBEWrongAddressRefusesHeartbeat(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	feHome, beHome := r.dirs[dorissim.RoleFE], r.dirs[dorissim.RoleBE]
	fp := setupFE(t, feHome)
	bp := setupBE(t, beHome, "storage_root_path = "+t.TempDir())
	startFE(t, r.env, feHome)
	start(t, r.env, beHome, "start_be.sh", "stop_be.sh")
	waitFEReady(t, fp)
	db := openDB(t, fp.query)
	// The BE announces 127.0.0.1; the master knows it as 127.0.0.2.
	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD BACKEND "127.0.0.2:%d"`, bp.heartbeat)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "heartbeat error", func() (bool, string) {
		_, rs, err := rows(db, "SHOW BACKENDS")
		return err == nil && len(rs) == 1 && rs[0]["Alive"] == "false" &&
			strings.Contains(rs[0]["ErrMsg"], "backend ip saved in master does not equal to backend local ip"), fmt.Sprint(rs, err)
	})
}

func TestPackagedKnobs(t *testing.T) {
	r := newReleaseEnv(t, dorissim.Layout2x, map[string]string{"DORIS_SIM_MIN_NOFILE": "1024", "DORIS_SIM_MIN_MAP_COUNT": "0"})
	var env []string
	for _, kv := range r.env {
		if !strings.HasPrefix(kv, "DORIS_SIM_MIN_") {
			env = append(env, kv)
		}
	}
	// The environment still wins over the packaged defaults.
	home := r.clone(dorissim.RoleBE)
	setupBE(t, home)
	out, err := script(t, append(slices.Clone(env), "DORIS_SIM_MIN_NOFILE=100000000"), home, "start_be.sh", "--daemon")
	if err == nil || !strings.Contains(out, "open file descriptors") {
		t.Fatalf("env override: %v %s", err, out)
	}
	p := setupBE(t, home)
	start(t, env, home, "start_be.sh", "stop_be.sh")
	waitBEHealthy(t, home, p)
}

// sys_log_level leaves the lower levels out of be.INFO: at WARNING the BE
// does not log the address it chose.
func TestBELogLevel(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	for _, level := range []string{"INFO", "WARNING"} {
		home := r.clone(dorissim.RoleBE)
		p := setupBE(t, home, "sys_log_level = "+level)
		start(t, r.env, home, "start_be.sh", "stop_be.sh")
		waitBEHealthy(t, home, p)
		b, err := os.ReadFile(filepath.Join(home, "log", "be.INFO"))
		if err != nil {
			t.Fatal(err)
		}
		if said := strings.Contains(string(b), "local host ip="); said != (level == "INFO") {
			t.Errorf("sys_log_level %s: be.INFO says the address: %v\n%s", level, said, b)
		}
	}
}
