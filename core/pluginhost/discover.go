// Package pluginhost discovers, verifies, pins and runs role plugins, and
// serves each call's sdk.Host to them.
//
// A plugin lives in <dir>/<role>/doris-role-<role>_v<semver>_x<major>.<minor>_<os>_<arch>
// next to a <name>_SHA256SUM file in sha256sum format. It is accepted only
// if the checksum matches, its "describe" output agrees with its name, and
// its API major is the manager's (sdk.APIMajor).
package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// SumSuffix ends the name of a plugin's checksum file.
const SumSuffix = "_SHA256SUM"

// describeTimeout bounds one run of "<plugin> describe".
const describeTimeout = 15 * time.Second

// roleNameRe is what a role name in sdk.Info must look like.
var roleNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*$`)

var nameRe = regexp.MustCompile(`^doris-role-([a-z][a-z0-9]*)_v(` + semverPattern + `)_x(\d+)\.(\d+)_([a-z0-9]+)_([a-z0-9]+)$`)

// Plugin is an accepted plugin binary.
type Plugin struct {
	Role     string   `json:"role"`    // upper case, as in sdk.Info: FE, BE, BROKER
	Version  string   `json:"version"` // semver without "v"
	APIMajor int      `json:"apiMajor"`
	APIMinor int      `json:"apiMinor"`
	Path     string   `json:"path"`
	SHA256   string   `json:"sha256"` // hex
	Info     sdk.Info `json:"info"`
}

// File is the plugin's path relative to the plugins dir.
func (p Plugin) File(dir string) string {
	if rel, err := filepath.Rel(dir, p.Path); err == nil {
		return rel
	}
	return p.Path
}

// Refused is a file in the plugins dir that is not used, and why.
type Refused struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (r Refused) Error() string { return r.Path + ": " + r.Reason }

// CanonicalName is the file name a plugin with this Info must have on this
// platform.
func CanonicalName(info sdk.Info) string {
	return fmt.Sprintf("doris-role-%s_v%s_x%d.%d_%s_%s", strings.ToLower(info.Role), info.Version,
		info.APIMajor, info.APIMinor, runtime.GOOS, runtime.GOARCH)
}

// scan looks at every file under dir/<role>/ and sorts it into accepted
// plugins (per upper-case role, highest version first) and refused files.
// A missing dir is empty, not an error.
func scan(ctx context.Context, dir string) (map[string][]Plugin, []Refused, error) {
	accepted := map[string][]Plugin{}
	var refused []Refused
	// Absolute paths: plugins are run with their own directory as working
	// directory.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("plugins dir: %w", err)
	}
	roleDirs, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return accepted, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read plugins dir: %w", err)
	}
	for _, rd := range roleDirs {
		if !rd.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, rd.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("read plugins dir: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasSuffix(e.Name(), SumSuffix) || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			path := filepath.Join(dir, rd.Name(), e.Name())
			p, err := verify(ctx, path, rd.Name())
			if err != nil {
				refused = append(refused, Refused{Path: path, Reason: err.Error()})
				continue
			}
			accepted[p.Role] = append(accepted[p.Role], p)
		}
	}
	for role := range accepted {
		vs := accepted[role]
		sort.Slice(vs, func(i, j int) bool { return compareSemver(vs[i].Version, vs[j].Version) > 0 })
	}
	sort.Slice(refused, func(i, j int) bool { return refused[i].Path < refused[j].Path })
	return accepted, refused, nil
}

// verify checks one plugin file; roleDir is the name of its directory ("" to
// skip that check). The error says what is wrong with the file.
func verify(ctx context.Context, path, roleDir string) (Plugin, error) {
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
	sum, err := checkSum(path)
	if err != nil {
		return Plugin{}, err
	}
	info, err := describeFile(ctx, path)
	if err != nil {
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
	return Plugin{Role: info.Role, Version: version, APIMajor: major, APIMinor: minor, Path: path, SHA256: sum, Info: info}, nil
}

// checkSum compares a file with its sibling _SHA256SUM ("<hex>  <name>").
func checkSum(path string) (string, error) {
	sumPath := path + SumSuffix
	raw, err := os.ReadFile(sumPath)
	if os.IsNotExist(err) {
		return "", fmt.Errorf("no checksum file %s", filepath.Base(sumPath))
	}
	if err != nil {
		return "", fmt.Errorf("read checksum file: %w", err)
	}
	want, name, err := parseSumFile(raw)
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", filepath.Base(sumPath), err)
	}
	if name != "" && name != filepath.Base(path) {
		return "", fmt.Errorf("checksum file %s names %q, not this file", filepath.Base(sumPath), name)
	}
	got, err := fileSHA256(path)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("checksum mismatch: file has sha256 %s, %s says %s", got, filepath.Base(sumPath), want)
	}
	return got, nil
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
// its Info.
func describeFile(ctx context.Context, path string) (sdk.Info, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return sdk.Info{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, sdk.DescribeArg)
	cmd.Env = []string{}
	cmd.Dir = filepath.Dir(path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
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
