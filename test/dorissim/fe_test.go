package dorissim_test

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

func startFE(t *testing.T, env []string, home string, args ...string) {
	t.Helper()
	start(t, env, home, "start_fe.sh", "stop_fe.sh", args...)
}

func waitFEReady(t *testing.T, p fePorts) {
	t.Helper()
	waitFor(t, "FE bootstrap", func() (bool, string) {
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/api/bootstrap", p.http))
		return err == nil && strings.Contains(body, `"code":0`), fmt.Sprint(body, err)
	})
}

// frontend returns the SHOW FRONTENDS row of the FE at edit log address addr.
func frontend(db *sql.DB, port int) (map[string]string, error) {
	_, rs, err := rows(db, "SHOW FRONTENDS")
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r["EditLogPort"] == fmt.Sprint(port) {
			return r, nil
		}
	}
	return nil, nil
}

func TestFEMasterFollowerJoinAndForwarding(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	masterHome := r.dirs[dorissim.RoleFE]
	mp := setupFE(t, masterHome)
	followerHome := r.clone(dorissim.RoleFE)
	fp := setupFE(t, followerHome)

	startFE(t, r.env, masterHome)
	waitFEReady(t, mp)
	db := openDB(t, mp.query)

	var comment string
	if err := db.QueryRow("SELECT @@version_comment LIMIT 1").Scan(&comment); err != nil || comment != "Doris version doris-2.0.3" {
		t.Fatalf("version_comment %q %v", comment, err)
	}
	cols, rs, err := rows(db, "SHOW FRONTENDS")
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []string{"Name", "Host", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "ArrowFlightSqlPort", "Role",
		"IsMaster", "ClusterId", "Join", "Alive", "ReplayedJournalId", "LastStartTime", "LastHeartbeat", "IsHelper",
		"ErrMsg", "Version", "CurrentConnected"}
	if !reflect.DeepEqual(cols, wantCols) {
		t.Fatalf("SHOW FRONTENDS columns %v", cols)
	}
	if len(rs) != 1 || rs[0]["IsMaster"] != "true" || rs[0]["Host"] != "127.0.0.1" || rs[0]["Role"] != "FOLLOWER" {
		t.Fatalf("master row %v", rs)
	}

	// Started before it was added: the follower waits and says why.
	startFE(t, r.env, followerHome, "--helper", mp.editAddr())
	waitFor(t, "not-added message", func() (bool, string) {
		return fileContains(filepath.Join(followerHome, "log", "fe.log"),
			"current node is not added to the group. please add it first. sleep 5 seconds and retry")
	})
	if row, err := frontend(db, fp.editLog); err != nil || row != nil {
		t.Fatalf("follower listed before ADD: %v %v", row, err)
	}

	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD FOLLOWER "%s"`, fp.editAddr())); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD FOLLOWER "%s"`, fp.editAddr()))
	if err == nil || !strings.Contains(err.Error(), "errCode = 2, detailMessage = frontend already exists name: fe_") {
		t.Fatalf("duplicate follower: %v", err)
	}
	waitFor(t, "follower joined and alive", func() (bool, string) {
		row, err := frontend(db, fp.editLog)
		return err == nil && row != nil && row["Join"] == "true" && row["Alive"] == "true", fmt.Sprint(row, err)
	})
	waitFEReady(t, fp)

	// DDL through the follower lands on the master.
	fdb := openDB(t, fp.query)
	hb := freePorts(t, 1)[0]
	if _, err := fdb.Exec(fmt.Sprintf(`ALTER SYSTEM ADD BACKEND "127.0.0.1:%d"`, hb)); err != nil {
		t.Fatal(err)
	}
	_, brs, err := rows(db, "SHOW BACKENDS")
	if err != nil || len(brs) != 1 || brs[0]["HeartbeatPort"] != fmt.Sprint(hb) || brs[0]["Alive"] != "false" {
		t.Fatalf("backends on master after forwarded add: %v %v", brs, err)
	}
	_, err = fdb.Exec(fmt.Sprintf(`ALTER SYSTEM ADD BACKEND "127.0.0.1:%d"`, hb))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("Same backend already exists[127.0.0.1:%d]", hb)) {
		t.Fatalf("duplicate backend through follower: %v", err)
	}
	// The follower answers SHOW FRONTENDS as connected to itself.
	row, err := frontend(fdb, fp.editLog)
	if err != nil || row == nil || row["CurrentConnected"] != "Yes" || row["IsMaster"] != "false" {
		t.Fatalf("follower row seen from follower: %v %v", row, err)
	}

	if row["HttpPort"] != fmt.Sprint(fp.http) || row["QueryPort"] != fmt.Sprint(fp.query) {
		t.Fatalf("follower ports in SHOW FRONTENDS: %v", row)
	}

	// Config: a MasterOnly item set through the follower lands on the
	// master; others stay on the FE they were set on, unless ALL FRONTENDS.
	feConfig := func(db *sql.DB, key string) string {
		var k, v, typ, mut, mo, c string
		if err := db.QueryRow("SHOW FRONTEND CONFIG LIKE '"+key+"'").Scan(&k, &v, &typ, &mut, &mo, &c); err != nil {
			t.Fatalf("show config %s: %v", key, err)
		}
		return v
	}
	for _, s := range []string{`ADMIN SET FRONTEND CONFIG ("max_bytes_per_broker_scanner" = "77")`,
		`ADMIN SET FRONTEND CONFIG ("qe_slow_log_ms" = "78")`} {
		if _, err := fdb.Exec(s); err != nil {
			t.Fatalf("%s through follower: %v", s, err)
		}
	}
	if m, f := feConfig(db, "max_bytes_per_broker_scanner"), feConfig(fdb, "qe_slow_log_ms"); m != "77" || f != "78" || feConfig(db, "qe_slow_log_ms") != "5000" {
		t.Fatalf("master max_bytes_per_broker_scanner %s, follower qe_slow_log_ms %s, master qe_slow_log_ms %s", m, f, feConfig(db, "qe_slow_log_ms"))
	}
	if _, err := db.Exec(`ADMIN SET ALL FRONTENDS CONFIG ("qe_slow_log_ms" = "79")`); err != nil {
		t.Fatal(err)
	}
	if m, f := feConfig(db, "qe_slow_log_ms"), feConfig(fdb, "qe_slow_log_ms"); m != "79" || f != "79" {
		t.Fatalf("ALL FRONTENDS: master %s follower %s", m, f)
	}

	// A restarted follower rejoins from its meta, without --helper.
	if out, err := script(t, r.env, followerHome, "stop_fe.sh"); err != nil {
		t.Fatalf("stop follower: %v %s", err, out)
	}
	waitFor(t, "follower seen dead", func() (bool, string) {
		row, err := frontend(db, fp.editLog)
		return err == nil && row != nil && row["Alive"] == "false", fmt.Sprint(row, err)
	})
	startFE(t, r.env, followerHome)
	waitFor(t, "follower alive again", func() (bool, string) {
		row, err := frontend(db, fp.editLog)
		return err == nil && row != nil && row["Alive"] == "true" && row["Join"] == "true", fmt.Sprint(row, err)
	})

	// A second start is refused by the script.
	out, err := script(t, r.env, masterHome, "start_fe.sh", "--daemon")
	if err == nil || !strings.Contains(out, "Frontend running as process") || !strings.Contains(out, "Stop it first.") {
		t.Fatalf("second start: %v %s", err, out)
	}
}

