// Package dorissim builds simulated Apache Doris release packages: the real
// directory layouts, conf files and start/stop scripts, with the dorissim
// program standing in for the JVM and doris_be. See README.md.
package dorissim

import (
	"archive/tar"
	"compress/gzip"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/ulikunitz/xz"
)

// Layout is a release tree shape.
type Layout string

// Known layouts.
const (
	Layout015 Layout = "0.15" // PALO-<v>-binary/{fe,be,apache_hdfs_broker}
	Layout12  Layout = "1.2"  // apache-doris-<v>-bin-x64/{fe,be,extensions/apache_hdfs_broker}
	Layout2x  Layout = "2.x"  // same tree as 1.2
)

// Role is one Doris process kind.
type Role string

// Roles.
const (
	RoleFE     Role = "fe"
	RoleBE     Role = "be"
	RoleBroker Role = "broker"
)

// Format is the archive format.
type Format string

// Formats.
const (
	TarGz Format = "tar.gz"
	TarXz Format = "tar.xz"
)

// DefaultVersion is the Doris version a layout imitates unless told otherwise.
func DefaultVersion(l Layout) string {
	switch l {
	case Layout015:
		return "0.15.1-rc03"
	case Layout12:
		return "1.2.7.1"
	}
	return "2.0.3"
}

// PackOptions describe one package.
type PackOptions struct {
	Layout    Layout
	Version   string // default DefaultVersion(Layout)
	Role      Role   // "" = full release; else a per-role package
	Format    Format // default tar.gz
	Out       string // archive path to write
	SimBinary string // the dorissim binary to ship
	// SimEnv is written to <role>/lib/dorissim.env and read by the start
	// scripts as defaults for variables the environment does not set, so
	// test knobs (DORIS_SIM_MIN_NOFILE, DORIS_SIM_HEARTBEAT_INTERVAL, ...)
	// reach processes started by someone else, e.g. a role plugin.
	SimEnv map[string]string
}

var envKey = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

func (o *PackOptions) envFile() ([]byte, error) {
	keys := make([]string, 0, len(o.SimEnv))
	for k, v := range o.SimEnv {
		if !envKey.MatchString(k) || strings.ContainsAny(v, "\n\r") {
			return nil, fmt.Errorf("SimEnv %q: key must be upper-case letters, digits and _, value one line", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, o.SimEnv[k])
	}
	return []byte(b.String()), nil
}

func (o *PackOptions) normalize() error {
	switch o.Layout {
	case Layout015, Layout12, Layout2x:
	case "":
		o.Layout = Layout2x
	default:
		return fmt.Errorf("unknown layout %q: use 0.15, 1.2 or 2.x", o.Layout)
	}
	if o.Version == "" {
		o.Version = DefaultVersion(o.Layout)
	}
	switch o.Role {
	case "", RoleFE, RoleBE, RoleBroker:
	default:
		return fmt.Errorf("unknown role %q: use fe, be or broker", o.Role)
	}
	switch o.Format {
	case TarGz, TarXz:
	case "":
		o.Format = TarGz
	default:
		return fmt.Errorf("unknown format %q: use tar.gz or tar.xz", o.Format)
	}
	if o.Out == "" || o.SimBinary == "" {
		return fmt.Errorf("pack: Out and SimBinary are required")
	}
	return nil
}

// RoleDirs returns where each role's home sits inside the package, relative
// to the archive root (for example "apache-doris-2.0.3-bin-x64/extensions/apache_hdfs_broker").
func RoleDirs(o PackOptions) (map[Role]string, error) {
	if o.Layout == "" {
		o.Layout = Layout2x
	}
	if o.Version == "" {
		o.Version = DefaultVersion(o.Layout)
	}
	if o.Role != "" {
		switch o.Role {
		case RoleFE:
			return map[Role]string{RoleFE: "apache-doris-fe-" + o.Version + "-bin-x86_64"}, nil
		case RoleBE:
			return map[Role]string{RoleBE: "apache-doris-be-" + o.Version + "-bin-x86_64"}, nil
		default:
			return map[Role]string{RoleBroker: "apache-doris-dependencies-" + o.Version + "-bin-x86_64/apache_hdfs_broker"}, nil
		}
	}
	if o.Layout == Layout015 {
		top := "PALO-" + o.Version + "-binary"
		return map[Role]string{RoleFE: top + "/fe", RoleBE: top + "/be", RoleBroker: top + "/apache_hdfs_broker"}, nil
	}
	top := "apache-doris-" + o.Version + "-bin-x64"
	return map[Role]string{RoleFE: top + "/fe", RoleBE: top + "/be", RoleBroker: top + "/extensions/apache_hdfs_broker"}, nil
}

type entry struct {
	name string
	mode int64
	body []byte // nil for a directory
}

// Pack writes the package and returns its top-level directory name.
func Pack(o PackOptions) (string, error) {
	if err := o.normalize(); err != nil {
		return "", err
	}
	sim, err := os.ReadFile(o.SimBinary)
	if err != nil {
		return "", fmt.Errorf("read sim binary: %w", err)
	}
	dirs, err := RoleDirs(o)
	if err != nil {
		return "", err
	}
	envFile, err := o.envFile()
	if err != nil {
		return "", err
	}
	var entries []entry
	seen := map[string]bool{}
	addDir := func(p string) {
		for d := p; d != "." && d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			entries = append(entries, entry{name: d + "/", mode: 0o755})
		}
	}
	add := func(p string, mode int64, body []byte) {
		addDir(path.Dir(p))
		entries = append(entries, entry{name: p, mode: mode, body: body})
	}
	for _, role := range []Role{RoleFE, RoleBE, RoleBroker} {
		home, ok := dirs[role]
		if !ok {
			continue
		}
		for _, f := range roleFiles(o, role, sim) {
			if f.body == nil {
				addDir(path.Join(home, f.name))
				continue
			}
			add(path.Join(home, f.name), f.mode, f.body)
		}
		if len(envFile) > 0 {
			add(path.Join(home, "lib", "dorissim.env"), 0o644, envFile)
		}
	}
	// Parents sort before their children.
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	if err := writeArchive(o.Out, o.Format, entries); err != nil {
		return "", err
	}
	for _, d := range dirs {
		return strings.SplitN(d, "/", 2)[0], nil
	}
	return "", nil
}

