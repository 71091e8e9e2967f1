package simtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

func failureOf(t *testing.T, err error) *sdk.Failure {
	t.Helper()
	if err == nil {
		t.Fatal("succeeded, want a failure")
	}
	return sdk.AsFailure(err)
}

func TestBEScaleIn(t *testing.T) {
	c := newCluster(t, sim)
	fe := c.add(doris.RoleFE, master)
	outside := filepath.Join(t.TempDir(), "be-data")
	bes := []int{
		c.add(doris.RoleBE, nil),
		c.add(doris.RoleBE, nil, "storage_root_path = "+outside),
		c.add(doris.RoleBE, nil),
		c.add(doris.RoleBE, nil),
	}
	for _, i := range append([]int{fe}, bes...) {
		c.deploy(i, sim.VersionURL("2.1.7"))
	}
	c.sql(fe, "CREATE DATABASE d")
	c.sql(fe, `CREATE TABLE d.t (k INT) DISTRIBUTED BY HASH(k) BUCKETS 6 PROPERTIES ("replication_num" = "3")`)

	st := c.must(bes[1], "Status", nil)
	for k, want := range map[string]string{sdk.FactRunning: "true", sdk.FactHealthy: "true", sdk.FactRegistered: "true",
		sdk.FactAlive: "true", sdk.FactDecommissioning: "false", sdk.FactVersion: "2.1.7"} {
		if st.Facts[k] != want {
			t.Errorf("status %s = %q, want %q (%v)", k, st.Facts[k], want, st.Facts)
		}
	}

	// Decommission: the tablets move, the cluster drops the BE.
	res := c.must(bes[1], "Unregister", nil)
	if res.Facts[sdk.FactRegistered] != "false" {
		t.Errorf("facts %v", res.Facts)
	}
	if _, listed := c.row(fe, "SHOW BACKENDS", bes[1], "heartbeat_service_port"); listed {
		t.Fatal("decommissioned BE still listed")
	}
	var progress int
	for _, l := range c.h.Logs() {
		if strings.HasPrefix(l, "decommissioning: ") {
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress logged: %q", c.h.Logs())
	}
	total := 0
	for _, i := range []int{bes[0], bes[2], bes[3]} {
		r, _ := c.row(fe, "SHOW BACKENDS", i, "heartbeat_service_port")
		n, _ := strconv.Atoi(r["TabletNum"])
		total += n
	}
	if total != 18 {
		t.Errorf("%d replicas on the 3 BEs left, want 18", total)
	}
	st = c.must(bes[1], "Status", nil)
	if st.Facts[sdk.FactRegistered] != "false" || st.Facts[sdk.FactRunning] != "true" {
		t.Errorf("status after scale-in %v", st.Facts)
	}

	// Three BEs left, the table needs three: refused up front.
	_, err := c.call(bes[2], "Unregister", nil)
	if f := failureOf(t, err); !strings.Contains(f.Summary, "only 2 alive BEs would remain, but table d.t needs 3 replicas") {
		t.Fatalf("failure %+v", f)
	}
	if r, _ := c.row(fe, "SHOW BACKENDS", bes[2], "heartbeat_service_port"); r["SystemDecommissioned"] != "false" {
		t.Fatalf("refused BE marked: %v", r)
	}
	// Force drops it at once.
	c.must(bes[2], "Unregister", func(r *sdk.Request) { r.Force = true })
	if _, listed := c.row(fe, "SHOW BACKENDS", bes[2], "heartbeat_service_port"); listed {
		t.Fatal("force-dropped BE still listed")
	}

	// Stop and remove with purge: the home and the storage outside it go.
	c.must(bes[1], "Stop", nil)
	if _, err := c.call(bes[1], "Remove", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.nodes[bes[1]].Home); !os.IsNotExist(err) {
		t.Errorf("home left: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("data removed without purge: %v", err)
	}
	c.must(bes[1], "Remove", func(r *sdk.Request) { r.Purge = true })
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("storage root left after purge: %v", err)
	}
	// Refused while running.
	_, err = c.call(bes[3], "Remove", nil)
	if f := failureOf(t, err); !strings.Contains(f.Summary, "still runs") {
		t.Errorf("remove of a running BE: %+v", f)
	}
}

func TestFEScaleIn(t *testing.T) {
	c := newCluster(t, sim)
	m := c.add(doris.RoleFE, master)
	f1 := c.add(doris.RoleFE, map[string]string{doris.LabelFENodeType: doris.FEFollower})
	f2 := c.add(doris.RoleFE, map[string]string{doris.LabelFENodeType: doris.FEFollower})
	obs := c.add(doris.RoleFE, map[string]string{doris.LabelFENodeType: doris.FEObserver})
	for _, i := range []int{m, f1, f2, obs} {
		c.deploy(i, sim.VersionURL("2.1.7"))
	}
	if r, ok := c.row(m, "SHOW FRONTENDS", obs, "edit_log_port"); !ok || r["Role"] != "OBSERVER" || r["Alive"] != "true" {
		t.Fatalf("observer row %v", r)
	}
	_, err := c.call(m, "Unregister", func(r *sdk.Request) { r.Force = true })
	if f := failureOf(t, err); !strings.Contains(f.Summary, "is the master FE") {
		t.Fatalf("drop master: %+v", f)
	}

	// With f2 down, dropping f1 would leave one of two followers alive.
	c.must(f2, "Stop", nil)
	c.waitFor("f2 seen dead", func() (bool, string) {
		r, _ := c.row(m, "SHOW FRONTENDS", f2, "edit_log_port")
		return r["Alive"] == "false", fmt.Sprint(r)
	})
	_, err = c.call(f1, "Unregister", nil)
	if f := failureOf(t, err); !strings.Contains(f.Summary, "1 of the 2 FOLLOWERs left would be alive") {
		t.Fatalf("quorum: %+v", f)
	}
	if _, listed := c.row(m, "SHOW FRONTENDS", f1, "edit_log_port"); !listed {
		t.Fatal("f1 dropped although refused")
	}
	// Dropping the dead one keeps the quorum; then the observer.
	for _, i := range []int{f2, obs} {
		res := c.must(i, "Unregister", nil)
		if _, listed := c.row(m, "SHOW FRONTENDS", i, "edit_log_port"); listed || res.Facts[sdk.FactRegistered] != "false" {
			t.Fatalf("FE #%d still listed after Unregister (%v)", i, res.Facts)
		}
	}
	if n := len(c.sql(m, "SHOW FRONTENDS").Values); n != 2 {
		t.Fatalf("%d frontends left, want 2", n)
	}
	// Again: nothing to do.
	if res := c.must(obs, "Unregister", nil); !strings.Contains(res.Summary, "not members") {
		t.Errorf("second unregister: %s", res.Summary)
	}
}

func TestUpgrade(t *testing.T) {
	c := newCluster(t, sim)
	fe := c.add(doris.RoleFE, master)
	be := c.add(doris.RoleBE, nil)
	br := c.add(doris.RoleBroker, nil)
	for _, i := range []int{fe, be, br} {
		c.deploy(i, sim.VersionURL("2.1.7"))
	}
	c.sql(fe, "CREATE DATABASE d")
	c.sql(fe, `CREATE TABLE d.t (k INT) DISTRIBUTED BY HASH(k) BUCKETS 3 PROPERTIES ("replication_num" = "1")`)
	before, _ := c.row(fe, "SHOW FRONTENDS", fe, "edit_log_port")
	to := func(url string) func(*sdk.Request) { return func(r *sdk.Request) { r.PackageURL = url } }

	// Doris's order: BEs, then the rest, the master FE last.
	for _, i := range []int{be, br, fe} {
		res := c.must(i, "Upgrade", to(sim.VersionURL("2.1.8")))
		if res.Facts[sdk.FactVersion] != "2.1.8" || res.Facts[sdk.FactAlive] != "true" {
			t.Errorf("%s upgrade facts %v", c.nodes[i].Role, res.Facts)
		}
		home := c.nodes[i].Home
		if _, err := os.Stat(home + ".prev-2.1.7"); err != nil {
			t.Errorf("old version not kept: %v", err)
		}
		if conf, _ := os.ReadFile(filepath.Join(home, "conf", filepath.Base(confOf(c.nodes[i].Role)))); string(conf) != c.confs[i] {
			t.Errorf("%s conf after upgrade %q, want %q", c.nodes[i].Role, conf, c.confs[i])
		}
	}
	// The restarted master sees the BE alive again at its next heartbeat.
	c.waitFor("upgraded BE alive at 2.1.8", func() (bool, string) {
		r, _ := c.row(fe, "SHOW BACKENDS", be, "heartbeat_service_port")
		return r["Alive"] == "true" && r["Version"] == "doris-2.1.8" && r["TabletNum"] == "3", fmt.Sprint(r)
	})
	after, _ := c.row(fe, "SHOW FRONTENDS", fe, "edit_log_port")
	if after["Version"] != "doris-2.1.8" || after["ClusterId"] != before["ClusterId"] || after["Name"] != before["Name"] {
		t.Errorf("FE before %v after %v", before, after)
	}
	if tables := c.sql(fe, "SHOW TABLES FROM d"); len(tables.Values) != 1 {
		t.Errorf("tables after upgrade %v", tables)
	}
	if _, err := os.Stat(filepath.Join(c.nodes[fe].Home, "doris-meta", "image")); err != nil {
		t.Errorf("meta not moved into the new home: %v", err)
	}
	// A retry after success only checks.
	if res := c.must(fe, "Upgrade", to(sim.VersionURL("2.1.8"))); res.Facts[sdk.FactVersion] != "2.1.8" {
		t.Errorf("retry facts %v", res.Facts)
	}
	c.waitFor("broker status alive at 2.1.8", func() (bool, string) {
		st := c.must(br, "Status", nil)
		return st.Facts[sdk.FactVersion] == "2.1.8" && st.Facts[sdk.FactAlive] == "true", fmt.Sprint(st.Facts)
	})

	// A version that does not start: the failure says how to roll back,
	// and doing what it says brings the node back at 2.1.8.
	_, err := c.call(be, "Upgrade", to(broken))
	f := failureOf(t, err)
	if !strings.Contains(f.Detail, "To roll BE back to 2.1.8") {
		t.Fatalf("failure without rollback: %s\n%s", f.Summary, f.Detail)
	}
	for _, l := range strings.Split(f.Detail, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "mv ") {
			continue
		}
		args := strings.Fields(l)
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", l, err, out)
		}
	}
	c.must(be, "Start", nil)
	c.waitFor("rolled-back BE alive at 2.1.8", func() (bool, string) {
		r, _ := c.row(fe, "SHOW BACKENDS", be, "heartbeat_service_port")
		return r["Alive"] == "true" && r["Version"] == "doris-2.1.8" && r["TabletNum"] == "3", fmt.Sprint(r)
	})
}

