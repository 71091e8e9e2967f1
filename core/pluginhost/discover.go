// Package pluginhost discovers, verifies, pins and runs role plugins, and
// serves each call's sdk.Host to them.
//
// A plugin lives in <dir>/<role>/doris-role-<role>_v<semver>_x<major>.<minor>_<os>_<arch>
// next to a <name>_SHA256SUM file in sha256sum format and its signature
// <name>_SHA256SUM.sig (core/plugintrust). It is accepted only if the
// checksum matches, the signature is by a key the admin trusts, its
// "describe" output agrees with its name, and its API major is the
// manager's (sdk.APIMajor). Nothing of a file is run before its signature
// is checked, and what runs is a private copy of the bytes that were
// checked (the plugins dir may be writable by others than root).
package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/sdk"
)

// SumSuffix ends the name of a plugin's checksum file.
const SumSuffix = "_SHA256SUM"

// SigSuffix ends the name of the signature of a plugin's checksum file.
const SigSuffix = SumSuffix + plugintrust.SigSuffix

// describeTimeout bounds one run of "<plugin> describe" outside a scan
// (install); a scan uses Config.DescribeTimeout.
const describeTimeout = 15 * time.Second

// handshakeTimeout bounds the start and the Info call of the handshake
// "plugins install" and "plugins verify" make.
const handshakeTimeout = 15 * time.Second

var nameRe = regexp.MustCompile(`^doris-role-([a-z][a-z0-9]*)_v(` + semverPattern + `)_x(\d+)\.(\d+)_([a-z0-9]+)_([a-z0-9]+)$`)

// Plugin is an accepted plugin binary.
type Plugin struct {
	Role     string `json:"role"`    // upper case, as in sdk.Info: FE, BE, BROKER
	Version  string `json:"version"` // semver without "v"
	APIMajor int    `json:"apiMajor"`
	APIMinor int    `json:"apiMinor"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256"` // hex
	// Exec is the private copy of the checked bytes that is run (see
	// Config.ExecDir).
	Exec   string   `json:"-"`
	Signer string   `json:"signer"` // fingerprint of the trusted key that signed it
	Info   sdk.Info `json:"info"`
}

// File is the plugin's path relative to the plugins dir.
func (p Plugin) File(dir string) string {
	if rel, err := filepath.Rel(dir, p.Path); err == nil {
		return rel
	}
	return p.Path
}

// Refused is a file in the plugins dir that is not used, and why. Role and
// Version are what its name says, when it has the canonical form.
type Refused struct {
	Path    string `json:"path"`
	Reason  string `json:"reason"`
	Role    string `json:"role,omitempty"`
	Version string `json:"version,omitempty"`
}

func (r Refused) Error() string { return r.Path + ": " + r.Reason }

// CanonicalName is the file name a plugin with this Info must have on this
// platform.
func CanonicalName(info sdk.Info) string {
	return fmt.Sprintf("doris-role-%s_v%s_x%d.%d_%s_%s", strings.ToLower(info.Role), info.Version,
		info.APIMajor, info.APIMinor, runtime.GOOS, runtime.GOARCH)
}

// scanOptions tune a scan.
type scanOptions struct {
	describeTimeout time.Duration     // bounds one "describe"
	parallel        int               // files checked at once
	keys            *plugintrust.Keys // the trusted keys (nil: none)
	execDir         string            // where the checked copies go (private)
}

// maxPluginBytes bounds a plugin file: each is copied before it is checked.
const maxPluginBytes = 1 << 30

// scan looks at every file under dir/<role>/ and sorts it into accepted
// plugins (per upper-case role, highest version first) and refused files.
// Files are checked in parallel (bounded), each "describe" with its own
// timeout, so one hanging binary does not stall the others. A missing dir
// is empty, not an error.
func scan(ctx context.Context, dir string, opt scanOptions) (map[string][]Plugin, []Refused, error) {
	// Absolute paths: plugins are run with their own directory as working
	// directory.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("plugins dir: %w", err)
	}
	roleDirs, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return map[string][]Plugin{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read plugins dir: %w", err)
	}
	type file struct{ path, roleDir string }
	var files []file
	for _, rd := range roleDirs {
		if !rd.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, rd.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("read plugins dir: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasSuffix(e.Name(), SumSuffix) || strings.HasSuffix(e.Name(), SigSuffix) || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			files = append(files, file{filepath.Join(dir, rd.Name(), e.Name()), rd.Name()})
		}
	}
	if opt.parallel < 1 {
		opt.parallel = 1
	}
	plugins := make([]Plugin, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, opt.parallel)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			plugins[i], errs[i] = verify(ctx, f.path, f.roleDir, opt)
		}()
	}
	wg.Wait()
	accepted := map[string][]Plugin{}
	var refused []Refused
	for i, f := range files {
		if errs[i] != nil {
			refused = append(refused, newRefused(f.path, errs[i].Error()))
			continue
		}
		accepted[plugins[i].Role] = append(accepted[plugins[i].Role], plugins[i])
	}
	for role := range accepted {
		vs := accepted[role]
		sort.Slice(vs, func(i, j int) bool { return compareSemver(vs[i].Version, vs[j].Version) > 0 })
	}
	sort.Slice(refused, func(i, j int) bool { return refused[i].Path < refused[j].Path })
	return accepted, refused, nil
}

