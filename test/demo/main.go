// Command demo walks the whole install wizard of Doris Manager on three
// sandbox hosts (network namespaces with their own sshd) and a simulated
// Doris release, and leaves the cluster and the manager running for a
// person to look at. `demo down` removes every trace of it.
//
//	demo up   [--bin DIR] [--dir DIR] [--hosts N]
//	demo down [--dir DIR]
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim"
	"github.com/dorismanager/dorismanager/test/sandbox"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

func main() {
	cmd := "up"
	args := os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	root, err := sandbox.RepoRoot()
	if err != nil {
		fail(err)
	}
	fs := flag.NewFlagSet("demo "+cmd, flag.ExitOnError)
	dir := fs.String("dir", filepath.Join(root, "demo"), "folder for the state file, the manager's data and logs")
	bin := fs.String("bin", filepath.Join(root, "bin"), "folder with dorismanager, agents/ and plugins/ (make build)")
	hosts := fs.Int("hosts", 3, "sandbox hosts (up)")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		fail(errors.New("the demo needs root: it creates network namespaces, a bridge and an sshd per host; run `sudo make demo` (and `sudo make demo-down`)"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "up":
		err = up(ctx, *dir, *bin, *hosts)
	case "down":
		err = down(*dir, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q: use up or down", cmd)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}

// state is what `demo down` needs to remove a demo that `demo up` left running.
type state struct {
	WorkDir       string          `json:"workDir"`
	ManagerPID    int             `json:"managerPid"`
	ManagerBinary string          `json:"managerBinary"`
	ManagerURL    string          `json:"managerUrl"`
	TokenFile     string          `json:"tokenFile"`
	SSHKey        string          `json:"sshKey"`
	MaxMapCount   string          `json:"maxMapCount"` // restored by down
	Hosts         testhosts.State `json:"hosts"`
	Started       time.Time       `json:"started"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func saveState(dir string, st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(dir))
}

func up(ctx context.Context, dir, bin string, nHosts int) (err error) {
	if _, err := os.Stat(statePath(dir)); err == nil {
		return fmt.Errorf("a demo is already running (%s): `make demo-down` removes it", statePath(dir))
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	mgr := filepath.Join(bin, "dorismanager")
	if _, err := os.Stat(mgr); err != nil {
		return fmt.Errorf("%s is missing: run `make build` first", mgr)
	}
	st := state{WorkDir: filepath.Join(dir, "work"), ManagerBinary: mgr, Started: time.Now()}
	if b, err := os.ReadFile(sandbox.MaxMapCountFile); err == nil {
		st.MaxMapCount = strings.TrimSpace(string(b))
	}
	if err := os.MkdirAll(st.WorkDir, 0o700); err != nil {
		return err
	}
	if err := saveState(dir, st); err != nil {
		return err
	}
	var s *sandbox.Sandbox
	// From here on anything that fails is taken down again; the state file
	// is written as soon as there is something to take down.
	defer func() {
		if err != nil {
			if s != nil {
				_ = s.StopManager(false)
			}
			if b, rerr := os.ReadFile(filepath.Join(st.WorkDir, "manager.log")); rerr == nil && len(b) > 0 {
				fmt.Fprintf(os.Stderr, "\nmanager log (tail):\n%s\n", tail(string(b), 30))
			}
			fmt.Fprintln(os.Stderr, "\nthe demo failed; removing what it set up:")
			if derr := down(dir, os.Stderr); derr != nil {
				fmt.Fprintln(os.Stderr, "demo down:", derr)
			}
		}
	}()

	t0 := time.Now()
	say := func(format string, a ...any) { fmt.Printf("==> "+format+"\n", a...) }
	say("starting %d sandbox hosts, packing the simulated Doris release ...", nHosts)
	s, err = sandbox.Start(ctx, sandbox.Options{Hosts: nHosts, BinDir: bin, WorkDir: st.WorkDir})
	if err != nil {
		return err // Start has removed its own hosts already
	}
	st.Hosts = s.Hosts.State()
	st.SSHKey = filepath.Join(dir, "ssh_key")
	if err := saveState(dir, st); err != nil {
		s.Close()
		s = nil
		return err
	}
	// The hosts outlive this process on purpose: the state file above is
	// now how they are found and removed (demo down), so the test hosts'
	// reaper must leave them alone once this process exits.
	if err := s.Hosts.Detach(); err != nil {
		return err
	}
	if err := os.WriteFile(st.SSHKey, s.Hosts.Keys.Ed25519, 0o600); err != nil {
		return err
	}
	name := map[string]string{}
	for _, h := range s.Hosts.Hosts {
		name[h.Addr] = h.Name
		say("  %s  %-12s netns %s", h.Name, h.Addr, h.NS)
	}
	say("package %s", s.PackageURL)
	say("starting the manager (%s serve) ...", mgr)
	if err := s.StartManager(ctx); err != nil {
		return err
	}
	st.ManagerPID, st.ManagerURL = s.ManagerPID(), s.URL
	st.TokenFile = filepath.Join(s.DataDir, "admin.token")
	if err := saveState(dir, st); err != nil {
		return err
	}
	say("manager at %s (log %s), ready in %.1fs", s.URL, s.ManagerLog(), time.Since(t0).Seconds())

	fmt.Println()
	c := s.Client()
	plan := s.StandardPlan()
	steps := []string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"}
	calls := map[string]string{
		"INSTALL_AGENT": "POST /api/server/installAgent", "INSTALL_SERVICE": "POST /api/agent/installService",
		"DEPLOY_CONFIG": "POST /api/agent/deployConfig", "START_SERVICE": "POST /api/agent/startService",
		"BUILD_CLUSTER": "POST /api/agent/buildCluster",
	}
	w0 := time.Now()
	stamp := func() string { return fmt.Sprintf("[%5.1fs]", time.Since(w0).Seconds()) }
	var stepStart time.Time
	cur := ""
	endStep := func() {
		if cur != "" {
			fmt.Printf("%s   step %s done in %.1fs\n", stamp(), cur, time.Since(stepStart).Seconds())
		}
	}
	pid, _, werr := c.Walk(ctx, s, plan, func(step string, t *sandbox.Task) {
		if t == nil {
			endStep()
			cur, stepStart = step, time.Now()
			fmt.Printf("%s step %d %s  (%s)\n", stamp(), slices.Index(steps, step), step, calls[step])
			return
		}
		line := fmt.Sprintf("%s   task %-3d %-20s %-6s %-12s %-9s", stamp(), t.ID, t.TaskType, name[t.Host], t.Host, t.Status)
		if t.Status == "SUCCESS" || t.Status == "FAILURE" {
			line += " " + oneLine(sandbox.Str(t.Response), 90)
		}
		fmt.Println(strings.TrimRight(line, " "))
	})
	if werr != nil {
		return fmt.Errorf("wizard (process %d): %w", pid, werr)
	}
	endStep()
	fmt.Printf("%s installComplete (POST /api/process/installComplete/%d): the wizard is done\n", stamp(), pid)

	master := plan.FEs[0].Host
	// The manager gave root a generated password; it shows it once.
	pw, err := s.AdminPassword(ctx, plan.ClusterID)
	if err != nil {
		return err
	}
	fmt.Printf("\n==> root's password, revealed once (POST /api/cluster/%d/adminPassword/reveal)\n", plan.ClusterID)
	fmt.Printf("\n==> the cluster, asked over the MySQL protocol (%s:9030):\n", master)
	db, err := s.MySQL(ctx, plan.ClusterID, net.JoinHostPort(master, "9030"))
	if err != nil {
		return err
	}
	err = showCluster(ctx, os.Stdout, db, master)
	db.Close()
	if err != nil {
		return err
	}

	tok, _ := os.ReadFile(st.TokenFile)
	token := strings.TrimSpace(string(tok))
	fmt.Printf(`
==> the demo is running; everything stays up until `+"`sudo make demo-down`"+`.

Cluster (simulated Doris %s)
  MySQL of the master FE: %s:9030, user root, password %s (generated by the manager)
    mysql -h %s -P 9030 -uroot -p'%s' -e 'SHOW FRONTENDS'
  hosts (user root, key %s):
`, dorissim.DefaultVersion(dorissim.Layout2x), master, pw, master, pw, st.SSHKey)
	for _, h := range s.Hosts.Hosts {
		fmt.Printf("    ssh -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@%s   # %s\n", st.SSHKey, h.Addr, h.Name)
	}
	caFile := filepath.Join(s.DataDir, "pki", "bundle.crt")
	fmt.Printf(`
Manager API (TLS, certificate from the manager's CA)
  URL:        %s
  CA bundle:  %s
  token file: %s
  token:      %s
    TOKEN=$(sudo cat %s); CA=%s
    curl -s --cacert $CA -H "Authorization: Bearer $TOKEN" %s/api/process/currentProcess
    curl -s --cacert $CA -H "Authorization: Bearer $TOKEN" '%s/api/server/agentList?clusterId=%d'
    curl -s --cacert $CA -H "Authorization: Bearer $TOKEN" '%s/api/server/roleList?clusterId=%d'
    curl -s --cacert $CA -H "Authorization: Bearer $TOKEN" %s/api/agent/hardware/%d
  manager log: %s

State: %s   (remove everything with: sudo make demo-down)
`, s.URL, caFile, st.TokenFile, token, st.TokenFile, caFile, s.URL, s.URL, plan.ClusterID, s.URL, plan.ClusterID, s.URL, plan.ClusterID,
		s.ManagerLog(), statePath(dir))
	// The package server lives in this process and stops with it; the hosts
	// have the release already. The manager, agents and Doris stay.
	return nil
}

// showCluster prints SHOW FRONTENDS, SHOW BACKENDS and SHOW BROKER, the
// columns a person looks at first.
func showCluster(ctx context.Context, w io.Writer, db *sql.DB, master string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, q := range []struct {
		query string
		cols  []string
	}{
		{"SHOW FRONTENDS", []string{"Name", "Host", "QueryPort", "Role", "IsMaster", "Alive", "Version"}},
		{"SHOW BACKENDS", []string{"BackendId", "Host", "HeartbeatPort", "Alive", "Version"}},
		{"SHOW BROKER", []string{"Name", "Host", "Port", "Alive"}},
	} {
		rows, err := query(ctx, db, q.query)
		if err != nil {
			return fmt.Errorf("%s on %s:9030: %w", q.query, master, err)
		}
		fmt.Fprintf(w, "\nmysql> %s;\n", q.query)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		var cols []string
		for _, c := range q.cols {
			if len(rows) > 0 {
				if _, ok := rows[0][c]; !ok {
					continue
				}
			}
			cols = append(cols, c)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
		for _, r := range rows {
			var vals []string
			for _, c := range cols {
				vals = append(vals, r[c])
			}
			fmt.Fprintln(tw, strings.Join(vals, "\t"))
		}
		tw.Flush()
		plural := "s"
		if len(rows) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "(%d row%s)\n", len(rows), plural)
	}
	return nil
}

func query(ctx context.Context, db *sql.DB, q string) ([]map[string]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// down removes a demo: the manager and its plugins, every process in the
// hosts' namespaces (agents, Doris, sshd), the namespaces, veths and
// bridge, the hosts' files and the demo's own, and vm.max_map_count.
func down(dir string, w io.Writer) error {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(w, "no demo is running (%s not found)\n", statePath(dir))
		return nil
	}
	if err != nil {
		return err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s: %w", statePath(dir), err)
	}
	var errs []error
	if st.ManagerPID > 0 {
		fmt.Fprintf(w, "stopping the manager (pid %d) and its plugins\n", st.ManagerPID)
		if err := sandbox.StopDetachedManager(st.ManagerPID, st.ManagerBinary, 30*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if st.Hosts.Bridge != "" {
		hs, err := testhosts.Attach(st.Hosts)
		if err != nil {
			errs = append(errs, err)
		} else {
			var ns []string
			for _, h := range hs.Hosts {
				ns = append(ns, h.NS)
			}
			fmt.Fprintf(w, "killing every process in %s, removing them, bridge %s and %s\n", strings.Join(ns, ", "), st.Hosts.Bridge, st.Hosts.Dir)
			if err := hs.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if st.MaxMapCount != "" {
		fmt.Fprintf(w, "restoring vm.max_map_count = %s\n", st.MaxMapCount)
		if err := os.WriteFile(sandbox.MaxMapCountFile, []byte(st.MaxMapCount+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore vm.max_map_count: %w", err))
		}
	}
	// Only what up made: the work folder, the key and the state file.
	for _, p := range []string{filepath.Join(dir, "work"), filepath.Join(dir, "ssh_key"), statePath(dir)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.Remove(dir) // only when empty
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(w, "demo removed")
	return nil
}

// oneLine keeps the first line of a task response, shortened.
func oneLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
