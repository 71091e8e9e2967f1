package pluginhost

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/pidfile"
	"github.com/dorismanager/dorismanager/sdk"
)

// CLI is what the "dorismanager plugins" commands do; the command line
// (flags, arguments, exit codes) is cmd/dorismanager's. Pins are read from
// the manager's database: DB (a postgres:// URL) or else
// <DataDir>/dorismanager.db when it exists; trusted keys from
// <DataDir>/plugin-keys. Each method prints its result on Stdout (warnings
// on Stderr) and returns what went wrong.
type CLI struct {
	Dir            string // the plugins dir
	DataDir        string // the manager's data dir: pins, trusted keys, the pid of a running manager
	DB             string // the manager's database URL; empty: the SQLite file in DataDir
	Stdout, Stderr io.Writer
}

// List prints the accepted plugins, refused files (and why), the trusted
// keys' problems and every cluster's versions.
func (c CLI) List(ctx context.Context) error {
	return c.withStore(false, func(st *store.Store) error { return c.list(ctx, st, false) })
}

// Verify checks every file, starting each through the plugin handshake;
// an error when any is refused.
func (c CLI) Verify(ctx context.Context) error {
	return c.withStore(false, func(st *store.Store) error { return c.list(ctx, st, true) })
}

// Install checks file (signature, describe, handshake) and installs it
// with its checksum and signature under its canonical name; a running
// manager is told to rescan.
func (c CLI) Install(ctx context.Context, file string) error {
	p, err := Install(ctx, c.Dir, file, plugintrust.Load(c.DataDir))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "installed %s %s as %s (sha256 %s, signed by %s)\n", p.Role, p.Version, p.Path, p.SHA256, p.Signer)
	fmt.Fprintln(c.Stdout, tellManager(c.DataDir))
	fmt.Fprintf(c.Stdout, "clusters already using %s keep their version; pin one to use %s: dorismanager plugins pin CLUSTER %s %s\n",
		p.Role, p.Version, p.Role, p.Version)
	return nil
}

// Remove deletes a version no cluster is pinned to.
func (c CLI) Remove(ctx context.Context, role, version string) error {
	return c.withStore(false, func(st *store.Store) error {
		path, err := Remove(ctx, c.Dir, st, role, version)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "removed %s\n", path)
		fmt.Fprintln(c.Stdout, tellManager(c.DataDir))
		return nil
	})
}

// Pin pins a cluster's role to a version or rule (1.2.3, ~1.2, ">=1.2 <2").
func (c CLI) Pin(ctx context.Context, cluster, role, rule string) error {
	return c.withManager(ctx, cluster, func(m *Manager, id int64) error {
		pin, err := m.Pin(ctx, id, role, rule)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "cluster %d: %s pinned to %s%s (sha256 %s)\n", id, pin.Role, pin.Version, ruleNote(pin.Constraint), pin.SHA256)
		return nil
	})
}

// Unpin removes a cluster's pin of role.
func (c CLI) Unpin(ctx context.Context, cluster, role string) error {
	return c.withManager(ctx, cluster, func(m *Manager, id int64) error {
		if err := m.Unpin(ctx, id, role); err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "cluster %d: %s unpinned; its next use pins the highest accepted version\n", id, strings.ToUpper(role))
		return nil
	})
}

// withStore runs fn with the manager's database, nil when there is none
// yet unless need.
func (c CLI) withStore(need bool, fn func(*store.Store) error) error {
	st, err := openCLIStore(c.DB, c.DataDir, need)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	return fn(st)
}

// withManager runs fn with a Manager on the database and the cluster id,
// checked to exist.
func (c CLI) withManager(ctx context.Context, cluster string, fn func(*Manager, int64) error) error {
	return c.withStore(true, func(st *store.Store) error {
		id, err := strconv.ParseInt(cluster, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("cluster %q is not a cluster id", cluster)
		}
		if _, err := st.GetCluster(ctx, id); err != nil {
			return fmt.Errorf("cluster %d: %w", id, err)
		}
		m, err := New(Config{Dir: c.Dir, DataDir: c.DataDir, Store: st})
		if err != nil {
			return err
		}
		defer m.Close()
		return fn(m, id)
	})
}