func confOf(roleName string) string {
	_, s := roleFor(roleName)
	return s.ConfPath("/")
}

func TestReconfigure(t *testing.T) {
	c := newCluster(t, sim)
	fe := c.add(doris.RoleFE, master)
	be := c.add(doris.RoleBE, nil)
	for _, i := range []int{fe, be} {
		c.deploy(i, sim.VersionURL("2.1.7"))
	}
	feConfig := func(key string) string {
		rows := c.sql(fe, "SHOW FRONTEND CONFIG LIKE '"+key+"'")
		return doris.Col(rows, 0, "Value")
	}
	beConfig := func(key string) string {
		resp, err := c.h.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/show_config?conf_item=%s", c.nodes[be].Ports["webserver_port"], key))
		if err != nil {
			t.Fatal(err)
		}
		return string(resp.Body)
	}

	oldFE := c.confs[fe]
	newFE := oldFE + "qe_slow_log_ms = 100\nqe_max_connection = 2000\n"
	res := c.must(fe, "Reconfigure", func(r *sdk.Request) { r.Conf, r.DryRun = newFE, true })
	want := []sdk.Change{{Key: "qe_max_connection", New: "2000", Impact: sdk.ImpactRestart}, {Key: "qe_slow_log_ms", New: "100", Impact: sdk.ImpactLive}}
	if fmt.Sprint(res.Changes) != fmt.Sprint(want) {
		t.Fatalf("dry run changes %+v", res.Changes)
	}
	if conf, _ := os.ReadFile(doris.FE.ConfPath(c.nodes[fe].Home)); string(conf) != oldFE || feConfig("qe_slow_log_ms") != "5000" {
		t.Fatalf("dry run changed something: conf %q, qe_slow_log_ms %s", conf, feConfig("qe_slow_log_ms"))
	}
	res = c.must(fe, "Reconfigure", func(r *sdk.Request) { r.Conf = newFE })
	if feConfig("qe_slow_log_ms") != "100" || feConfig("qe_max_connection") != "1024" || res.Facts[sdk.FactRestartNeeded] != "true" {
		t.Fatalf("live: qe_slow_log_ms %s qe_max_connection %s facts %v", feConfig("qe_slow_log_ms"), feConfig("qe_max_connection"), res.Facts)
	}
	c.confs[fe] = newFE
	c.must(fe, "Stop", nil)
	c.must(fe, "Start", nil)
	if feConfig("qe_max_connection") != "2000" || feConfig("qe_slow_log_ms") != "100" {
		t.Fatalf("after restart: qe_max_connection %s", feConfig("qe_max_connection"))
	}

	newBE := c.confs[be] + "disable_auto_compaction = true\nmax_base_compaction_threads = 2\n"
	res = c.must(be, "Reconfigure", func(r *sdk.Request) { r.Conf = newBE })
	if !strings.Contains(beConfig("disable_auto_compaction"), `"true","true"`) || !strings.Contains(beConfig("max_base_compaction_threads"), `"4"`) ||
		res.Facts[sdk.FactRestartNeeded] != "true" {
		t.Fatalf("BE live: %s %s %v", beConfig("disable_auto_compaction"), beConfig("max_base_compaction_threads"), res.Facts)
	}
	c.confs[be] = newBE
	c.must(be, "Stop", nil)
	c.must(be, "Start", nil)
	if !strings.Contains(beConfig("max_base_compaction_threads"), `"2"`) {
		t.Fatalf("BE after restart: %s", beConfig("max_base_compaction_threads"))
	}
	// The cluster knows the BE by its heartbeat port: refused.
	moved := strings.Replace(newBE, fmt.Sprintf("heartbeat_service_port = %d", c.nodes[be].Ports["heartbeat_service_port"]), "heartbeat_service_port = 1", 1)
	_, err := c.call(be, "Reconfigure", func(r *sdk.Request) { r.Conf = moved })
	if f := failureOf(t, err); !strings.Contains(f.Summary, "heartbeat_service_port") {
		t.Fatalf("identity port: %+v", f)
	}
}
