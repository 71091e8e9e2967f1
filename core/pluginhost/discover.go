// Package pluginhost discovers, verifies, pins and runs role plugins, and
// serves each call's sdk.Host to them.
//
// A plugin lives in <dir>/<role>/doris-role-<role>_v<semver>_x<major>.<minor>_<os>_<arch>
// next to a <name>_SHA256SUM file in sha256sum format and its signature
// <name>_SHA256SUM.sig (core/plugintrust). It is accepted only if the
// checksum matches, the signature is by a key the admin trusts, its
// "describe" output agrees with its name, and its API major is the
// manager's (sdk.APIMajor). Nothing of a file is run before its signature
// is checked.
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
	Role     string   `json:"role"`    // upper case, as in sdk.Info: FE, BE, BROKER
	Version  string   `json:"version"` // semver without "v"
	APIMajor int      `json:"apiMajor"`
	APIMinor int      `json:"apiMinor"`
	Path     string   `json:"path"`
	SHA256   string   `json:"sha256"` // hex
	Signer   string   `json:"signer"` // fingerprint of the trusted key that signed it
	Info     sdk.Info `json:"info"`
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
}

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
			plugins[i], errs[i] = verify(ctx, f.path, f.roleDir, opt.describeTimeout, opt.keys)
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
func verify(ctx context.Context, path, roleDir string, describeTimeout time.Duration, keys *plugintrust.Keys) (Plugin, error) {
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
	signer, err := signed.check(path, keys)
	if err != nil {
		return Plugin{}, err
	}
	sum := signed.sha
	info, err := describeFile(ctx, path, describeTimeout)
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
	return Plugin{Role: info.Role, Version: version, APIMajor: major, APIMinor: minor, Path: path, SHA256: sum, Signer: signer.Fingerprint, Info: info}, nil
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

// check compares the plugin file with the checksum and the checksum file
// with its signature, and returns the trusted key that signed it. The
// checksum file may name this file, or the non-canonical name the file
// was signed under before "plugins install" gave it its canonical name.
func (s signedSum) check(path string, keys *plugintrust.Keys) (plugintrust.Key, error) {
	base := filepath.Base(path)
	if s.name != "" && s.name != base && nameRe.MatchString(s.name) {
		return plugintrust.Key{}, fmt.Errorf("checksum file %s names %q, not this file", s.sumName, s.name)
	}
	got, err := fileSHA256(path)
	if err != nil {
		return plugintrust.Key{}, err
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
