package dorissim_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

// backends returns SHOW BACKENDS rows by heartbeat port.
func backends(t *testing.T, db *sql.DB) map[int]map[string]string {
	t.Helper()
	_, rs, err := rows(db, "SHOW BACKENDS")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]map[string]string{}
	for _, r := range rs {
		p, _ := strconv.Atoi(r["HeartbeatPort"])
		out[p] = r
	}
	return out
}

func tabletSum(bes map[int]map[string]string) int {
	n := 0
	for _, r := range bes {
		v, _ := strconv.Atoi(r["TabletNum"])
		n += v
	}
	return n
}

// cluster starts one FE and n BEs of r, adds the BEs and waits until they are alive.
func startCluster(t *testing.T, r *release, n int) (fePorts, *sql.DB, []bePorts, []string) {
	t.Helper()
	feHome := r.dirs[dorissim.RoleFE]
	fp := setupFE(t, feHome)
	startFE(t, r.env, feHome)
	waitFEReady(t, fp)
	db := openDB(t, fp.query)
	var bps []bePorts
	var homes []string
	homes = append(homes, r.dirs[dorissim.RoleBE])
	for range n - 1 {
		// Cloned before any BE started, so no pid file comes along.
		homes = append(homes, r.clone(dorissim.RoleBE))
	}
	for _, home := range homes {
		bp := setupBE(t, home, "storage_root_path = "+t.TempDir())
		start(t, r.env, home, "start_be.sh", "stop_be.sh")
		if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD BACKEND "127.0.0.1:%d"`, bp.heartbeat)); err != nil {
			t.Fatal(err)
		}
		bps = append(bps, bp)
	}
	waitFor(t, "backends alive", func() (bool, string) {
		bes := backends(t, db)
		alive := 0
		for _, r := range bes {
			if r["Alive"] == "true" {
				alive++
			}
		}
		if alive == n {
			return true, ""
		}
		// What a BE that is not alive said on its way out.
		var outs []string
		for i, bp := range bps {
			if bes[bp.heartbeat]["Alive"] != "true" {
				b, _ := os.ReadFile(filepath.Join(homes[i], "log", "be.out"))
				outs = append(outs, fmt.Sprintf("be.out of BE %d: %s", i, b))
			}
		}
		return false, fmt.Sprint(bes, "\n", strings.Join(outs, "\n"))
	})
	return fp, db, bps, homes
}

func TestDecommissionMovesTablets(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	fp, db, bps, _ := startCluster(t, r, 4)
	for _, s := range []string{"CREATE DATABASE demo",
		`CREATE TABLE demo.t1 (k INT, v VARCHAR(10)) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 6 PROPERTIES ("replication_num" = "3")`,
		`CREATE TABLE demo.t2 (k INT) DISTRIBUTED BY HASH(k) BUCKETS 2 PROPERTIES ("replication_allocation" = "tag.location.default: 2")`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	const replicas = 6*3 + 2*2
	if n := tabletSum(backends(t, db)); n != replicas {
		t.Fatalf("TabletNum sum %d, want %d", n, replicas)
	}
	// The catalog as a client (and the BE plugin) reads it.
	_, dbs, err := rows(db, "SHOW PROC '/dbs'")
	if err != nil || len(dbs) != 1 || dbs[0]["DbName"] != "demo" {
		t.Fatalf("/dbs: %v %v", dbs, err)
	}
	_, tbls, err := rows(db, fmt.Sprintf("SHOW PROC '/dbs/%s'", dbs[0]["DbId"]))
	if err != nil || len(tbls) != 2 || tbls[0]["Type"] != "OLAP" {
		t.Fatalf("/dbs/id: %v %v", tbls, err)
	}
	_, parts, err := rows(db, fmt.Sprintf("SHOW PROC '/dbs/%s/%s/partitions'", dbs[0]["DbId"], tbls[0]["TableId"]))
	if err != nil || len(parts) != 1 || parts[0]["ReplicationNum"] != "3" || parts[0]["Buckets"] != "6" {
		t.Fatalf("partitions: %v %v", parts, err)
	}
	if _, err := db.Exec(`CREATE TABLE demo.t3 (k INT) DISTRIBUTED BY HASH(k) BUCKETS 1 PROPERTIES ("replication_num" = "5")`); err == nil ||
		!strings.Contains(err.Error(), "Failed to find enough backend") || !strings.Contains(err.Error(), "replication num: 5") {
		t.Fatalf("create with 5 replicas on 4 BEs: %v", err)
	}

	first := bps[0].heartbeat
	decommission := fmt.Sprintf(`ALTER SYSTEM DECOMMISSION BACKEND "127.0.0.1:%d"`, first)
	// With the tablet scheduler paused nothing moves; cancel undoes the mark.
	if _, err := db.Exec(`ADMIN SET FRONTEND CONFIG ("disable_tablet_scheduler" = "true")`); err != nil {
		t.Fatal(err)
	}
	before := backends(t, db)[first]["TabletNum"]
	if _, err := db.Exec(decommission); err != nil {
		t.Fatal(err)
	}
	row := backends(t, db)[first]
	if row["SystemDecommissioned"] != "true" || row["TabletNum"] != before {
		t.Fatalf("decommissioned row with the scheduler paused: %v (TabletNum before %s)", row, before)
	}
	if _, err := db.Exec(fmt.Sprintf(`CANCEL DECOMMISSION BACKEND "127.0.0.1:%d"`, first)); err != nil {
		t.Fatal(err)
	}
	if row := backends(t, db)[first]; row["SystemDecommissioned"] != "false" {
		t.Fatalf("after cancel: %v", row)
	}

	if _, err := db.Exec(`ADMIN SET FRONTEND CONFIG ("disable_tablet_scheduler" = "false")`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(decommission); err != nil {
		t.Fatal(err)
	}
	// Again: already decommissioning is fine.
	if _, err := db.Exec(decommission); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "decommissioned BE dropped", func() (bool, string) {
		bes := backends(t, db)
		_, listed := bes[first]
		return !listed, fmt.Sprint(bes)
	})
	// Moves go a batch at a time, and the master says how many are left.
	if ok, log := fileContains(filepath.Join(r.dirs[dorissim.RoleFE], "log", "fe.log"), "replicas to decommission"); !ok {
		t.Fatalf("fe.log has no progress line: %s", log)
	}
	bes := backends(t, db)
	if n := tabletSum(bes); n != replicas || len(bes) != 3 {
		t.Fatalf("after decommission: %d replicas on %d BEs, want %d on 3: %v", n, len(bes), replicas, bes)
	}
	for p, r := range bes {
		// Replicas of one tablet sit on distinct BEs: at most one per tablet.
		if n, _ := strconv.Atoi(r["TabletNum"]); n > 8 {
			t.Fatalf("BE %d holds %d replicas of 8 tablets", p, n)
		}
	}

	// Three BEs left and a table needs three replicas: refused.
	_, err = db.Exec(fmt.Sprintf(`ALTER SYSTEM DECOMMISSION BACKEND "127.0.0.1:%d"`, bps[1].heartbeat))
	if err == nil || !strings.Contains(err.Error(), "only 2 available backends would remain, but table demo.t1 needs 3 replicas") {
		t.Fatalf("decommission below replication_num: %v", err)
	}
	if row := backends(t, db)[bps[1].heartbeat]; row["SystemDecommissioned"] != "false" {
		t.Fatalf("refused decommission still marked the BE: %v", row)
	}
	// Dropping the table lifts the limit.
	if _, err := db.Exec("DROP TABLE demo.t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM DECOMMISSION BACKEND "127.0.0.1:%d"`, bps[1].heartbeat)); err != nil {
		t.Fatalf("decommission once only 2 replicas are needed: %v", err)
	}
	waitFor(t, "second BE dropped", func() (bool, string) {
		bes := backends(t, db)
		return len(bes) == 2 && tabletSum(bes) == 4, fmt.Sprint(bes)
	})
	_ = fp
}

