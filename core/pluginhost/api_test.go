package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

func TestHTTPHandler(t *testing.T) {
	st := testStore(t, "")
	c1 := newCluster(t, st, "c1")
	dir := twoVersions(t)
	place(t, dir, "1.0.0", fileName("1.3.0", 2, 0), strings.Repeat("1", 64))
	m := newManager(t, Config{Dir: dir, Store: st})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	type envelope struct {
		Msg  string          `json:"msg"`
		Code int             `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	do := func(method, path, body string) (int, envelope) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env envelope
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, env
	}

	status, env := do("GET", "/", "")
	var o Overview
	if err := json.Unmarshal(env.Data, &o); err != nil || status != 200 {
		t.Fatalf("GET: %d %s %v", status, env.Data, err)
	}
	if len(o.Roles) != 1 || len(o.Roles[0].Versions) != 2 || o.Roles[0].Versions[0].Version != "1.1.0" || len(o.Roles[0].Versions[0].SHA256) != 64 {
		t.Errorf("roles %+v", o.Roles)
	}
	if len(o.Refused) != 1 || !strings.Contains(o.Refused[0].Reason, "checksum mismatch") || !strings.Contains(o.Refused[0].File, "1.3.0") {
		t.Errorf("refused %+v", o.Refused)
	}
	if len(o.Clusters) != 1 || o.Clusters[0] != (ClusterPin{ClusterID: c1.ID, ClusterName: "c1", Role: "TEST", Version: "1.1.0"}) {
		t.Errorf("clusters %+v", o.Clusters)
	}

	tests := []struct {
		body   string
		status int
		msg    string
	}{
		{`{"clusterId":` + itoa(c1.ID) + `,"role":"test","version":"1.0.0"}`, 200, "success"},
		{`{"clusterId":` + itoa(c1.ID) + `,"role":"TEST","version":"1.3.0"}`, 404, "was refused"},
		{`{"clusterId":999,"role":"TEST","version":"1.0.0"}`, 404, "cluster 999 does not exist"},
		{`{"clusterId":` + itoa(c1.ID) + `,"role":"TEST","version":"v1"}`, 400, "without a leading v"},
		{`{"clusterId":` + itoa(c1.ID) + `,"role":"TEST","version":""}`, 400, "empty version"},
		{`{"clusterId":` + itoa(c1.ID) + `,"role":"TEST","version":"^2"}`, 404, `no accepted TEST plugin matches "^2" (accepted: 1.1.0, 1.0.0)`},
		{`{"clusterId":0,"role":"TEST","version":"1.0.0"}`, 400, "clusterId"},
		{`{"clusterId":` + itoa(c1.ID) + `,"role":"","version":"1.0.0"}`, 400, "role is required"},
	}
	for _, tc := range tests {
		status, env := do("POST", "/pin", tc.body)
		if status != tc.status || env.Code != map[bool]int{true: 0, false: tc.status}[tc.status == 200] || !strings.Contains(env.Msg, tc.msg) {
			t.Errorf("POST /pin %s: %d %+v, want %d %q", tc.body, status, env, tc.status, tc.msg)
		}
	}
	// Unpin, then pin by a rule: it resolves to the highest match and
	// records both.
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/pin/" + itoa(c1.ID) + "/test", 200, "success"},
		{"/pin/" + itoa(c1.ID) + "/TEST", 404, "has no pin for TEST"},
		{"/pin/999/TEST", 404, "cluster 999 does not exist"},
		{"/pin/x/TEST", 400, "positive number"},
	} {
		if status, env := do("DELETE", tc.path, ""); status != tc.status || !strings.Contains(env.Msg, tc.msg) {
			t.Errorf("DELETE %s: %d %+v, want %d %q", tc.path, status, env, tc.status, tc.msg)
		}
	}
	status, env = do("POST", "/pin", `{"clusterId":`+itoa(c1.ID)+`,"role":"TEST","version":"~1.0"}`)
	var pin PinInfo
	if err := json.Unmarshal(env.Data, &pin); err != nil || status != 200 || pin != (PinInfo{ClusterID: c1.ID, Role: "TEST", Version: "1.0.0", Constraint: "~1.0", SHA256: fileSum(t, dir, "1.0.0")}) {
		t.Errorf("pin ~1.0: %d %s", status, env.Data)
	}
	runningTask(t, st, c1.ID)
	if status, env := do("POST", "/pin", `{"clusterId":`+itoa(c1.ID)+`,"role":"TEST","version":"1.1.0"}`); status != 409 || !strings.Contains(env.Msg, "running task") {
		t.Errorf("pin while running: %d %+v", status, env)
	}
	if status, env := do("DELETE", "/pin/"+itoa(c1.ID)+"/TEST", ""); status != 409 || !strings.Contains(env.Msg, "running task") {
		t.Errorf("unpin while running: %d %+v", status, env)
	}

	// A new version appears after a rescan; the pinned cluster keeps its version.
	place(t, dir, "wire2", fileName("1.2.0", 2, 0), "")
	status, env = do("POST", "/rescan", "")
	if err := json.Unmarshal(env.Data, &o); err != nil || status != 200 {
		t.Fatalf("rescan: %d %s", status, env.Data)
	}
	if len(o.Roles) != 1 || len(o.Roles[0].Versions) != 3 || o.Roles[0].Versions[0].Version != "1.2.0" {
		t.Errorf("after rescan: %+v", o.Roles)
	}
	if o.Clusters[0] != (ClusterPin{ClusterID: c1.ID, ClusterName: "c1", Role: "TEST", Version: "1.0.0", Pinned: true, Constraint: "~1.0", SHA256: fileSum(t, dir, "1.0.0")}) {
		t.Errorf("after pin and a new version: %+v", o.Clusters)
	}

	// A pin to a file that is then refused, or removed, is flagged.
	os.WriteFile(filepath.Join(dir, "test", fileName("1.0.0", 2, 0)+SumSuffix), []byte(strings.Repeat("2", 64)+"\n"), 0o644)
	if status, env = do("POST", "/rescan", ""); status != 200 || json.Unmarshal(env.Data, &o) != nil {
		t.Fatalf("rescan: %d %s", status, env.Data)
	}
	if p := o.Clusters[0].Problem; !strings.Contains(p, "TEST plugin 1.0.0 was refused") || !strings.Contains(p, "checksum mismatch") {
		t.Errorf("pin to a refused file: problem %q", p)
	}
	os.Remove(filepath.Join(dir, "test", fileName("1.0.0", 2, 0)))
	if status, env = do("POST", "/rescan", ""); status != 200 || json.Unmarshal(env.Data, &o) != nil {
		t.Fatalf("rescan: %d %s", status, env.Data)
	}
	if p := o.Clusters[0].Problem; !strings.Contains(p, "TEST plugin version 1.0.0 is not installed") {
		t.Errorf("pin to a missing file: problem %q", p)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestCLIInstallListVerifyRemove(t *testing.T) {
	dir := t.TempDir()
	dataDir := t.TempDir()
	trustTestKey(t, dataDir)
	ctx := context.Background()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runCLI(ctx, t, CLI{Dir: dir, DataDir: dataDir, Stdout: &out, Stderr: &errb}, args...)
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("install", bins["1.0.0"]); code != 0 || !strings.Contains(out, "installed TEST 1.0.0") {
		t.Fatalf("install: %d %s %s", code, out, errs)
	}
	if code, _, _ := run("install", bins["1.0.0"]); code != 0 {
		t.Error("installing the same file again should be a no-op")
	}
	// Different bytes under an installed version are refused.
	other := filepath.Join(t.TempDir(), "x")
	b, _ := os.ReadFile(bins["1.0.0"])
	os.WriteFile(other, append(b, 0), 0o755)
	if code, _, errs := run("install", other); code == 0 || !strings.Contains(errs, "unsigned: no checksum file x_SHA256SUM") {
		t.Errorf("install unsigned: %d %s", code, errs)
	}
	if _, _, err := Sign(testKey, other); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("install", other); code == 0 || !strings.Contains(errs, "already installed") {
		t.Errorf("overwrite: %d %s", code, errs)
	}
	if code, _, errs := run("install", bins["api2"]); code == 0 || !strings.Contains(errs, "speaks plugin API 3.0") {
		t.Errorf("install api2: %d %s", code, errs)
	}
	if code, out, errs := run("install", bins["1.1.0"]); code != 0 {
		t.Fatalf("install 1.1.0: %s %s", out, errs)
	}
	// The checksum file and signature are installed as they were signed.
	for _, suffix := range []string{SumSuffix, SigSuffix} {
		got, _ := os.ReadFile(filepath.Join(dir, "test", fileName("1.1.0", 2, 0)+suffix))
		want, _ := os.ReadFile(bins["1.1.0"] + suffix)
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("installed %s %q, want the signed %q", suffix, got, want)
		}
	}
	code, out, _ := run("list")
	if code != 0 || !strings.Contains(out, "TEST  1.1.0") || !strings.Contains(out, "TEST  1.0.0") {
		t.Errorf("list: %d\n%s", code, out)
	}
	if code, out, _ := run("verify"); code != 0 || strings.Count(out, "OK") != 2 {
		t.Errorf("verify: %d\n%s", code, out)
	}

	// Pins live in the data dir's database.
	st := testStore(t, dataDir)
	c := newCluster(t, st, "c1")
	if err := st.SetPin(ctx, store.PluginPin{ClusterID: c.ID, Role: "TEST", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("remove", "test", "1.0.0"); code == 0 || !strings.Contains(errs, "pinned") {
		t.Errorf("remove pinned: %d %s", code, errs)
	}
	if code, out, errs := run("remove", "TEST", "1.1.0"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: %d %s %s", code, out, errs)
	}
	if code, out, _ := run("list"); code != 0 || strings.Contains(out, "1.1.0") || !strings.Contains(out, "1.0.0 (pinned)") {
		t.Errorf("list after remove: %s", out)
	}

	os.WriteFile(filepath.Join(dir, "test", fileName("1.0.0", 2, 0)+SumSuffix), []byte(strings.Repeat("a", 64)+"\n"), 0o644)
	if code, out, _ := run("verify"); code != 1 || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "checksum mismatch") {
		t.Errorf("verify with a bad sum: %d %s", code, out)
	}
}

// benchHost answers the test role's Install calls.
func benchHost() *sdktest.FakeHost {
	h := sdktest.NewFakeHost()
	h.ExecOK(`openjdk version "17"`, "java")
	h.QueryRows("SHOW FRONTENDS", sdk.Rows{Columns: []string{"Alive"}, Values: [][]string{{"true"}}})
	return h
}

// BenchmarkCall is one plugin call (Install) to a real plugin process that
// makes four Host calls back through the broker (Exec, WriteFile,
// ReadFile, Query).
func BenchmarkCall(b *testing.B) {
	m := newManager(b, Config{Dir: twoVersions(b)})
	ctx := context.Background()
	h := benchHost()
	req := testRequest(1)
	if _, err := testRole(b, m, 1, nil).Install(ctx, h, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := testRole(b, m, 1, nil).Install(ctx, h, req); err != nil {
			b.Fatal(err)
		}
		h.ResetCalls()
	}
}

// BenchmarkCallNoHost is a plugin call that makes no Host call: the cost of
// the round trip and the per-call broker listener alone.
func BenchmarkCallNoHost(b *testing.B) {
	m := newManager(b, Config{Dir: twoVersions(b)})
	ctx := context.Background()
	h := sdktest.NewFakeHost()
	req := testRequest(1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := testRole(b, m, 1, nil).Precheck(ctx, h, req); err != nil {
			b.Fatal(err)
		}
	}
}
