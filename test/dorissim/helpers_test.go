package dorissim_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/go-sql-driver/mysql"
	"github.com/ulikunitz/xz"

	"github.com/dorismanager/dorismanager/test/dorissim"
	"github.com/dorismanager/dorismanager/test/freeport"
)

var (
	simBinary string
	javaHome  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dorissim-test")
	if err != nil {
		panic(err)
	}
	simBinary = filepath.Join(dir, "dorissim")
	javaHome = filepath.Join(dir, "jdk")
	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	if err := dorissim.BuildBinary(ctx, simBinary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cancel()
	if err := dorissim.WriteFakeJavaHome(javaHome); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// extract unpacks a .tar.gz or .tar.xz into dir.
func extract(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader
	if strings.HasSuffix(archive, ".xz") {
		if r, err = xz.NewReader(f); err != nil {
			t.Fatal(err)
		}
	} else {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, os.FileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
}

// release is one unpacked simulated release.
type release struct {
	t    *testing.T
	dirs map[dorissim.Role]string // role homes, absolute
	env  []string
}

// newRelease packs and unpacks a full release of layout into a temp dir.
// The package carries a stand-in binary, replaced by a link to the real one
// after unpacking: compressing the real binary three times under -race
// takes most of a minute.
func newRelease(t *testing.T, layout dorissim.Layout) *release {
	t.Helper()
	return newReleaseEnv(t, layout, nil)
}

// newReleaseEnv is newRelease with knobs baked into lib/dorissim.env.
func newReleaseEnv(t *testing.T, layout dorissim.Layout, simEnv map[string]string) *release {
	t.Helper()
	return newReleaseVersion(t, layout, "", simEnv)
}

// newReleaseVersion is newReleaseEnv of a given version ("" the layout's default).
func newReleaseVersion(t *testing.T, layout dorissim.Layout, version string, simEnv map[string]string) *release {
	t.Helper()
	dir := t.TempDir()
	stand := filepath.Join(dir, "stand-in")
	if err := os.WriteFile(stand, []byte("stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := dorissim.PackOptions{Layout: layout, Version: version, Format: dorissim.TarGz, Out: filepath.Join(dir, "pkg.tar.gz"),
		SimBinary: stand, SimEnv: simEnv}
	if _, err := dorissim.Pack(o); err != nil {
		t.Fatal(err)
	}
	extract(t, o.Out, dir)
	rel, err := dorissim.RoleDirs(o)
	if err != nil {
		t.Fatal(err)
	}
	r := &release{t: t, dirs: map[dorissim.Role]string{}}
	for role, d := range rel {
		r.dirs[role] = filepath.Join(dir, d)
		bin := "dorissim"
		if role == dorissim.RoleBE {
			bin = "doris_be"
		}
		p := filepath.Join(r.dirs[role], "lib", bin)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(simBinary, p); err != nil {
			if out, err := exec.Command("cp", simBinary, p).CombinedOutput(); err != nil {
				t.Fatalf("copy sim binary: %v %s", err, out)
			}
		}
	}
	r.env = testEnv()
	return r
}

func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "java_home", "doris_home", "broker_home", "log_dir", "pid_dir":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "JAVA_HOME="+javaHome, "DORIS_SIM_MIN_NOFILE=1024", "DORIS_SIM_MIN_MAP_COUNT=0",
		"DORIS_SIM_HEARTBEAT_INTERVAL=200ms", "DORIS_SIM_JOIN_RETRY_INTERVAL=200ms", "DORIS_SIM_CLONE_INTERVAL=100ms",
		"DORIS_SIM_CLONE_BATCH=2")
}

// clone copies one role home so a second process of that role can run.
func (r *release) clone(role dorissim.Role) string {
	r.t.Helper()
	dst := filepath.Join(r.t.TempDir(), string(role))
	if out, err := exec.Command("cp", "-a", r.dirs[role], dst).CombinedOutput(); err != nil {
		r.t.Fatalf("copy: %v %s", err, out)
	}
	return dst
}

func appendConf(t *testing.T, home, name string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(home, "conf", name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

// ports is shared by the package's tests so that no two of them (or two
// nodes of one test) are given the same port before either binds it.
var ports freeport.Ports

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	return ports.Free(t, n)
}

// script runs home/bin/name with bash and returns its combined output.
func script(t *testing.T, env []string, home, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := deadline.Context(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(home, "bin", name)}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// unusedNetwork is a documentation network (RFC 5737) none of this
// machine's addresses is in: a priority_networks that matches nothing.
func unusedNetwork(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, cidr := range []string{"198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"} {
		_, n, _ := net.ParseCIDR(cidr)
		used := false
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && n.Contains(ip.IP) {
				used = true
			}
		}
		if !used {
			return cidr
		}
	}
	t.Skip("every documentation network is in use on this machine")
	return ""
}

// fePorts are the four ports of one FE.
type fePorts struct{ http, rpc, query, editLog int }

func (p fePorts) editAddr() string { return "127.0.0.1:" + strconv.Itoa(p.editLog) }

// setupFE writes ports and priority_networks into home's fe.conf.
func setupFE(t *testing.T, home string) fePorts {
	ps := freePorts(t, 4)
	p := fePorts{ps[0], ps[1], ps[2], ps[3]}
	appendConf(t, home, "fe.conf", fmt.Sprintf("http_port = %d", p.http), fmt.Sprintf("rpc_port = %d", p.rpc),
		fmt.Sprintf("query_port = %d", p.query), fmt.Sprintf("edit_log_port = %d", p.editLog),
		"priority_networks = 127.0.0.1/32")
	return p
}

type bePorts struct{ be, web, heartbeat, brpc int }

func setupBE(t *testing.T, home string, extra ...string) bePorts {
	ps := freePorts(t, 4)
	p := bePorts{ps[0], ps[1], ps[2], ps[3]}
	appendConf(t, home, "be.conf", append([]string{fmt.Sprintf("be_port = %d", p.be),
		fmt.Sprintf("webserver_port = %d", p.web), fmt.Sprintf("heartbeat_service_port = %d", p.heartbeat),
		fmt.Sprintf("brpc_port = %d", p.brpc), "priority_networks = 127.0.0.1/32"}, extra...)...)
	return p
}

// start runs a start script with --daemon and registers its stop.
func start(t *testing.T, env []string, home, startName, stopName string, args ...string) {
	t.Helper()
	out, err := script(t, env, home, startName, append([]string{"--daemon"}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", startName, err, out)
	}
	t.Cleanup(func() { stop(t, env, home, stopName) })
}

func stop(t *testing.T, env []string, home, stopName string) {
	_, _ = script(t, env, home, stopName)
}

// waitFor polls cond with a short backoff until it holds or 20s pass.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	delay := 20 * time.Millisecond
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(delay)
		if delay < 300*time.Millisecond {
			delay *= 2
		}
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func fileContains(path, s string) (bool, string) {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s), string(b)
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func openDB(t *testing.T, port int) *sql.DB {
	t.Helper()
	return openDBAs(t, port, "root", "")
}

// openDBAs opens the MySQL protocol of an FE as user with password.
func openDBAs(t *testing.T, port int, user, password string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Timeout = 2 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// rows runs q and returns its columns and rows as maps.
func rows(db *sql.DB, q string) ([]string, []map[string]string, error) {
	rs, err := db.Query(q)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out []map[string]string
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	return cols, out, rs.Err()
}

// processGone reports whether pid no longer runs (a zombie counts as gone).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && (f[2] == "Z" || f[2] == "X")
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}
