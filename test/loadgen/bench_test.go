//go:build loadbench

// The load benchmark of BENCHMARKS.md ("Many agents"): not part of make
// test (build tag loadbench); run with `make loadbench` or
//
//	go test -tags loadbench -run TestLoad -timeout 0 -v ./test/loadgen
//
// Environment (defaults in brackets): LOADGEN_CONFIGS [pg1,pg2,sqlite]:
// pg1 one manager on PostgreSQL, pg2 two managers on one PostgreSQL (agents
// split between them), sqlite one manager on SQLite at each interval of
// LOADGEN_SQLITE_INTERVALS [5s,2.5s,1.25s,625ms] (the same agents beating
// faster: its ceiling in beats per second, since one process cannot hold
// more than RLIMIT_NOFILE connections); LOADGEN_AGENTS [10000];
// LOADGEN_INTERVAL [5s]; LOADGEN_DURATION [10m] and LOADGEN_SHORT [3m]
// (pg2 and each sqlite step); LOADGEN_OUT, a file the table rows are
// appended to.
package loadgen

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

const perCluster = 100 // agents per cluster: agentList answers one cluster's

type benchConfig struct {
	name     string
	pg       bool
	managers int
	agents   int
	interval time.Duration
	duration time.Duration
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(t *testing.T, name, def string) time.Duration {
	d, err := time.ParseDuration(env(name, def))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func TestLoad(t *testing.T) {
	raiseNoFile(t)
	n, err := strconv.Atoi(env("LOADGEN_AGENTS", "10000"))
	if err != nil || n < perCluster || n%perCluster != 0 {
		t.Fatalf("LOADGEN_AGENTS: a multiple of %d, got %q", perCluster, env("LOADGEN_AGENTS", ""))
	}
	interval := envDuration(t, "LOADGEN_INTERVAL", "5s")
	long, short := envDuration(t, "LOADGEN_DURATION", "10m"), envDuration(t, "LOADGEN_SHORT", "3m")
	var configs []benchConfig
	for _, c := range strings.Split(env("LOADGEN_CONFIGS", "pg1,pg2,sqlite"), ",") {
		switch c {
		case "pg1":
			configs = append(configs, benchConfig{"PostgreSQL, 1 manager", true, 1, n, interval, long})
		case "pg2":
			configs = append(configs, benchConfig{"PostgreSQL, 2 managers", true, 2, n, interval, short})
		case "sqlite":
			for _, s := range strings.Split(env("LOADGEN_SQLITE_INTERVALS", "5s,2.5s,1.25s,625ms"), ",") {
				iv, err := time.ParseDuration(s)
				if err != nil {
					t.Fatalf("LOADGEN_SQLITE_INTERVALS: %v", err)
				}
				configs = append(configs, benchConfig{"SQLite, 1 manager", false, 1, n, iv, short})
			}
		default:
			t.Fatalf("LOADGEN_CONFIGS: unknown %q (pg1, pg2, sqlite)", c)
		}
	}
	bin := buildManager(t)
	var rows []string
	for _, c := range configs {
		row := runConfig(t, bin, c)
		rows = append(rows, row)
		t.Log(header + "\n" + row)
		if out := os.Getenv("LOADGEN_OUT"); out != "" {
			f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintln(f, row)
				f.Close()
			}
		}
	}
	t.Log("\n" + header + "\n" + strings.Join(rows, "\n"))
}

const header = "| config | agents | interval | run | beats/s target | sent/s | acked/s | errors | new conns/s | beat p50 / p99 | REST p50 / p99 / max (n) | REST errors | manager CPU | manager RSS max | PostgreSQL CPU | RUNNING at end |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

// raiseNoFile lifts this process's open-file limit to its hard limit: one
// connection per simulated agent.
func raiseNoFile(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	t.Logf("RLIMIT_NOFILE %d", l.Cur)
}

func buildManager(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "dorismanager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dorismanager")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the manager: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type manager struct {
	cmd           *exec.Cmd
	api, agentURL string
}

func runConfig(t *testing.T, bin string, c benchConfig) string {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	work := t.TempDir()
	dsn := ""
	if c.pg {
		dsn = pgtest.Start(t)
	}
	dirs := []string{filepath.Join(work, "m1")}
	if c.managers == 2 {
		dirs = append(dirs, filepath.Join(work, "m2"))
	}
	empty := filepath.Join(work, "empty")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		t.Fatal(err)
	}

	// What installAgent would have done for c.agents hosts, before any
	// manager runs: the CA, clusters, agent certificates and records.
	start := time.Now()
	st, err := store.Open(dsn, dirs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	var clusters []int64
	for i := range c.agents / perCluster {
		cl, err := st.CreateCluster(ctx, fmt.Sprintf("load-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		clusters = append(clusters, cl.ID)
	}
	token, _, err := auth.CreateToken(ctx, st, auth.TokenSpec{User: "loadgen", Role: auth.Admin})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Open(dirs[0], pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secret.LoadOrCreateFile(filepath.Join(dirs[0], secret.KeyFile)); err != nil {
		t.Fatal(err)
	}
	ids, err := Provision(ctx, st, ca, clusters, perCluster, runtime.NumCPU()*2)
	if err != nil {
		t.Fatal(err)
	}
	bundle := ca.Bundle()
	st.Close()
	// The second manager serves with a copy of the first one's CA and
	// secret key (both trust and sign with the same CA).
	if len(dirs) == 2 {
		for _, f := range []string{"pki/ca.key", "pki/ca.crt", "pki/" + pki.BundleFile, "pki/manager.pem", secret.KeyFile} {
			copyFile(t, filepath.Join(dirs[0], f), filepath.Join(dirs[1], f))
		}
	}
	t.Logf("%s: provisioned %d agents in %d clusters in %v", c.name, len(ids), len(clusters), time.Since(start).Round(time.Millisecond))

	var ms []manager
	for i, d := range dirs {
		api, ag := freeAddr(t), freeAddr(t)
		args := []string{"serve", "--listen", api, "--agent-listen", ag, "--data-dir", d, "--plugins-dir", empty,
			"--agents-dir", empty, "--http-max-conns", strconv.Itoa(c.agents + 1000), "--advertise-url", "https://" + ag}
		if dsn != "" {
			args = append(args, "--db", dsn)
		}
		cmd := exec.Command(bin, args...)
		logf, err := os.Create(filepath.Join(work, fmt.Sprintf("manager%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("manager %d log (tail):\n%s", i+1, tail(b, 4000))
			}
		})
		ms = append(ms, manager{cmd: cmd, api: "http://" + api, agentURL: "https://" + ag})
	}
	for _, m := range ms {
		waitReady(t, m.api)
	}

	var urls []string
	for _, m := range ms {
		urls = append(urls, m.agentURL)
	}
	sim, err := NewSim(SimConfig{URLs: urls, ServerName: "127.0.0.1", Bundle: bundle, Identities: ids, Interval: c.interval})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	start = time.Now()
	if err := sim.Register(ctx, 16); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: registered %d agents in %v", c.name, len(ids), time.Since(start).Round(time.Millisecond))

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); sim.Beat(ctx) }()
	// 20 REST requests a second in all, spread over the managers, each
	// manager's from a prober process of its own (bench_prober_test.go).
	var probers []*proberProc
	for _, m := range ms {
		probers = append(probers, startProber(t, proberSpec{BaseURL: m.api, Token: token, Every: 50 * time.Millisecond * time.Duration(len(ms)), Paths: []string{
			"/readyz",
			fmt.Sprintf("/api/server/agentList?clusterId=%d", clusters[0]),
			"/api/process/currentProcess",
			fmt.Sprintf("/api/cluster/%d/status", clusters[len(clusters)-1]),
		}}))
	}

	// Warm-up: every agent has beaten twice and the connections are open.
	time.Sleep(2 * c.interval)
	pgPid := 0
	if dsn != "" {
		pgPid = postmasterPid(t, dsn)
	}
	sent0, acked0, errs0, dials0 := sim.Sent.Load(), sim.Acked.Load(), sim.Errors(), sim.Dials.Load()
	sim.Latency.Reset()
	for _, p := range probers {
		p.Reset(t)
	}
	cpu0 := make([]time.Duration, len(ms))
	for i, m := range ms {
		cpu0[i], _ = CPUTime(m.cmd.Process.Pid)
	}
	pg0, _ := treeCPU(pgPid)
	sess0 := pgSessions(dsn)
	rssMax := make([]int64, len(ms))
	t0 := time.Now()
	end := time.After(c.duration)
	tick := time.NewTicker(time.Second)
sample:
	for {
		select {
		case <-end:
			break sample
		case <-tick.C:
			for i, m := range ms {
				if r, err := RSS(m.cmd.Process.Pid); err == nil {
					rssMax[i] = max(rssMax[i], r)
				} else {
					t.Fatalf("manager %d: %v (did it exit?)", i+1, err)
				}
			}
		}
	}
	tick.Stop()
	el := time.Since(t0)
	sent, acked, errs, dials := sim.Sent.Load()-sent0, sim.Acked.Load()-acked0, sim.Errors(), sim.Dials.Load()-dials0
	cpu := make([]string, len(ms))
	rss := make([]string, len(ms))
	for i, m := range ms {
		c1, _ := CPUTime(m.cmd.Process.Pid)
		cpu[i] = fmt.Sprintf("%.0f%%", 100*(c1-cpu0[i]).Seconds()/el.Seconds())
		rss[i] = fmt.Sprintf("%d MiB", rssMax[i]>>20)
	}
	pgCPU := "-"
	if pgPid > 0 {
		pg1, _ := treeCPU(pgPid)
		pgCPU = fmt.Sprintf("%.0f%%", 100*(pg1-pg0).Seconds()/el.Seconds())
	}
	var all []time.Duration
	var restErrs int64
	var lastErr string
	for i, p := range probers {
		r := p.Report(t)
		all = append(all, r.All...)
		restErrs += r.Errors
		if r.Last != "" {
			lastErr = r.Last
		}
		for path, d := range r.ByPath {
			s := Summarize(d)
			t.Logf("manager %d %s: n %d p50 %v p99 %v max %v", i+1, path, s.N, s.P50, s.P99, s.Max)
		}
	}
	rest := Summarize(all)
	beat := sim.Latency.Summary()
	var errText []string
	for k, v := range errs {
		if d := v - errs0[k]; d > 0 {
			errText = append(errText, fmt.Sprintf("%s: %d", k, d))
		}
	}
	slices.Sort(errText)
	if len(errText) == 0 {
		errText = []string{"0"}
	}
	if lastErr != "" {
		t.Logf("last REST error: %s", lastErr)
	}
	running := countRunning(t, ms[0].api, token, clusters)
	if dsn != "" {
		// Each session is a backend the server forked: a pool that keeps
		// too few idle connections shows here.
		t.Logf("PostgreSQL sessions opened during the run: %d", pgSessions(dsn)-sess0)
	}
	cancel()
	return fmt.Sprintf("| %s | %d | %v | %v | %.0f | %.0f | %.0f | %s | %.1f | %v / %v | %v / %v / %v (%d) | %d | %s | %s | %s | %d |",
		c.name, c.agents, c.interval, el.Round(time.Second), float64(c.agents)/c.interval.Seconds(),
		float64(sent)/el.Seconds(), float64(acked)/el.Seconds(), strings.Join(errText, ", "), float64(dials)/el.Seconds(),
		ms1(beat.P50), ms1(beat.P99), ms1(rest.P50), ms1(rest.P99), ms1(rest.Max), rest.N, restErrs,
		strings.Join(cpu, " + "), strings.Join(rss, " + "), pgCPU, running)
}

func ms1(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func treeCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	return TreeCPUTime(pid)
}

// countRunning asks manager 1's agentList for every cluster how many
// agents are RUNNING (liveness as the store computes it from the written
// heartbeat times): -1 when an answer failed.
func countRunning(t *testing.T, api, token string, clusters []int64) int {
	c := &http.Client{Timeout: time.Minute}
	n := 0
	for _, id := range clusters {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/server/agentList?clusterId=%d", api, id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Logf("count RUNNING agents: %v", err)
			return -1
		}
		var env struct {
			Data []struct {
				Status string `json:"status"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Logf("count RUNNING agents: HTTP %d, %v", resp.StatusCode, err)
			return -1
		}
		for _, a := range env.Data {
			if a.Status == store.AgentRunning {
				n++
			}
		}
	}
	return n
}

// postmasterPid asks the server for its data directory and reads the
// postmaster's pid from it.
func postmasterPid(t *testing.T, dsn string) int {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dir string
	if err := db.QueryRow("SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Logf("PostgreSQL CPU not measured: %v", err)
		return 0
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	return pid
}

// pgSessions is how many sessions the database has had
// (pg_stat_database.sessions, PostgreSQL 14 and later); 0 on SQLite.
func pgSessions(dsn string) int64 {
	if dsn == "" {
		return 0
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int64
	_ = db.QueryRow("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
	return n
}

func waitReady(t *testing.T, api string) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("manager at %s not ready in 2 minutes", api)
}

func copyFile(t *testing.T, from, to string) {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, _ := in.Stat()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