func roleFiles(o PackOptions, role Role, sim []byte) []entry {
	v := o.Version
	ver := []byte(v + "\n")
	switch role {
	case RoleFE:
		return []entry{
			{name: "bin/start_fe.sh", mode: 0o755, body: []byte(fill(startFE, "@VERSION@", v, "@CONF@", "fe.conf"))},
			{name: "bin/stop_fe.sh", mode: 0o755, body: []byte(fill(stopScript, "@VERSION@", v, "@WHAT@", "fe",
				"@HOMEVAR@", "DORIS_HOME", "@CONF@", "fe.conf", "@PIDFILE@", "fe.pid", "@COMM@", "java", "@SHORT@", "fe"))},
			{name: "conf/fe.conf", mode: 0o644, body: []byte(feConf(o.Layout))},
			{name: "lib/doris-fe.jar", mode: 0o644, body: []byte("simulated doris-fe.jar " + v + "\n")},
			{name: "lib/dorissim", mode: 0o755, body: sim},
			{name: "lib/dorissim.version", mode: 0o644, body: ver},
			{name: "log"},
			{name: "doris-meta"},
		}
	case RoleBE:
		needJava := "0"
		if o.Layout != Layout015 {
			needJava = "1"
		}
		return []entry{
			{name: "bin/start_be.sh", mode: 0o755, body: []byte(fill(startBE, "@VERSION@", v, "@BE_NEEDS_JAVA@", needJava))},
			{name: "bin/stop_be.sh", mode: 0o755, body: []byte(fill(stopScript, "@VERSION@", v, "@WHAT@", "be",
				"@HOMEVAR@", "DORIS_HOME", "@CONF@", "be.conf", "@PIDFILE@", "be.pid", "@COMM@", "doris_be", "@SHORT@", "be"))},
			{name: "conf/be.conf", mode: 0o644, body: []byte(beConf())},
			{name: "lib/doris_be", mode: 0o755, body: sim},
			{name: "lib/dorissim.version", mode: 0o644, body: ver},
			{name: "log"},
			{name: "storage"},
		}
	}
	return []entry{
		{name: "bin/start_broker.sh", mode: 0o755, body: []byte(fill(startBroker, "@VERSION@", v, "@CONF@", "apache_hdfs_broker.conf"))},
		{name: "bin/stop_broker.sh", mode: 0o755, body: []byte(fill(stopScript, "@VERSION@", v, "@WHAT@", "broker",
			"@HOMEVAR@", "BROKER_HOME", "@CONF@", "apache_hdfs_broker.conf", "@PIDFILE@", "apache_hdfs_broker.pid",
			"@COMM@", "java", "@SHORT@", "broker"))},
		{name: "conf/apache_hdfs_broker.conf", mode: 0o644, body: []byte(brokerConf())},
		{name: "lib/apache_hdfs_broker.jar", mode: 0o644, body: []byte("simulated apache_hdfs_broker.jar " + v + "\n")},
		{name: "lib/dorissim", mode: 0o755, body: sim},
		{name: "lib/dorissim.version", mode: 0o644, body: ver},
	}
}

