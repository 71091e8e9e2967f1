package pluginhost

import (
	"context"
	"crypto/ed25519"
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

	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/pidfile"
	"github.com/dorismanager/dorismanager/sdk"
)

const cliUsage = `usage: dorismanager plugins [flags] COMMAND
commands:
  list                     accepted plugins, refused files (and why), trusted keys,
                           every cluster's versions
  verify                   check every file, starting each through the plugin handshake;
                           exit 1 if any is refused
  install FILE             check FILE (signature, describe, handshake) and install it with
                           its checksum and signature under its canonical name; a running
                           manager is told to rescan
  remove ROLE VERSION      remove a version no cluster is pinned to
  pin CLUSTER ROLE RULE    pin a cluster's role to a version or rule (1.2.3, ~1.2, ">=1.2 <2");
                           pinning again accepts a new build under the pinned version
  unpin CLUSTER ROLE       remove a pin (the next use pins the highest version)
  trust KEY                trust a signing key: a public key file (PEM) or its base64;
                           kept in <data-dir>/plugin-keys/
  untrust KEY              stop trusting a key: its fingerprint (SHA256:...), file or base64
  keys                     the trusted keys
  sign --key PRIVATE FILE  write FILE_SHA256SUM and its signature FILE_SHA256SUM.sig
  keygen FILE              make a signing key pair: FILE (private, 0600) and FILE.pub
flags:
`

// CLI runs "dorismanager plugins ..." and returns the exit code. Pins are
// read from the manager's database: --db (a postgres:// URL) or else
// <data-dir>/dorismanager.db when it exists; trusted keys from
// <data-dir>/plugin-keys.
func CLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("plugins-dir", "bin/plugins", "plugins directory")
	dataDir := fs.String("data-dir", "data", "the manager's data directory (pins, trusted keys, and the pid of a running manager)")
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
	switch cmd {
	case "trust", "untrust", "keys", "keygen":
		return keysCLI(cmd, cmdArgs, *dataDir, stdout, stderr, fs.Usage)
	case "sign":
		return signCLI(cmdArgs, stdout, stderr)
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
		return cliList(ctx, *dir, *dataDir, st, stdout, stderr, false)
	case "verify":
		return cliList(ctx, *dir, *dataDir, st, stdout, stderr, true)
	case "install":
		p, err := Install(ctx, *dir, cmdArgs[0], plugintrust.Load(*dataDir))
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "installed %s %s as %s (sha256 %s, signed by %s)\n", p.Role, p.Version, p.Path, p.SHA256, p.Signer)
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
		m, err := New(Config{Dir: *dir, DataDir: *dataDir, Store: st})
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
		fmt.Fprintf(stdout, "cluster %d: %s pinned to %s%s (sha256 %s)\n", id, pin.Role, pin.Version, ruleNote(pin.Constraint), pin.SHA256)
		return 0
	}
	return 2
}

// keysCLI runs trust, untrust, keys and keygen.
func keysCLI(cmd string, args []string, dataDir string, stdout, stderr io.Writer, usage func()) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "plugins %s: %v\n", cmd, err)
		return 1
	}
	want := map[string]int{"trust": 1, "untrust": 1, "keys": 0, "keygen": 1}[cmd]
	if len(args) != want {
		usage()
		return 2
	}
	switch cmd {
	case "trust":
		pub, err := plugintrust.ParsePublicKey(keyArg(args[0]))
		if err != nil {
			return fail(fmt.Errorf("%s: %w", trimArg(args[0]), err))
		}
		k, isNew, err := plugintrust.Trust(dataDir, pub)
		if err != nil {
			return fail(err)
		}
		if !isNew {
			fmt.Fprintf(stdout, "key %s is already trusted (%s)\n", k.Fingerprint, k.File)
			return 0
		}
		fmt.Fprintf(stdout, "trusted key %s (%s)\n", k.Fingerprint, k.File)
		fmt.Fprintln(stdout, tellManager(dataDir))
	case "untrust":
		k, err := plugintrust.Untrust(dataDir, string(keyArg(args[0])))
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "no longer trusted: key %s (removed %s); plugins signed by it are refused from the next scan\n", k.Fingerprint, k.File)
		fmt.Fprintln(stdout, tellManager(dataDir))
	case "keys":
		keys := plugintrust.Load(dataDir)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "FINGERPRINT\tFILE\n")
		for _, k := range keys.List() {
			fmt.Fprintf(tw, "%s\t%s\n", k.Fingerprint, k.File)
		}
		_ = tw.Flush()
		if err := keys.Err(); err != nil {
			return fail(fmt.Errorf("no key is trusted: %w", err))
		}
		for _, p := range keys.Problems() {
			fmt.Fprintf(stderr, "skipped: %s\n", p)
		}
		if len(keys.List()) == 0 {
			fmt.Fprintf(stdout, "no key is trusted in %s: every plugin is refused (dorismanager plugins trust PUBLIC-KEY)\n", keys.Dir())
		}
	case "keygen":
		pub, priv, err := plugintrust.GenerateKey()
		if err != nil {
			return fail(err)
		}
		if err := plugintrust.WriteKeyPair(args[0], pub, priv); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "wrote private key %s (0600; keep it secret) and public key %s.pub\n", args[0], args[0])
		fmt.Fprintf(stdout, "fingerprint %s, public key %s\n", plugintrust.Fingerprint(pub), plugintrust.EncodePublicKey(pub))
		fmt.Fprintf(stdout, "sign with: dorismanager plugins sign --key %s FILE; trust with: dorismanager plugins trust %s.pub\n", args[0], args[0])
	}
	return 0
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

// signCLI runs "sign --key PRIVATE FILE".
func signCLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugins sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "the private key file (PEM, from plugins keygen; mode 0600)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dorismanager plugins sign --key PRIVATE-KEY FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key == "" || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	sumPath, fp, err := Sign(*key, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "plugins sign: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "signed %s with key %s: wrote %s and %s\n", fs.Arg(0), fp, sumPath, sumPath+plugintrust.SigSuffix)
	return 0
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

func cliList(ctx context.Context, dir, dataDir string, st *store.Store, stdout, stderr io.Writer, verifyAll bool) int {
	m, err := New(Config{Dir: dir, DataDir: dataDir, Store: st})
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
			fmt.Fprintf(stderr, "%d file(s) refused in %s\n", bad, dir)
			return 1
		}
		return 0
	}
	fmt.Fprintf(tw, "ROLE\tVERSION\tAPI\tSHA256\tSIGNER\tFILE\n")
	for _, r := range o.Roles {
		for _, v := range r.Versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Role, v.Version, v.APIVersion, v.SHA256, v.Signer, v.File)
		}
	}
	_ = tw.Flush()
	if len(o.TrustedKeys) == 0 {
		fmt.Fprintf(stdout, "\nno key is trusted (dorismanager plugins trust PUBLIC-KEY): every plugin is refused\n")
	}
	for _, p := range o.KeyProblems {
		fmt.Fprintf(stdout, "KEYS: %s\n", p)
	}
	if len(o.Refused) > 0 {
		fmt.Fprintf(stdout, "\nREFUSED\n")
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
