package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/pidfile"
	"github.com/dorismanager/dorismanager/sdk"
)

const cliUsage = `usage: dorismanager plugins [flags] COMMAND
commands:
  list                     accepted plugins, refused files, every cluster's versions
  verify                   check every file, starting each through the plugin handshake;
                           exit 1 if any is refused
  install FILE             check FILE (describe, handshake) and install it under its
                           canonical name; a running manager is told to rescan
  remove ROLE VERSION      remove a version no cluster is pinned to
  pin CLUSTER ROLE RULE    pin a cluster's role to a version or rule (1.2.3, ~1.2, ">=1.2 <2")
  unpin CLUSTER ROLE       remove a pin (the next use pins the highest version)
flags:
`

// CLI runs "dorismanager plugins ..." and returns the exit code. Pins are
// read from the manager's database: --db (a postgres:// URL) or else
// <data-dir>/dorismanager.db when it exists.
func CLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("plugins-dir", "bin/plugins", "plugins directory")
	dataDir := fs.String("data-dir", "data", "the manager's data directory (pins, and the pid of a running manager)")
	dsn := fs.String("db", "", "database: a postgres:// URL (default the SQLite file <data-dir>/dorismanager.db)")
	fs.Usage = func() {
		fmt.Fprint(stderr, cliUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	cmd, cmdArgs := rest[0], rest[1:]
	fail := func(err error) int {
		fmt.Fprintf(stderr, "plugins %s: %v\n", cmd, err)
		return 1
	}
	needs := map[string]int{"list": 0, "verify": 0, "install": 1, "remove": 2, "pin": 3, "unpin": 2}
	if n, ok := needs[cmd]; !ok || n != len(cmdArgs) {
		fs.Usage()
		return 2
	}
	st, err := openCLIStore(*dsn, *dataDir, cmd == "pin" || cmd == "unpin")
	if err != nil {
		return fail(err)
	}
	if st != nil {
		defer st.Close()
	}
	switch cmd {
	case "list":
		return cliList(ctx, *dir, st, stdout, stderr, false)
	case "verify":
		return cliList(ctx, *dir, st, stdout, stderr, true)
	case "install":
		p, err := Install(ctx, *dir, cmdArgs[0])
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "installed %s %s as %s (sha256 %s)\n", p.Role, p.Version, p.Path, p.SHA256)
		fmt.Fprintln(stdout, tellManager(*dataDir))
		fmt.Fprintf(stdout, "clusters already using %s keep their version; pin one to use %s: dorismanager plugins pin CLUSTER %s %s\n",
			p.Role, p.Version, p.Role, p.Version)
		return 0
	case "remove":
		path, err := Remove(ctx, *dir, st, cmdArgs[0], cmdArgs[1])
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "removed %s\n", path)
		fmt.Fprintln(stdout, tellManager(*dataDir))
		return 0
	case "pin", "unpin":
		id, err := strconv.ParseInt(cmdArgs[0], 10, 64)
		if err != nil || id <= 0 {
			return fail(fmt.Errorf("cluster %q is not a cluster id", cmdArgs[0]))
		}
		if _, err := st.GetCluster(ctx, id); err != nil {
			return fail(fmt.Errorf("cluster %d: %w", id, err))
		}
		m, err := New(Config{Dir: *dir, Store: st})
		if err != nil {
			return fail(err)
		}
		defer m.Close()
		if cmd == "unpin" {
			if err := m.Unpin(ctx, id, cmdArgs[1]); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "cluster %d: %s unpinned; its next use pins the highest accepted version\n", id, strings.ToUpper(cmdArgs[1]))
			return 0
		}
		pin, err := m.Pin(ctx, id, cmdArgs[1], cmdArgs[2])
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "cluster %d: %s pinned to %s%s\n", id, pin.Role, pin.Version, ruleNote(pin.Constraint))
		return 0
	}
	return 2
}