// Trust trusts a signing key: a public key file (PEM) or its base64.
func (c CLI) Trust(key string) error {
	pub, err := plugintrust.ParsePublicKey(keyArg(key))
	if err != nil {
		return fmt.Errorf("%s: %w", trimArg(key), err)
	}
	k, isNew, err := plugintrust.Trust(c.DataDir, pub)
	if err != nil {
		return err
	}
	if !isNew {
		fmt.Fprintf(c.Stdout, "key %s is already trusted (%s)\n", k.Fingerprint, k.File)
		return nil
	}
	fmt.Fprintf(c.Stdout, "trusted key %s (%s)\n", k.Fingerprint, k.File)
	fmt.Fprintln(c.Stdout, tellManager(c.DataDir))
	return nil
}

// Untrust stops trusting a key: its fingerprint (SHA256:...), file or
// base64.
func (c CLI) Untrust(key string) error {
	k, err := plugintrust.Untrust(c.DataDir, string(keyArg(key)))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "no longer trusted: key %s (removed %s); plugins signed by it are refused from the next scan\n", k.Fingerprint, k.File)
	fmt.Fprintln(c.Stdout, tellManager(c.DataDir))
	return nil
}

// Keys prints the trusted keys.
func (c CLI) Keys() error {
	keys := plugintrust.Load(c.DataDir)
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "FINGERPRINT\tFILE\n")
	for _, k := range keys.List() {
		fmt.Fprintf(tw, "%s\t%s\n", k.Fingerprint, k.File)
	}
	_ = tw.Flush()
	if err := keys.Err(); err != nil {
		return fmt.Errorf("no key is trusted: %w", err)
	}
	for _, p := range keys.Problems() {
		fmt.Fprintf(c.Stderr, "skipped: %s\n", p)
	}
	if len(keys.List()) == 0 {
		fmt.Fprintf(c.Stdout, "no key is trusted in %s: every plugin is refused (dorismanager plugins trust PUBLIC-KEY)\n", keys.Dir())
	}
	return nil
}

// Keygen makes a signing key pair: file (private, 0600) and file.pub.
func (c CLI) Keygen(file string) error {
	pub, priv, err := plugintrust.GenerateKey()
	if err != nil {
		return err
	}
	if err := plugintrust.WriteKeyPair(file, pub, priv); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "wrote private key %s (0600; keep it secret) and public key %s.pub\n", file, file)
	fmt.Fprintf(c.Stdout, "fingerprint %s, public key %s\n", plugintrust.Fingerprint(pub), plugintrust.EncodePublicKey(pub))
	fmt.Fprintf(c.Stdout, "sign with: dorismanager plugins sign --key %s FILE; trust with: dorismanager plugins trust %s.pub\n", file, file)
	return nil
}

// Sign writes file's checksum file and its signature with the private key
// in keyFile.
func (c CLI) Sign(keyFile, file string) error {
	sumPath, fp, err := Sign(keyFile, file)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "signed %s with key %s: wrote %s and %s\n", file, fp, sumPath, sumPath+plugintrust.SigSuffix)
	return nil
}

// keyArg is the content of the file named by arg, or arg itself when no
// such file exists (a key or fingerprint given inline).
func keyArg(arg string) []byte {
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		if b, err := plugintrust.ReadBounded(arg); err == nil {
			return b
		}
	}
	return []byte(arg)
}

