package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// otherKey writes a key pair nobody trusts and returns its private key file.
func otherKey(t *testing.T) string {
	t.Helper()
	pub, priv, err := plugintrust.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-key")
	if err := plugintrust.WriteKeyPair(path, pub, priv); err != nil {
		t.Fatal(err)
	}
	return path
}

func refusedFor(t *testing.T, l Listing, name string) string {
	t.Helper()
	for _, r := range l.Refused {
		if filepath.Base(r.Path) == name {
			return r.Reason
		}
	}
	for _, p := range l.Plugins {
		if filepath.Base(p.Path) == name {
			t.Errorf("%s was accepted (signer %s)", name, p.Signer)
			return ""
		}
	}
	t.Errorf("%s is neither accepted nor refused", name)
	return ""
}

// A plugin file is accepted only when its checksum file is signed by a
// trusted key, and nothing of it runs before that is checked.
func TestPluginTrust(t *testing.T) {
	dir := t.TempDir()
	good := place(t, dir, "1.0.0", fileName("1.0.0", 2, 0), "")

	// A planted program with a self-made checksum file: it would leave a
	// mark if it were run.
	mark := filepath.Join(t.TempDir(), "ran")
	planted := filepath.Join(dir, "test", fileName("9.9.9", 2, 0))
	os.WriteFile(planted, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755)
	sha, _ := fileSHA256(planted)
	os.WriteFile(planted+SumSuffix, sumFileContent(sha, filepath.Base(planted)), 0o644)

	// Signed by a key nobody trusts.
	untrusted := place(t, dir, "1.1.0", fileName("1.1.0", 2, 0), "")
	other := otherKey(t)
	signSum(t, untrusted, other)
	otherPub, _ := os.ReadFile(other + ".pub")
	pub, _ := plugintrust.ParsePublicKey(otherPub)

	// A trusted signature over the old checksum file, with another binary
	// and a checksum file rewritten for it.
	swapped := place(t, dir, "1.0.0", fileName("1.2.0", 2, 0), "")
	os.WriteFile(swapped, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755)
	sha, _ = fileSHA256(swapped)
	os.WriteFile(swapped+SumSuffix, sumFileContent(sha, filepath.Base(swapped)), 0o644)

	// A signature file that does not parse.
	garbled := place(t, dir, "1.0.0", fileName("1.3.0", 2, 0), "")
	os.WriteFile(garbled+SigSuffix, []byte("ed25519 not-a-key\n"), 0o644)

	m := newManager(t, Config{Dir: dir})
	l := m.List()
	for name, want := range map[string]string{
		filepath.Base(planted):   "unsigned: no signature file " + filepath.Base(planted) + SigSuffix,
		filepath.Base(untrusted): "signed by an untrusted key " + plugintrust.Fingerprint(pub),
		filepath.Base(swapped):   "bad signature: it does not match the checksum file",
		filepath.Base(garbled):   "bad signature: signature file has 2 fields",
	} {
		if got := refusedFor(t, l, name); !strings.HasPrefix(got, want) {
			t.Errorf("%s refused for %q, want %q", name, got, want)
		}
	}
	if len(l.Plugins) != 1 || l.Plugins[0].Path != good || l.Plugins[0].Signer == "" {
		t.Errorf("accepted %+v, want only %s with its signer", l.Plugins, good)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("a refused file was run")
	}
	// The reasons are what /api/plugins and plugins list show.
	o, err := m.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Refused) != 4 || len(o.TrustedKeys) != 1 || o.Roles[0].Versions[0].Signer != o.TrustedKeys[0].Fingerprint {
		t.Errorf("overview: refused %+v, keys %+v, roles %+v", o.Refused, o.TrustedKeys, o.Roles)
	}

	// Without trusted keys nothing is accepted; with the other key trusted
	// too, its plugin is.
	if l := newManager(t, Config{Dir: dir, DataDir: t.TempDir()}).List(); len(l.Plugins) != 0 ||
		!strings.Contains(refusedFor(t, l, filepath.Base(good)), "no key is trusted yet") {
		t.Errorf("no trusted key: %+v", l)
	}
	both := t.TempDir()
	trustTestKey(t, both)
	if _, _, err := plugintrust.Trust(both, pub); err != nil {
		t.Fatal(err)
	}
	if l := newManager(t, Config{Dir: dir, DataDir: both}).List(); len(l.Plugins) != 2 {
		t.Errorf("both keys trusted: accepted %+v", l.Plugins)
	}
	// Untrusting a key refuses its plugins at the next scan.
	m2 := newManager(t, Config{Dir: dir, DataDir: both})
	if _, err := plugintrust.Untrust(both, plugintrust.Fingerprint(pub)); err != nil {
		t.Fatal(err)
	}
	if err := m2.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := refusedFor(t, m2.List(), filepath.Base(untrusted)); !strings.HasPrefix(got, "signed by an untrusted key") {
		t.Errorf("after untrust: %q", got)
	}
	// Trusted keys others could change trust nothing.
	os.Chmod(plugintrust.KeysDir(both), 0o777)
	if err := m2.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := refusedFor(t, m2.List(), filepath.Base(good)); !strings.Contains(got, "no key is trusted") || !strings.Contains(got, "may be changed by group or others") {
		t.Errorf("writable keys folder: %q", got)
	}
}