// newRefused records a refused file, with the role and version its name
// gives when it has the canonical form.
func newRefused(path, reason string) Refused {
	r := Refused{Path: path, Reason: reason}
	if m := nameRe.FindStringSubmatch(filepath.Base(path)); m != nil {
		r.Role, r.Version = strings.ToUpper(m[1]), m[2]
	}
	return r
}

// verify checks one plugin file; roleDir is the name of its directory ("" to
// skip that check). The error says what is wrong with the file.
func verify(ctx context.Context, path, roleDir string, opt scanOptions) (_ Plugin, err error) {
	base := filepath.Base(path)
	m := nameRe.FindStringSubmatch(base)
	if m == nil {
		return Plugin{}, fmt.Errorf("name is not doris-role-<role>_v<semver>_x<apiMajor>.<apiMinor>_<os>_<arch>")
	}
	role, version, goos, goarch := m[1], m[2], m[len(m)-2], m[len(m)-1]
	major, _ := strconv.Atoi(m[len(m)-4])
	minor, _ := strconv.Atoi(m[len(m)-3])
	if roleDir != "" && role != roleDir {
		return Plugin{}, fmt.Errorf("role %q in the name does not match its directory %q", role, roleDir)
	}
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		return Plugin{}, fmt.Errorf("built for %s/%s, this manager runs on %s/%s", goos, goarch, runtime.GOOS, runtime.GOARCH)
	}
	if major != sdk.APIMajor {
		return Plugin{}, fmt.Errorf("speaks plugin API %d.%d, this manager speaks API %d.x", major, minor, sdk.APIMajor)
	}
	signed, err := readSigned(path)
	if err != nil {
		return Plugin{}, err
	}
	exe, sum, err := stage(path, opt.execDir)
	if err != nil {
		return Plugin{}, err
	}
	defer func() {
		if err != nil {
			os.Remove(exe)
		}
	}()
	signer, err := signed.check(base, sum, opt.keys)
	if err != nil {
		return Plugin{}, err
	}
	// Content-addressed: a file that changes later is another copy.
	final := filepath.Join(opt.execDir, sum+"-"+base)
	if err := os.Rename(exe, final); err != nil {
		return Plugin{}, fmt.Errorf("keep the checked copy: %w", err)
	}
	exe = final
	info, err := describeFile(ctx, exe, opt.describeTimeout)
	if err != nil {
		return Plugin{}, err
	}
	if err := checkInfo(info); err != nil {
		return Plugin{}, err
	}
	var diffs []string
	if info.Role != strings.ToUpper(role) {
		diffs = append(diffs, fmt.Sprintf("role %q (name says %q)", info.Role, strings.ToUpper(role)))
	}
	if info.Version != version {
		diffs = append(diffs, fmt.Sprintf("version %q (name says %q)", info.Version, version))
	}
	if info.APIMajor != major || info.APIMinor != minor {
		diffs = append(diffs, fmt.Sprintf("API %d.%d (name says %d.%d)", info.APIMajor, info.APIMinor, major, minor))
	}
	if len(diffs) > 0 {
		return Plugin{}, fmt.Errorf("describe disagrees with the file name: %s", strings.Join(diffs, ", "))
	}
	return Plugin{Role: info.Role, Version: version, APIMajor: major, APIMinor: minor, Path: path, SHA256: sum, Exec: exe, Signer: signer.Fingerprint, Info: info}, nil
}

// signedSum is a plugin's checksum file and signature as read once: what
// is verified is what is installed.
type signedSum struct {
	sumName string // base name of the checksum file
	sum     []byte // the checksum file's bytes
	sig     []byte // the signature file's bytes; nil when there is none
	sha     string // the hex SHA-256 the checksum file gives
	name    string // the file name it gives ("" for none)
}

// readSigned reads the checksum file and signature beside a plugin file.
func readSigned(path string) (signedSum, error) {
	s := signedSum{sumName: filepath.Base(path + SumSuffix)}
	raw, err := plugintrust.ReadBounded(path + SumSuffix)
	if os.IsNotExist(err) {
		return s, fmt.Errorf("%s: no checksum file %s nor signature (sign it: dorismanager plugins sign --key KEY FILE)", plugintrust.ErrUnsigned, s.sumName)
	}
	if err != nil {
		return s, fmt.Errorf("read checksum file: %w", err)
	}
	s.sum = raw
	if s.sha, s.name, err = parseSumFile(raw); err != nil {
		return s, fmt.Errorf("checksum file %s: %w", s.sumName, err)
	}
	sig, err := plugintrust.ReadBounded(path + SigSuffix)
	switch {
	case err == nil:
		s.sig = sig
	case !os.IsNotExist(err):
		return s, fmt.Errorf("read signature: %w", err)
	}
	return s, nil
}