func trimArg(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Sign writes file's checksum file (sha256sum format, naming the file) and
// its signature with the private key in keyFile. It answers the checksum
// file's path and the key's fingerprint.
func Sign(keyFile, file string) (string, string, error) {
	priv, err := plugintrust.ReadPrivateKeyFile(keyFile)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", "", err
	}
	if !fi.Mode().IsRegular() {
		return "", "", fmt.Errorf("%s is not a regular file", file)
	}
	sha, err := fileSHA256(file)
	if err != nil {
		return "", "", err
	}
	sum := sumFileContent(sha, filepath.Base(file))
	sumPath := file + SumSuffix
	if err := writeFileAtomic(sumPath, sum, 0o644); err != nil {
		return "", "", fmt.Errorf("write %s: %w", sumPath, err)
	}
	if err := writeFileAtomic(sumPath+plugintrust.SigSuffix, plugintrust.Sign(priv, sum), 0o644); err != nil {
		return "", "", fmt.Errorf("write the signature: %w", err)
	}
	return sumPath, plugintrust.Fingerprint(priv.Public().(ed25519.PublicKey)), nil
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

// list prints the plugins; with verifyAll it starts every accepted file
// through the handshake and lists only verdicts.
func (c CLI) list(ctx context.Context, st *store.Store, verifyAll bool) error {
	m, err := New(Config{Dir: c.Dir, DataDir: c.DataDir, Store: st})
	if err != nil {
		return err
	}
	defer m.Close()
	o, err := m.Overview(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	if verifyAll {
		bad := len(o.Refused)
		for _, r := range o.Roles {
			for _, v := range r.Versions {
				p, err := m.lookup(r.Role, v.Version)
				if err == nil {
					err = handshakeAgrees(ctx, p.Exec, p.SHA256, p.Info)
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
			return fmt.Errorf("%d file(s) refused in %s", bad, c.Dir)
		}
		return nil
	}
	fmt.Fprintf(tw, "ROLE\tVERSION\tAPI\tSHA256\tSIGNER\tFILE\n")
	for _, r := range o.Roles {
		for _, v := range r.Versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Role, v.Version, v.APIVersion, v.SHA256, v.Signer, v.File)
		}
	}
	_ = tw.Flush()
	if len(o.TrustedKeys) == 0 {
		fmt.Fprintf(c.Stdout, "\nno key is trusted (dorismanager plugins trust PUBLIC-KEY): every plugin is refused\n")
	}
	for _, p := range o.KeyProblems {
		fmt.Fprintf(c.Stdout, "KEYS: %s\n", p)
	}
	if len(o.Refused) > 0 {
		fmt.Fprintf(c.Stdout, "\nREFUSED\n")
		for _, r := range o.Refused {
			fmt.Fprintf(tw, "%s\t%s\n", r.File, r.Reason)
		}
		_ = tw.Flush()
	}
	if len(o.Clusters) > 0 {
		fmt.Fprintf(tw, "\nCLUSTER\tROLE\tVERSION\tSHA256\n")
		for _, c := range o.Clusters {
			how := "pinned"
			switch {
			case !c.Pinned:
				how = "default"
			case c.Constraint != "":
				how = fmt.Sprintf("pinned by %q", c.Constraint)
			}
			line := fmt.Sprintf("%d %s\t%s\t%s (%s)\t%s", c.ClusterID, c.ClusterName, c.Role, c.Version, how, c.SHA256)
			if c.Problem != "" {
				line += "  PROBLEM: " + c.Problem
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
	return nil
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

// Install checks a plugin binary (its checksum file and signature beside
// it, by a key in keys; then its describe and a start through the plugin
// handshake whose Info over gRPC must agree) and copies it into dir under
// its canonical name with the checksum file and signature as they were
// verified. Installing the same bytes again is a no-op; different bytes
// for an installed version are refused.
func Install(ctx context.Context, dir, file string, keys *plugintrust.Keys) (Plugin, error) {
	signed, err := readSigned(file)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	if signed.name != "" && signed.name != filepath.Base(file) {
		return Plugin{}, fmt.Errorf("%s: checksum file %s names %q, not this file", file, signed.sumName, signed.name)
	}
	// What is checked, run and installed is a private copy: the file
	// given may sit where others can change it.
	private, err := os.MkdirTemp("", "dorismanager-install-")
	if err != nil {
		return Plugin{}, err
	}
	defer os.RemoveAll(private)
	exe, sum, err := stage(file, private)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	signer, err := signed.check(filepath.Base(file), sum, keys)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	info, err := describeFile(ctx, exe, describeTimeout)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	if err := checkInfo(info); err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	if err := handshakeAgrees(ctx, exe, sum, info); err != nil {
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
	if err := copyFileAtomic(exe, dest, 0o755); err != nil {
		return Plugin{}, err
	}
	if err := writeFileAtomic(dest+SumSuffix, signed.sum, 0o644); err != nil {
		return Plugin{}, err
	}
	if err := writeFileAtomic(dest+SigSuffix, signed.sig, 0o644); err != nil {
		return Plugin{}, err
	}
	p, err := verify(ctx, dest, strings.ToLower(info.Role), scanOptions{describeTimeout: describeTimeout, keys: keys, execDir: private})
	if err != nil {
		return Plugin{}, fmt.Errorf("installed %s but it does not verify: %w", dest, err)
	}
	if p.Signer != signer.Fingerprint {
		return Plugin{}, fmt.Errorf("installed %s but it verifies as signed by %s, not %s", dest, p.Signer, signer.Fingerprint)
	}
	p.Exec = "" // the private copy goes with this call
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
		if strings.HasSuffix(f, SumSuffix) || strings.HasSuffix(f, SigSuffix) {
			continue
		}
		if err := os.Remove(f); err != nil {
			return "", err
		}
		for _, side := range []string{f + SumSuffix, f + SigSuffix} {
			if err := os.Remove(side); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
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