func TestFEConfig(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	home := r.dirs[dorissim.RoleFE]
	p := setupFE(t, home)
	appendConf(t, home, "fe.conf", "qe_slow_log_ms = 1234")
	startFE(t, r.env, home)
	waitFEReady(t, p)
	db := openDB(t, p.query)

	cols, rs, err := rows(db, "SHOW FRONTEND CONFIG LIKE 'qe_slow%'")
	if err != nil || strings.Join(cols, ",") != "Key,Value,Type,IsMutable,MasterOnly,Comment" {
		t.Fatalf("columns %v %v", cols, err)
	}
	if len(rs) != 1 || rs[0]["Value"] != "1234" || rs[0]["IsMutable"] != "true" || rs[0]["Type"] != "long" {
		t.Fatalf("value from fe.conf: %v", rs)
	}
	tests := []struct{ sql, wantErr string }{
		{sql: `ADMIN SET FRONTEND CONFIG ("qe_slow_log_ms" = "99")`},
		{sql: `ADMIN SET FRONTEND CONFIG ("max_bytes_per_broker_scanner" = "1024")`},
		{sql: `ADMIN SET FRONTEND CONFIG ("http_port" = "8031")`, wantErr: "errCode = 2, detailMessage = Config 'http_port' is not mutable"},
		{sql: `ADMIN SET FRONTEND CONFIG ("meta_dir" = "/tmp")`, wantErr: "Config 'meta_dir' is not mutable"},
		{sql: `ADMIN SET FRONTEND CONFIG ("no_such_key" = "1")`, wantErr: "Config 'no_such_key' does not exist"},
		{sql: `ADMIN SET FRONTEND CONFIG ("qe_slow_log_ms" = "soon")`, wantErr: "Failed to set config 'qe_slow_log_ms'"},
		{sql: `ADMIN SET FRONTEND CONFIG ("disable_balance" = "maybe")`, wantErr: "Failed to set config 'disable_balance'"},
	}
	for _, tc := range tests {
		_, err := db.Exec(tc.sql)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: got %v, want %q", tc.sql, err, tc.wantErr)
		}
	}
	want := map[string]string{"qe_slow_log_ms": "99", "max_bytes_per_broker_scanner": "1024", "http_port": strconv.Itoa(p.http),
		"disable_balance": "false"}
	_, rs, err = rows(db, "ADMIN SHOW FRONTEND CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	for _, r := range rs {
		got[r["Key"]] = r
	}
	for k, v := range want {
		if got[k]["Value"] != v {
			t.Errorf("%s = %q, want %q", k, got[k]["Value"], v)
		}
	}
	if got["http_port"]["IsMutable"] != "false" || got["max_bytes_per_broker_scanner"]["MasterOnly"] != "true" {
		t.Errorf("flags: %v %v", got["http_port"], got["max_bytes_per_broker_scanner"])
	}
	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/api/fe_version_info", p.http))
	if err != nil || !strings.Contains(body, `"dorisBuildVersion":"doris-2.0.3"`) {
		t.Fatalf("fe_version_info: %s %v", body, err)
	}
}