func writeArchive(out string, format Format, entries []entry) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create package: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	var comp io.WriteCloser
	if format == TarXz {
		if comp, err = xz.NewWriter(f); err != nil {
			return fmt.Errorf("xz: %w", err)
		}
	} else {
		// Speed over size: packages are built in tests, often under -race.
		if comp, err = gzip.NewWriterLevel(f, gzip.BestSpeed); err != nil {
			return err
		}
	}
	tw := tar.NewWriter(comp)
	mtime := time.Now().Truncate(time.Second)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if e.body == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write %s: %w", e.name, err)
		}
		if e.body != nil {
			if _, err := tw.Write(e.body); err != nil {
				return fmt.Errorf("write %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return comp.Close()
}

//go:embed fakejava/bin/java
var fakeJava []byte

// WriteFakeJavaHome writes dir/bin/java, a script that answers -version like a
// JDK, so dir can serve as JAVA_HOME (or dir/bin be put on PATH).
func WriteFakeJavaHome(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return fmt.Errorf("create fake JAVA_HOME: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "bin", "java"), fakeJava, 0o755)
}

// ServerDir is the source folder of the dorissim program, a Go module of
// its own (server/go.mod) so that its MySQL server libraries stay out of the
// manager's module: next to this file when the source is at hand, else
// where the go tool finds this package.
func ServerDir(ctx context.Context) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "server")
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
	}
	out, err := exec.CommandContext(ctx, goTool(), "list", "-f", "{{.Dir}}", "github.com/dorismanager/dorismanager/test/dorissim").Output()
	if err != nil {
		return "", fmt.Errorf("find the dorissim source (run from the Doris Manager source tree): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "server"), nil
}

func goTool() string {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		return "go"
	}
	return gobin
}

// BuildPackTool compiles the dorissim-pack command (without -race) to out.
func BuildPackTool(ctx context.Context, out string) error {
	dir, err := ServerDir(ctx)
	if err != nil {
		return err
	}
	return goBuild(ctx, "dorissim-pack", filepath.Dir(dir), "./cmd/dorissim-pack", out)
}

// PackByCommand packs o with tool, a dorissim-pack command (BuildPackTool),
// instead of in this process: compressing tens of megabytes with xz in a
// test binary built with -race takes about a minute, and a few seconds in
// a process of its own. It returns the release's top folder, as Pack does.
func PackByCommand(ctx context.Context, tool string, o PackOptions) (string, error) {
	args := []string{"pack", "--layout", string(o.Layout), "--role", string(o.Role), "--format", string(o.Format),
		"--version", o.Version, "--out", o.Out, "--sim-binary", o.SimBinary}
	keys := make([]string, 0, len(o.SimEnv))
	for k := range o.SimEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+o.SimEnv[k])
	}
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("dorissim-pack: %w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// BuildBinary compiles the dorissim program to out with the go tool of this
// toolchain (or "go" on PATH): go build -C <ServerDir>.
func BuildBinary(ctx context.Context, out string) error {
	dir, err := ServerDir(ctx)
	if err != nil {
		return err
	}
	return goBuild(ctx, "dorissim", dir, ".", out, "-ldflags=-s -w")
}

// goBuild builds the program name, package pkg in module folder dir, into
// out: static, without the build paths, and without -race whatever the
// caller was built with.
func goBuild(ctx context.Context, name, dir, pkg, out string, flags ...string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	args := append(append([]string{"build", "-C", dir, "-trimpath"}, flags...), "-o", abs, pkg)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s in %s: %w: %s", name, dir, err, b)
	}
	return nil
}