// A cluster pinned to a version refuses another binary under that version,
// even one signed by a trusted key, until an admin pins it again; other
// clusters and rescans change nothing of that.
func TestPinnedBinaryReplaced(t *testing.T) {
	st := testStore(t, "")
	c1, c2 := newCluster(t, st, "c1"), newCluster(t, st, "c2")
	dir := t.TempDir()
	place(t, dir, "1.0.0", fileName("1.0.0", 2, 0), "")
	m := newManager(t, Config{Dir: dir, Store: st})
	ctx := context.Background()
	first, err := m.Resolve(ctx, c1.ID, "TEST")
	if err != nil {
		t.Fatal(err)
	}
	if pin, _ := st.GetPin(ctx, c1.ID, "TEST"); pin.SHA256 != first.SHA256 || pin.Version != "1.0.0" {
		t.Fatalf("first use pinned %+v, want 1.0.0 as sha256 %s", pin, first.SHA256)
	}

	// Another build under the same version, re-signed with the trusted key.
	b, _ := os.ReadFile(bins["1.0.0"])
	rebuilt := filepath.Join(t.TempDir(), "rebuilt")
	os.WriteFile(rebuilt, append(b, 0), 0o755)
	p := filepath.Join(dir, "test", fileName("1.0.0", 2, 0))
	if err := copyFileAtomic(rebuilt, p, 0o755); err != nil {
		t.Fatal(err)
	}
	newSum, _ := fileSHA256(p)
	os.WriteFile(p+SumSuffix, sumFileContent(newSum, filepath.Base(p)), 0o644)
	signSum(t, p, testKey)
	if err := m.Rescan(ctx); err != nil {
		t.Fatal(err)
	}
	if l := m.List(); len(l.Plugins) != 1 || l.Plugins[0].SHA256 != newSum {
		t.Fatalf("the re-signed build is not accepted: %+v", l)
	}
	_, err = m.Role(ctx, c1.ID, "TEST", nil)
	if !errors.Is(err, ErrBinaryChanged) {
		t.Fatalf("pinned cluster got %v, want ErrBinaryChanged", err)
	}
	for _, want := range []string{first.SHA256, newSum, fmt.Sprintf("plugins pin %d TEST 1.0.0", c1.ID)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if cat, err := m.Catalogue(ctx, c1.ID); err != nil || len(cat) != 0 {
		t.Errorf("catalogue of the pinned cluster: %+v %v, want no TEST role", cat, err)
	}
	o, err := m.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range o.Clusters {
		if cp.ClusterID == c1.ID && (!strings.Contains(cp.Problem, "another binary under the pinned version") || cp.SHA256 != first.SHA256) {
			t.Errorf("overview of the pinned cluster: %+v", cp)
		}
	}
	// A cluster that never used the role takes the build there is.
	if r, err := m.Resolve(ctx, c2.ID, "TEST"); err != nil || r.SHA256 != newSum {
		t.Errorf("new cluster: %+v %v", r, err)
	}
	// The admin accepts the new build for c1 by pinning again.
	if pin, err := m.Pin(ctx, c1.ID, "TEST", "1.0.0"); err != nil || pin.SHA256 != newSum {
		t.Fatalf("pin again: %+v %v", pin, err)
	}
	r, err := m.Role(ctx, c1.ID, "TEST", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Precheck(ctx, sdktest.NewFakeHost(), testRequest(1)); err != nil || res.Facts["version"] != "1.0.0" {
		t.Errorf("after pinning again: %+v %v", res, err)
	}
}

// A pin recorded before pins had a hash gets the hash of the binary its
// cluster uses at the next use, and is held to it from then on.
func TestOldPinGetsHash(t *testing.T) {
	st := testStore(t, "")
	c := newCluster(t, st, "c1")
	dir := twoVersions(t)
	ctx := context.Background()
	if err := st.SetPin(ctx, store.PluginPin{ClusterID: c.ID, Role: "TEST", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, Config{Dir: dir, Store: st})
	if p, err := m.Resolve(ctx, c.ID, "TEST"); err != nil || p.Version != "1.0.0" {
		t.Fatalf("resolve: %+v %v", p, err)
	}
	if pin, _ := st.GetPin(ctx, c.ID, "TEST"); pin.SHA256 != fileSum(t, dir, "1.0.0") {
		t.Errorf("old pin after use: %+v, want sha256 %s", pin, fileSum(t, dir, "1.0.0"))
	}
}

// keygen, sign, trust, keys and untrust from the command line; install
// refuses an unsigned file naming the missing signature.
func TestCLIKeysAndSign(t *testing.T) {
	dir, dataDir, work := t.TempDir(), t.TempDir(), t.TempDir()
	ctx := context.Background()
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := runCLI(ctx, t, CLI{Dir: dir, DataDir: dataDir, Stdout: &out, Stderr: &out}, args...)
		return code, out.String()
	}
	key := filepath.Join(work, "key")
	code, out := run("keygen", key)
	if code != 0 || !strings.Contains(out, "fingerprint SHA256:") {
		t.Fatalf("keygen: %d %s", code, out)
	}
	priv, _ := os.ReadFile(key)
	if strings.Contains(out, string(priv)) || strings.Contains(out, "PRIVATE") {
		t.Errorf("keygen printed the private key:\n%s", out)
	}
	fp := strings.TrimSuffix(strings.Fields(out[strings.Index(out, "fingerprint ")+len("fingerprint "):])[0], ",")
	if code, out := run("keygen", key); code != 1 || !strings.Contains(out, "never overwritten") {
		t.Errorf("keygen over a key: %d %s", code, out)
	}

	plugin := filepath.Join(work, "doris-role-test")
	if err := copyFileAtomic(bins["1.0.0"], plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out := run("install", plugin); code != 1 || !strings.Contains(out, "unsigned: no checksum file doris-role-test_SHA256SUM nor signature") {
		t.Errorf("install without checksum file: %d %s", code, out)
	}
	sha, _ := fileSHA256(plugin)
	os.WriteFile(plugin+SumSuffix, sumFileContent(sha, filepath.Base(plugin)), 0o644)
	if code, out := run("install", plugin); code != 1 || !strings.Contains(out, "unsigned: no signature file doris-role-test_SHA256SUM.sig") {
		t.Errorf("install unsigned: %d %s", code, out)
	}
	os.Chmod(key, 0o640)
	if code, out := run("sign", "--key", key, plugin); code != 1 || !strings.Contains(out, "chmod 600") {
		t.Errorf("sign with a readable key: %d %s", code, out)
	}
	os.Chmod(key, 0o600)
	if code, out := run("sign", "--key", key, plugin); code != 0 || !strings.Contains(out, "with key "+fp) {
		t.Fatalf("sign: %d %s", code, out)
	}
	if code, out := run("install", plugin); code != 1 || !strings.Contains(out, "signed by an untrusted key "+fp) {
		t.Errorf("install before trust: %d %s", code, out)
	}
	if code, out := run("keys"); code != 0 || !strings.Contains(out, "no key is trusted") {
		t.Errorf("keys before trust: %d %s", code, out)
	}
	if code, out := run("trust", key+".pub"); code != 0 || !strings.Contains(out, "trusted key "+fp) {
		t.Fatalf("trust: %d %s", code, out)
	}
	if code, out := run("trust", key); code != 1 || !strings.Contains(out, "a private key is never trusted") {
		t.Errorf("trust of a private key: %d %s", code, out)
	}
	if code, out := run("keys"); code != 0 || !strings.Contains(out, fp) {
		t.Errorf("keys: %d %s", code, out)
	}
	if code, out := run("install", plugin); code != 0 || !strings.Contains(out, "signed by "+fp) {
		t.Fatalf("install signed: %d %s", code, out)
	}
	if code, out := run("list"); code != 0 || !strings.Contains(out, fp) {
		t.Errorf("list: %d %s", code, out)
	}
	if code, out := run("untrust", fp); code != 0 || !strings.Contains(out, "no longer trusted: key "+fp) {
		t.Errorf("untrust: %d %s", code, out)
	}
	if code, out := run("list"); code != 0 || !strings.Contains(out, "signed by an untrusted key "+fp) {
		t.Errorf("list after untrust: %d %s", code, out)
	}
}

// What runs is the copy that was checked: a plugin file replaced in the
// plugins dir after the scan is not run (its next scan refuses it), and
// the copies are private.
func TestRunsTheCheckedCopy(t *testing.T) {
	dir := t.TempDir()
	p := place(t, dir, "1.0.0", fileName("1.0.0", 2, 0), "")
	execDir := filepath.Join(t.TempDir(), "exec")
	os.MkdirAll(execDir, 0o755)
	os.WriteFile(filepath.Join(execDir, "stale"), []byte("x"), 0o644)
	m := newManager(t, Config{Dir: dir, ExecDir: execDir})
	if fi, err := os.Stat(execDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("exec dir mode %v %v, want 0700", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(execDir, "stale")); !os.IsNotExist(err) {
		t.Errorf("a stale file in the exec dir was kept: %v", err)
	}
	mark := filepath.Join(t.TempDir(), "ran")
	tmp := p + ".new"
	os.WriteFile(tmp, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	res, err := testRole(t, m, 1, nil).Precheck(context.Background(), sdktest.NewFakeHost(), testRequest(1))
	if err != nil || res.Facts["version"] != "1.0.0" {
		t.Fatalf("call after the file was replaced: %+v %v", res, err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the replaced file was run")
	}
	if err := m.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := refusedFor(t, m.List(), filepath.Base(p)); !strings.HasPrefix(got, "checksum mismatch") {
		t.Errorf("replaced file after rescan: %q", got)
	}
	// Only the copies of accepted files are kept.
	if entries, _ := os.ReadDir(execDir); len(entries) != 0 {
		t.Errorf("exec dir after the rescan holds %v", entries)
	}
}