// tellManager asks a manager running on dataDir to rescan its plugins dir
// (SIGHUP) and says what happened.
func tellManager(dataDir string) string {
	pid, err := pidfile.Hangup(dataDir)
	switch {
	case err == nil:
		return fmt.Sprintf("told the running manager (pid %d) to rescan its plugins dir", pid)
	case errors.Is(err, pidfile.ErrNotRunning):
		return fmt.Sprintf("no running manager found for data dir %s (%v): a manager started later sees the change; restart a running one (or POST /api/plugins/rescan) if it uses another data dir", dataDir, err)
	default:
		return fmt.Sprintf("could not tell the manager to rescan (%v): restart it or POST /api/plugins/rescan", err)
	}
}

// openCLIStore opens the manager's database. Without --db and without a
// SQLite file in dataDir there is no database yet: nil, unless need.
func openCLIStore(dsn, dataDir string, need bool) (*store.Store, error) {
	if dsn == "" {
		path := filepath.Join(dataDir, "dorismanager.db")
		if _, err := os.Stat(path); err != nil {
			if need {
				return nil, fmt.Errorf("no database at %s: give --data-dir of the manager or --db", path)
			}
			return nil, nil // no database yet: no pins
		}
	}
	return store.Open(dsn, dataDir, nil)
}

func cliList(ctx context.Context, dir string, st *store.Store, stdout, stderr io.Writer, verifyAll bool) int {
	m, err := New(Config{Dir: dir, Store: st})
	if err != nil {
		fmt.Fprintf(stderr, "plugins: %v\n", err)
		return 1
	}
	defer m.Close()
	o, err := m.Overview(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "plugins: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if verifyAll {
		bad := len(o.Refused)
		for _, r := range o.Roles {
			for _, v := range r.Versions {
				p, err := m.lookup(r.Role, v.Version)
				if err == nil {
					err = handshakeAgrees(ctx, p.Path, p.SHA256, p.Info)
				}
				if err != nil {
					bad++
					fmt.Fprintf(tw, "REFUSED\t%s\t%s\n", v.File, err)
					continue
				}
				fmt.Fprintf(tw, "OK\t%s\t%s\n", v.File, v.SHA256)
			}
		}
		for _, r := range o.Refused {
			fmt.Fprintf(tw, "REFUSED\t%s\t%s\n", r.File, r.Reason)
		}
		_ = tw.Flush()
		if bad > 0 {
			fmt.Fprintf(stderr, "%d file(s) refused in %s\n", bad, dir)
			return 1
		}
		return 0
	}
	fmt.Fprintf(tw, "ROLE\tVERSION\tAPI\tSHA256\tFILE\n")
	for _, r := range o.Roles {
		for _, v := range r.Versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Role, v.Version, v.APIVersion, v.SHA256, v.File)
		}
	}
	_ = tw.Flush()
	if len(o.Refused) > 0 {
		fmt.Fprintf(stdout, "\nREFUSED\n")
		for _, r := range o.Refused {
			fmt.Fprintf(tw, "%s\t%s\n", r.File, r.Reason)
		}
		_ = tw.Flush()
	}
	if len(o.Clusters) > 0 {
		fmt.Fprintf(stdout, "\nCLUSTER\tROLE\tVERSION\n")
		for _, c := range o.Clusters {
			how := "pinned"
			switch {
			case !c.Pinned:
				how = "default"
			case c.Constraint != "":
				how = fmt.Sprintf("pinned by %q", c.Constraint)
			}
			line := fmt.Sprintf("%d %s\t%s\t%s (%s)", c.ClusterID, c.ClusterName, c.Role, c.Version, how)
			if c.Problem != "" {
				line += "  PROBLEM: " + c.Problem
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
	return 0
}

// handshakeAgrees starts a plugin file through the go-plugin handshake and
// checks that its Info over gRPC is what its describe said.
func handshakeAgrees(ctx context.Context, path, sha string, described sdk.Info) error {
	info, err := handshakeInfo(ctx, path, sha, handshakeTimeout)
	if err != nil {
		return err
	}
	if !sameInfo(info, described) {
		a, _ := json.Marshal(info)
		b, _ := json.Marshal(described)
		return fmt.Errorf("Info over gRPC %s differs from describe %s", a, b)
	}
	return nil
}

// sameInfo compares two Infos, an empty list or map equal to none.
func sameInfo(a, b sdk.Info) bool {
	return reflect.DeepEqual(pruned(a), pruned(b))
}

// pruned is an Info as generic JSON without empty values.
func pruned(i sdk.Info) any {
	raw, _ := json.Marshal(i)
	var v any
	_ = json.Unmarshal(raw, &v)
	return prune(v)
}

func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			e = prune(e)
			if e == nil {
				delete(t, k)
			} else {
				t[k] = e
			}
		}
		if len(t) == 0 {
			return nil
		}
		return t
	case []any:
		for i := range t {
			t[i] = prune(t[i])
		}
		if len(t) == 0 {
			return nil
		}
		return t
	case string:
		if t == "" {
			return nil
		}
	case bool:
		if !t {
			return nil
		}
	case float64:
		if t == 0 {
			return nil
		}
	}
	return v
}