// check compares a plugin file's SHA-256 (got) with the checksum and the
// checksum file with its signature, and returns the trusted key that
// signed it. The checksum file may name the file (base), or the
// non-canonical name it was signed under before "plugins install" gave it
// its canonical name.
func (s signedSum) check(base, got string, keys *plugintrust.Keys) (plugintrust.Key, error) {
	if s.name != "" && s.name != base && nameRe.MatchString(s.name) {
		return plugintrust.Key{}, fmt.Errorf("checksum file %s names %q, not this file", s.sumName, s.name)
	}
	if got != s.sha {
		return plugintrust.Key{}, fmt.Errorf("checksum mismatch: file has sha256 %s, %s says %s", got, s.sumName, s.sha)
	}
	k, err := keys.Verify(s.sum, s.sig)
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, plugintrust.ErrUnsigned):
		return k, fmt.Errorf("%w: no signature file %s (sign it: dorismanager plugins sign --key KEY FILE)", plugintrust.ErrUnsigned, s.sumName+plugintrust.SigSuffix)
	case errors.Is(err, plugintrust.ErrBadSignature):
		return k, fmt.Errorf("%w (%s)", err, s.sumName+plugintrust.SigSuffix)
	}
	return k, err
}

// parseSumFile reads the first line of sha256sum output: "<64 hex>  <name>"
// ("*<name>" in binary mode); the name may be absent.
func parseSumFile(raw []byte) (sum, name string, err error) {
	line, _, _ := bufio.NewReader(bytes.NewReader(raw)).ReadLine()
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return "", "", fmt.Errorf("is empty")
	}
	sum = strings.ToLower(fields[0])
	if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
		return "", "", fmt.Errorf("does not start with a hex SHA-256")
	}
	if len(fields) > 1 {
		name = filepath.Base(strings.TrimPrefix(fields[1], "*"))
	}
	return sum, name, nil
}

// stage copies a plugin file into dir (private: only the manager's user
// may write it) under a temporary name, hashing the bytes as they are
// copied; the copy is what is checked and run, so the file changing after
// the check changes nothing. The caller renames or removes the copy.
func stage(path, dir string) (string, string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", "", err
	}
	if !fi.Mode().IsRegular() {
		return "", "", fmt.Errorf("not a regular file")
	}
	if fi.Size() > maxPluginBytes {
		return "", "", fmt.Errorf("%d bytes, more than a plugin may have (%d)", fi.Size(), maxPluginBytes)
	}
	// No process may be forked while the copy is open for writing: a
	// child that inherited the descriptor (until its exec closes it) would
	// make running the copy fail with "text file busy".
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	out, err := os.CreateTemp(dir, ".stage-*")
	if err != nil {
		return "", "", fmt.Errorf("copy to check: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, maxPluginBytes+1))
	if err == nil && n > maxPluginBytes {
		err = fmt.Errorf("grew past %d bytes while copied", maxPluginBytes)
	}
	if err == nil {
		err = out.Chmod(0o500)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", "", fmt.Errorf("copy to check: %w", err)
	}
	return out.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// privateDir makes (or takes) dir for staged copies: 0700, owned by this
// user.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("folder for checked plugin copies: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	if !ownedByMe(fi) {
		return fmt.Errorf("%s is owned by another user: the checked plugin copies must be private", dir)
	}
	return os.Chmod(dir, 0o700)
}

func sumFileContent(sum, name string) []byte { return []byte(sum + "  " + name + "\n") }

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// describeFile runs "<path> describe" with an empty environment and parses
// its Info. A binary that does not answer within timeout is killed.
func describeFile(ctx context.Context, path string, timeout time.Duration) (sdk.Info, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return sdk.Info{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, sdk.DescribeArg)
	cmd.Env = []string{}
	cmd.Dir = filepath.Dir(path)
	// A child that keeps the output pipes open must not hold Run past the
	// kill.
	cmd.WaitDelay = time.Second
	bindToParent(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return sdk.Info{}, fmt.Errorf("describe did not answer within %s (killed)", timeout)
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		if msg != "" {
			return sdk.Info{}, fmt.Errorf("describe failed: %v: %s", err, msg)
		}
		return sdk.Info{}, fmt.Errorf("describe failed: %v", err)
	}
	var info sdk.Info
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return sdk.Info{}, fmt.Errorf("describe printed no Info JSON: %v", err)
	}
	return info, nil
}

// checkInfo is what the manager requires of a plugin's Info: its own API
// major and every rule of sdk.Info.Validate. The error names the rules
// broken.
func checkInfo(info sdk.Info) error {
	if info.APIMajor != sdk.APIMajor {
		return fmt.Errorf("speaks plugin API %d.%d, this manager speaks API %d.x", info.APIMajor, info.APIMinor, sdk.APIMajor)
	}
	if err := info.Validate(); err != nil {
		return fmt.Errorf("its Info breaks the contract: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}