func TestFE015FollowerNotAddedExits(t *testing.T) {
	r := newRelease(t, dorissim.Layout015)
	masterHome := r.dirs[dorissim.RoleFE]
	mp := setupFE(t, masterHome)
	followerHome := r.clone(dorissim.RoleFE)
	setupFE(t, followerHome)
	startFE(t, r.env, masterHome)
	waitFEReady(t, mp)

	startFE(t, r.env, followerHome, "--helper", mp.editAddr())
	pid := readPid(t, filepath.Join(followerHome, "bin", "fe.pid"))
	waitFor(t, "0.15 follower to exit", func() (bool, string) { return processGone(pid), "" })
	if ok, log := fileContains(filepath.Join(followerHome, "log", "fe.log"), "current node is not added to the group. please add it first."); !ok {
		t.Fatalf("fe.log: %s", log)
	}
	// 0.x/1.x column names.
	cols, _, err := rows(openDB(t, mp.query), "SHOW PROC '/frontends'")
	if err != nil || cols[1] != "IP" || cols[2] != "HostName" {
		t.Fatalf("0.15 columns %v %v", cols, err)
	}
}

func TestFEStartFailures(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)

	t.Run("port in use", func(t *testing.T) {
		home := r.clone(dorissim.RoleFE)
		p := setupFE(t, home)
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p.query))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		startFE(t, r.env, home)
		pid := readPid(t, filepath.Join(home, "bin", "fe.pid"))
		waitFor(t, "FE to exit", func() (bool, string) { return processGone(pid), "" })
		for _, f := range []string{"fe.log", "fe.out"} {
			if ok, log := fileContains(filepath.Join(home, "log", f), fmt.Sprintf("Failed to bind query_port %d: Address already in use", p.query)); !ok {
				t.Fatalf("%s: %s", f, log)
			}
		}
	})
	t.Run("meta dir missing", func(t *testing.T) {
		home := r.clone(dorissim.RoleFE)
		setupFE(t, home)
		appendConf(t, home, "fe.conf", "meta_dir = ${DORIS_HOME}/no-such-meta")
		startFE(t, r.env, home)
		pid := readPid(t, filepath.Join(home, "bin", "fe.pid"))
		waitFor(t, "FE to exit", func() (bool, string) { return processGone(pid), "" })
		if ok, log := fileContains(filepath.Join(home, "log", "fe.log"), filepath.Join(home, "no-such-meta")+" does not exist"); !ok {
			t.Fatalf("fe.log: %s", log)
		}
	})
	t.Run("priority_networks matches nothing", func(t *testing.T) {
		home := r.clone(dorissim.RoleFE)
		setupFE(t, home)
		appendConf(t, home, "fe.conf", "priority_networks = "+unusedNetwork(t))
		startFE(t, r.env, home)
		pid := readPid(t, filepath.Join(home, "bin", "fe.pid"))
		waitFor(t, "FE to exit", func() (bool, string) { return processGone(pid), "" })
		if ok, log := fileContains(filepath.Join(home, "log", "fe.log"), "ip address range configured for priority_networks does not include the current IP address"); !ok {
			t.Fatalf("fe.log: %s", log)
		}
	})
	t.Run("no java", func(t *testing.T) {
		home := r.clone(dorissim.RoleFE)
		var env []string
		for _, kv := range r.env {
			if !strings.HasPrefix(kv, "JAVA_HOME=") && !strings.HasPrefix(kv, "PATH=") {
				env = append(env, kv)
			}
		}
		env = append(env, "PATH="+toolsWithoutJava(t))
		out, err := script(t, env, home, "start_fe.sh", "--daemon")
		if err == nil || !strings.Contains(out, "The JAVA_HOME environment variable is not set correctly") {
			t.Fatalf("want java refusal: %v %s", err, out)
		}
	})
}