// Install checks a plugin binary (its describe, then a start through the
// plugin handshake whose Info over gRPC must agree) and copies it into dir
// under its canonical name with its checksum file. Installing the same
// bytes again is a no-op; different bytes for an installed version are
// refused.
func Install(ctx context.Context, dir, file string) (Plugin, error) {
	info, err := describeFile(ctx, file, describeTimeout)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	if err := checkInfo(info); err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	sum, err := fileSHA256(file)
	if err != nil {
		return Plugin{}, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return Plugin{}, err
	}
	if err := handshakeAgrees(ctx, abs, sum, info); err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	name := CanonicalName(info)
	roleDir := filepath.Join(dir, strings.ToLower(info.Role))
	dest := filepath.Join(roleDir, name)
	if old, err := fileSHA256(dest); err == nil {
		if old != sum {
			return Plugin{}, fmt.Errorf("%s %s is already installed as %s with other content (sha256 %s); give the new build a new version", info.Role, info.Version, dest, old)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Plugin{}, err
	}
	if err := os.MkdirAll(roleDir, 0o755); err != nil {
		return Plugin{}, fmt.Errorf("create %s: %w", roleDir, err)
	}
	if err := copyFileAtomic(file, dest, 0o755); err != nil {
		return Plugin{}, err
	}
	if err := writeFileAtomic(dest+SumSuffix, sumFileContent(sum, name), 0o644); err != nil {
		return Plugin{}, err
	}
	p, err := verify(ctx, dest, strings.ToLower(info.Role), describeTimeout)
	if err != nil {
		return Plugin{}, fmt.Errorf("installed %s but it does not verify: %w", dest, err)
	}
	return p, nil
}

// Remove deletes an installed version and its checksum file, unless a
// cluster is pinned to it (ErrInUse). st may be nil (no pins).
func Remove(ctx context.Context, dir string, st *store.Store, role, version string) (string, error) {
	role = strings.ToUpper(role)
	if st != nil {
		pins, err := st.PinsOfVersion(ctx, role, version)
		if err != nil {
			return "", err
		}
		if len(pins) > 0 {
			ids := make([]string, len(pins))
			for i, p := range pins {
				ids[i] = fmt.Sprint(p.ClusterID)
			}
			return "", fmt.Errorf("%w: cluster(s) %s are pinned to %s %s; pin them to another version first", ErrInUse, strings.Join(ids, ", "), role, version)
		}
	}
	pattern := filepath.Join(dir, strings.ToLower(role), "doris-role-"+strings.ToLower(role)+"_v"+version+"_x*")
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return "", err
	}
	var removed []string
	for _, f := range matches {
		if strings.HasSuffix(f, SumSuffix) {
			continue
		}
		if err := os.Remove(f); err != nil {
			return "", err
		}
		if err := os.Remove(f + SumSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		removed = append(removed, f)
	}
	if len(removed) == 0 {
		return "", fmt.Errorf("%w: %s %s is not installed in %s", ErrNoPlugin, role, version, dir)
	}
	return strings.Join(removed, ", "), nil
}

func copyFileAtomic(src, dest string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".install-*")
	if err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy to %s: %w", dest, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

func writeFileAtomic(dest string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".install-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

func relTo(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil {
		return rel
	}
	return path
}