func httpPost(url string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Post(url, "text/plain", nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestBEConfig(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	home := r.dirs[dorissim.RoleBE]
	p := setupBE(t, home, "storage_root_path = "+t.TempDir(), "disable_auto_compaction = true")
	start(t, r.env, home, "start_be.sh", "stop_be.sh")
	waitBEHealthy(t, home, p)
	base := fmt.Sprintf("http://127.0.0.1:%d/api/", p.web)
	show := func() map[string][]string {
		body, err := httpGet(base + "show_config")
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]string
		if err := json.Unmarshal([]byte(body), &rows); err != nil {
			t.Fatalf("show_config: %v %s", err, body)
		}
		out := map[string][]string{}
		for _, r := range rows {
			out[r[0]] = r
		}
		return out
	}
	if c := show(); strings.Join(c["disable_auto_compaction"], ",") != "disable_auto_compaction,bool,true,true" ||
		strings.Join(c["be_port"], ",") != fmt.Sprintf("be_port,int32_t,%d,false", p.be) {
		t.Fatalf("show_config from be.conf: %v", c)
	}

	type res struct{ ConfigName, Status, Msg string }
	update := func(query string) []res {
		code, body, err := httpPost(base + "update_config?" + query)
		if err != nil || code != 200 {
			t.Fatalf("update_config?%s: %d %v %s", query, code, err, body)
		}
		var out []struct {
			ConfigName string `json:"config_name"`
			Status     string `json:"status"`
			Msg        string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("update_config answer: %v %s", err, body)
		}
		var rs []res
		for _, o := range out {
			rs = append(rs, res{o.ConfigName, o.Status, o.Msg})
		}
		return rs
	}
	if got := update("disable_auto_compaction=false"); len(got) != 1 || got[0] != (res{"disable_auto_compaction", "OK", ""}) {
		t.Fatalf("mutable key: %v", got)
	}
	if got := update("be_port=9999"); len(got) != 1 || got[0].Status != "BAD" ||
		got[0].Msg != "set be_port=9999 failed, reason: [NOT_IMPLEMENTED_ERROR]'be_port' is not support to modify." {
		t.Fatalf("immutable key: %v", got)
	}
	if got := update("no_such=1"); len(got) != 1 || got[0].Status != "BAD" || !strings.Contains(got[0].Msg, "[NOT_FOUND]'no_such' is not found") {
		t.Fatalf("unknown key: %v", got)
	}
	if got := update("streaming_load_max_mb=lots"); got[0].Status != "BAD" {
		t.Fatalf("bad value: %v", got)
	}
	if c := show(); c["disable_auto_compaction"][2] != "false" || c["be_port"][2] != strconv.Itoa(p.be) {
		t.Fatalf("after updates: %v %v", c["disable_auto_compaction"], c["be_port"])
	}
	// update_config is POST only, as on a real BE.
	resp, err := http.Get(base + "update_config?disable_auto_compaction=true")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET update_config: %d", resp.StatusCode)
	}

	// persist=true lands in be_custom.conf, which wins over be.conf at the next start.
	if got := update("max_tablet_version_num=3000&persist=true"); got[0].Status != "OK" {
		t.Fatalf("persist: %v", got)
	}
	if ok, text := fileContains(filepath.Join(home, "conf", "be_custom.conf"), "max_tablet_version_num = 3000"); !ok {
		t.Fatalf("be_custom.conf: %s", text)
	}
	if out, err := script(t, r.env, home, "stop_be.sh"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	start(t, r.env, home, "start_be.sh", "stop_be.sh")
	waitBEHealthy(t, home, p)
	if c := show(); c["max_tablet_version_num"][2] != "3000" || c["disable_auto_compaction"][2] != "true" {
		t.Fatalf("after restart: %v %v", c["max_tablet_version_num"], c["disable_auto_compaction"])
	}
	body, err := httpGet(base + "be_version_info")
	if err != nil || !strings.Contains(body, `"dorisBuildVersion":"doris-2.0.3"`) || !strings.Contains(body, `"dorisBuildVersionMinor":0`) {
		t.Fatalf("be_version_info: %s %v", body, err)
	}
}

// An upgrade keeps the FE's meta dir and the BE's storage root: the new
// version's processes find the cluster, its members and its tables.
func TestUpgradeKeepsMetaAndStorage(t *testing.T) {
	oldRel := newReleaseVersion(t, dorissim.Layout2x, "2.1.7", nil)
	newRel := newReleaseVersion(t, dorissim.Layout2x, "2.1.8", nil)
	meta, storage := t.TempDir(), t.TempDir()
	feOld, beOld := oldRel.dirs[dorissim.RoleFE], oldRel.dirs[dorissim.RoleBE]
	fp := setupFE(t, feOld)
	appendConf(t, feOld, "fe.conf", "meta_dir = "+meta)
	bp := setupBE(t, beOld, "storage_root_path = "+storage)
	startFE(t, oldRel.env, feOld)
	start(t, oldRel.env, beOld, "start_be.sh", "stop_be.sh")
	waitFEReady(t, fp)
	db := openDB(t, fp.query)
	for _, s := range []string{fmt.Sprintf(`ALTER SYSTEM ADD BACKEND "127.0.0.1:%d"`, bp.heartbeat)} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "BE alive", func() (bool, string) {
		r := backends(t, db)[bp.heartbeat]
		return r["Alive"] == "true" && r["Version"] == "doris-2.1.7", fmt.Sprint(r)
	})
	for _, s := range []string{"CREATE DATABASE up", `CREATE TABLE up.t (k INT) DISTRIBUTED BY HASH(k) BUCKETS 3 PROPERTIES ("replication_num" = "1")`} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := frontend(db, fp.editLog)
	for _, s := range []struct{ home, stop string }{{beOld, "stop_be.sh"}, {feOld, "stop_fe.sh"}} {
		if out, err := script(t, oldRel.env, s.home, s.stop); err != nil {
			t.Fatalf("%s: %v %s", s.stop, err, out)
		}
	}
	// The new version's homes run with the old conf files.
	feNew, beNew := newRel.dirs[dorissim.RoleFE], newRel.dirs[dorissim.RoleBE]
	for _, c := range []struct{ from, to string }{{filepath.Join(feOld, "conf", "fe.conf"), filepath.Join(feNew, "conf", "fe.conf")},
		{filepath.Join(beOld, "conf", "be.conf"), filepath.Join(beNew, "conf", "be.conf")}} {
		b, err := os.ReadFile(c.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startFE(t, newRel.env, feNew)
	start(t, newRel.env, beNew, "start_be.sh", "stop_be.sh")
	waitFEReady(t, fp)
	db = openDB(t, fp.query)
	after, err := frontend(db, fp.editLog)
	if err != nil || after["ClusterId"] != before["ClusterId"] || after["Name"] != before["Name"] || after["Version"] != "doris-2.1.8" ||
		after["IsMaster"] != "true" {
		t.Fatalf("FE before %v after %v (%v)", before, after, err)
	}
	waitFor(t, "upgraded BE alive", func() (bool, string) {
		r := backends(t, db)[bp.heartbeat]
		return r["Alive"] == "true" && r["Version"] == "doris-2.1.8" && r["TabletNum"] == "3", fmt.Sprint(r)
	})
	_, tables, err := rows(db, "SHOW TABLES FROM up")
	if err != nil || len(tables) != 1 || tables[0]["Tables_in_up"] != "t" {
		t.Fatalf("tables after upgrade: %v %v", tables, err)
	}
	if ok, log := fileContains(filepath.Join(feNew, "log", "fe.log"), "written by doris-2.1.7"); !ok {
		t.Fatalf("fe.log: %s", log)
	}
}