// Releases before 2.0 start when priority_networks matches nothing, and
// announce the loopback address: what an FE installed for another host
// then tells its cluster. Every FE logs the address it took.
func TestFEAnnouncedAddress(t *testing.T) {
	for _, tc := range []struct {
		layout dorissim.Layout
		pn     string
	}{{dorissim.Layout2x, "127.0.0.1/32"}, {dorissim.Layout12, unusedNetwork(t)}} {
		t.Run(string(tc.layout), func(t *testing.T) {
			r := newRelease(t, tc.layout)
			home := r.clone(dorissim.RoleFE)
			p := setupFE(t, home)
			appendConf(t, home, "fe.conf", "priority_networks = "+tc.pn)
			startFE(t, r.env, home)
			waitFor(t, "FE to answer", func() (bool, string) {
				out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/api/bootstrap", p.http))
				return err == nil, out
			})
			if ok, log := fileContains(filepath.Join(home, "log", "fe.log"), "local address: /127.0.0.1."); !ok {
				t.Fatalf("fe.log does not name the address: %s", log)
			}
		})
	}
}

func TestFEMembershipSurvivesRestart(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	home := r.dirs[dorissim.RoleFE]
	p := setupFE(t, home)
	startFE(t, r.env, home)
	waitFEReady(t, p)
	db := openDB(t, p.query)
	stmts := []string{`ALTER SYSTEM ADD BACKEND "127.0.0.1:19050", "127.0.0.1:19051"`, `ALTER SYSTEM ADD BROKER hdfs "127.0.0.1:18000"`,
		`ALTER SYSTEM ADD OBSERVER "127.0.0.1:19010"`}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	before, _ := frontend(db, p.editLog)
	if out, err := script(t, r.env, home, "stop_fe.sh"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	startFE(t, r.env, home)
	waitFEReady(t, p)
	db2 := openDB(t, p.query)
	after, err := frontend(db2, p.editLog)
	if err != nil || after == nil || after["ClusterId"] != before["ClusterId"] || after["Name"] != before["Name"] || after["IsMaster"] != "true" {
		t.Fatalf("master row before %v after %v (%v)", before, after, err)
	}
	_, bes, _ := rows(db2, "SHOW BACKENDS")
	_, brs, _ := rows(db2, "SHOW BROKER")
	obs, _ := frontend(db2, 19010)
	if len(bes) != 2 || len(brs) != 1 || obs == nil || obs["Role"] != "OBSERVER" || obs["Join"] != "false" {
		t.Fatalf("after restart: backends %v brokers %v observer %v", bes, brs, obs)
	}
}

func TestFEStatements(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	home := r.dirs[dorissim.RoleFE]
	p := setupFE(t, home)
	startFE(t, r.env, home)
	waitFEReady(t, p)
	db := openDB(t, p.query)
	tests := []struct {
		sql, wantErr string
	}{
		{sql: `ALTER SYSTEM ADD BACKEND "127.0.0.1:29050"`},
		{sql: `alter system add backend '127.0.0.1:29050'`, wantErr: "errCode = 2, detailMessage = Same backend already exists[127.0.0.1:29050]"},
		{sql: `ALTER SYSTEM ADD BACKEND "127.0.0.1"`, wantErr: "Invalid host port format"},
		{sql: `ALTER SYSTEM DECOMMISSION BACKEND "127.0.0.1:29051"`, wantErr: "does not exist"},
		{sql: `ALTER SYSTEM DROPP BACKEND "127.0.0.1:29050"`},
		{sql: `ALTER SYSTEM DROP BACKEND "127.0.0.1:29050"`, wantErr: "backend does not exists[127.0.0.1:29050]"},
		{sql: `ALTER SYSTEM ADD BROKER b1 "127.0.0.1:28000","127.0.0.1:28001"`},
		{sql: `ALTER SYSTEM ADD BROKER b1 "127.0.0.1:28000"`, wantErr: "Broker(127.0.0.1:28000) has already in brokers."},
		{sql: `ALTER SYSTEM DROP BROKER b1 "127.0.0.1:28001"`},
		{sql: `ALTER SYSTEM DROP BROKER b1 "127.0.0.1:28001"`, wantErr: "has not in brokers"},
		{sql: `ALTER SYSTEM ADD FOLLOWER "127.0.0.1:29010"`},
		{sql: `ALTER SYSTEM DROP OBSERVER "127.0.0.1:29010"`, wantErr: "OBSERVER does not exist[127.0.0.1:29010]"},
		{sql: `ALTER SYSTEM DROP OBSERVER "127.0.0.1:29011"`, wantErr: "frontend does not exist[127.0.0.1:29011]"},
		{sql: `CANCEL DECOMMISSION BACKEND "127.0.0.1:29051"`, wantErr: "Backend does not exist[127.0.0.1:29051]"},
		{sql: `ALTER SYSTEM DROP FOLLOWER "127.0.0.1:29010"`},
		{sql: fmt.Sprintf(`ALTER SYSTEM DROP FOLLOWER "127.0.0.1:%d"`, p.editLog), wantErr: "can not drop current master node."},
		{sql: `SELECT 1`},
		{sql: `SET NAMES utf8mb4`},
		{sql: `CREATE TABLE t (a int)`, wantErr: "No database selected"},
		{sql: `CREATE DATABASE d1`},
		{sql: `CREATE DATABASE d1`, wantErr: "Can't create database 'd1'; database exists"},
		{sql: `CREATE DATABASE IF NOT EXISTS d1`},
		{sql: `CREATE TABLE d1.t (a int) DISTRIBUTED BY HASH(a) BUCKETS 2 PROPERTIES ("replication_num" = "1")`,
			wantErr: "Failed to find enough backend"},
		{sql: `DROP TABLE d1.t`, wantErr: "Unknown table 't'"},
		{sql: `DROP TABLE IF EXISTS d1.t`},
		{sql: `DROP DATABASE d1`},
		{sql: `UPDATE t SET a = 1`, wantErr: "Syntax error"},
	}
	for _, tc := range tests {
		_, err := db.Exec(tc.sql)
		if tc.wantErr == "" && err != nil {
			t.Errorf("%s: %v", tc.sql, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: got %v, want %q", tc.sql, err, tc.wantErr)
		}
	}
	for q, want := range map[string][]string{
		"SHOW BACKENDS": {"BackendId", "Host", "HeartbeatPort", "BePort", "HttpPort", "BrpcPort", "ArrowFlightSqlPort",
			"LastStartTime", "LastHeartbeat", "Alive", "SystemDecommissioned", "TabletNum", "DataUsedCapacity",
			"TrashUsedCapacity", "AvailCapacity", "TotalCapacity", "UsedPct", "MaxDiskUsedPct", "RemoteUsedCapacity",
			"Tag", "ErrMsg", "Version", "Status", "HeartbeatFailureCounter", "NodeRole"},
		"SHOW PROC '/backends'": nil,
		"SHOW BROKER":           {"Name", "Host", "Port", "Alive", "LastStartTime", "LastUpdateTime", "ErrMsg"},
		"SHOW PROC '/brokers'":  nil,
	} {
		cols, _, err := rows(db, q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if want != nil && !reflect.DeepEqual(cols, want) {
			t.Errorf("%s columns %v", q, cols)
		}
	}
	_, brs, _ := rows(db, "SHOW BROKER")
	if len(brs) != 1 || brs[0]["Port"] != "28000" || brs[0]["Name"] != "b1" {
		t.Errorf("brokers %v", brs)
	}
}

// toolsWithoutJava returns a PATH directory holding the tools the scripts use,
// but no java (this machine may have a real one).
func toolsWithoutJava(t *testing.T) string {
	dir := t.TempDir()
	for _, tool := range []string{"bash", "getopt", "dirname", "basename", "date", "awk", "grep", "tr", "cat", "mkdir",
		"nohup", "ps", "wc", "sleep", "chmod", "rm", "uname", "sed"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
