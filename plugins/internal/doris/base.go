package doris

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/sdk"
)

// HealthFunc probes a started role once: ok, and what it saw.
type HealthFunc func(ctx context.Context, h sdk.Host, host string, d Deployed) (bool, string)

// Base implements the Role methods that are the same for every Doris
// role (Info, Precheck, Install, Configure, Start's common path, Stop,
// Status). The role plugins embed it and add what differs.
type Base struct {
	Spec    Spec
	Version string
	Backoff Backoff
	Health  HealthFunc
	// Params are the role's own params besides Spec.Params (Info.Params).
	Params []sdk.Param
}

// Params read by Base (all optional, strings):
const (
	ParamJavaHome      = "javaHome"      // JAVA_HOME to check and to start with
	ParamMinOpenFiles  = "minOpenFiles"  // BE: open-files floor (default 60000, as start_be.sh)
	ParamMinFreeDiskGB = "minFreeDiskGB" // free space required in installDir (default 5)
	ParamStartTimeout  = "startTimeout"  // health wait after start (default 10m FE, 5m others)
	ParamStopTimeout   = "stopTimeout"   // wait for the process to exit (default 2m)
)

// Info reports the plugin: the role's entry in the manager's catalogue.
func (b *Base) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name: "doris-role-" + strings.ToLower(b.Spec.Role), Role: b.Spec.Role, Version: b.Version,
		APIMajor: sdk.APIMajor, APIMinor: sdk.APIMinor,
		Home:         b.Spec.Dir,
		PidFile:      path.Join("bin", b.Spec.PidFile), // PID_DIR defaults to <home>/bin
		Capabilities: []string{sdk.CapMembership, sdk.CapAutoFix, sdk.CapUpgrade, sdk.CapReconfigure},
		Params:       append(b.Spec.Params(), b.Params...),
		Order:        b.Spec.Order,
		Description:  b.Spec.Description,
	}, nil
}

// Defaults of the params Spec.Params declares.
const (
	DefaultStopTimeout  = 2 * time.Minute
	DefaultAliveTimeout = 3 * time.Minute
)

func installDir(req sdk.Request) (string, error) {
	d := req.Node.InstallDir
	if d == "" || !strings.HasPrefix(d, "/") {
		return "", sdk.Failf("installDir %q must be an absolute path such as /opt/doris", d)
	}
	return path.Clean(d), nil
}

// dirs returns the node's installDir, the base its roles share (package
// cache, disk checks), and the role's home: Node.Home as the manager
// computed it (installDir joined with Info.Home, which is Spec.Dir), or
// Spec.Home for a request that names only installDir. A home that is not
// a folder directly under installDir is refused.
func (s Spec) dirs(req sdk.Request) (dir, home string, err error) {
	dir, err = installDir(req)
	if err != nil {
		return "", "", err
	}
	if req.Node.Home == "" {
		return dir, s.Home(dir), nil
	}
	home = path.Clean(req.Node.Home)
	if path.Dir(home) != dir {
		return "", "", sdk.Failf("home %q of the %s must be a folder directly under installDir %s", req.Node.Home, s.Role, dir)
	}
	return dir, home, nil
}

// report collects checks for a Result.
type report struct {
	ok, warn, fixed, fail []string
}

func (r *report) detail() string {
	var b strings.Builder
	for _, s := range []struct {
		tag  string
		list []string
	}{{"FAIL", r.fail}, {"FIXED", r.fixed}, {"WARN", r.warn}, {"OK", r.ok}} {
		for _, l := range s.list {
			fmt.Fprintf(&b, "%s: %s\n", s.tag, l)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Precheck verifies the host for the role; see the Params above.
func (b *Base) Precheck(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	s := b.Spec
	dir, home, err := s.dirs(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := CheckHost(req.Node.Host); err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	ports := s.DefaultPorts()
	for k, v := range req.Node.Ports {
		if _, known := ports[k]; known && v > 0 {
			ports[k] = v
		}
	}
	keys := sortedKeys(ports)
	portList := make([]int, 0, len(keys))
	for _, k := range keys {
		portList = append(portList, ports[k])
	}
	pp, err := s.ReadProcProbe(ctx, h, home, path.Join(home, "bin"), dir, req.Params[ParamJavaHome], portList...)
	if err != nil {
		return sdk.Result{}, err
	}
	if pp.ProbeErr != nil {
		return sdk.Result{}, pp.ProbeErr
	}
	proc, p := pp.Proc, pp.Probe
	if proc.Running() {
		// A role already running from this home holds its own ports.
		p.BusyPorts = map[int]bool{}
	}
	var r report
	facts := map[string]string{}

	// vm.max_map_count
	const wantMap = 2000000
	switch {
	case p.MaxMapCount >= wantMap:
		r.ok = append(r.ok, fmt.Sprintf("vm.max_map_count is %d", p.MaxMapCount))
	case !s.KernelStrict:
		r.warn = append(r.warn, fmt.Sprintf("vm.max_map_count is %d; a Doris BE on this host would need >= %d", p.MaxMapCount, wantMap))
	case req.AutoFix:
		res, err := h.Exec(ctx, sdk.Command{Argv: []string{"sysctl", "-w", "vm.max_map_count=" + strconv.Itoa(wantMap)}})
		if err != nil || res.ExitCode != 0 {
			r.fail = append(r.fail, fmt.Sprintf("vm.max_map_count is %d and autoFix could not raise it (sysctl -w vm.max_map_count=%d: %s)", p.MaxMapCount, wantMap, execErr(res, err)))
		} else {
			p.MaxMapCount = wantMap
			r.fixed = append(r.fixed, fmt.Sprintf("vm.max_map_count raised to %d for the running kernel (sysctl -w); add it to /etc/sysctl.conf to keep it after a reboot", wantMap))
		}
	default:
		r.fail = append(r.fail, fmt.Sprintf("vm.max_map_count is %d, Doris BE needs >= %d: run sysctl -w vm.max_map_count=%d or install with autoFix", p.MaxMapCount, wantMap, wantMap))
	}
	facts["maxMapCount"] = strconv.FormatInt(p.MaxMapCount, 10)

	// swap
	switch {
	case len(p.Swaps) == 0:
		r.ok = append(r.ok, "swap is off")
	case !s.KernelStrict:
		r.warn = append(r.warn, fmt.Sprintf("swap is on (%s); Doris recommends turning it off, and a BE on this host would refuse to start", strings.Join(p.Swaps, ", ")))
	case req.AutoFix:
		// swapoff is safe: it fails without harm when memory cannot hold
		// the swapped pages, and /etc/fstab is left alone.
		res, err := h.Exec(ctx, sdk.Command{Argv: []string{"swapoff", "-a"}})
		if err != nil || res.ExitCode != 0 {
			r.fail = append(r.fail, fmt.Sprintf("swap is on (%s) and autoFix could not turn it off (swapoff -a: %s)", strings.Join(p.Swaps, ", "), execErr(res, err)))
		} else {
			p.Swaps = nil
			r.fixed = append(r.fixed, "swap turned off (swapoff -a); remove the swap entries from /etc/fstab to keep it off after a reboot")
		}
	default:
		r.fail = append(r.fail, fmt.Sprintf("swap is on (%s), Doris BE refuses to start with swap: run swapoff -a (and remove swap from /etc/fstab) or install with autoFix", strings.Join(p.Swaps, ", ")))
	}
	facts["swap"] = map[bool]string{true: "off", false: "on"}[len(p.Swaps) == 0]

	// open files: the plugin starts the role with min(65536, hard).
	nofile := p.NoFile()
	facts["openFiles"] = strconv.FormatUint(nofile, 10)
	minFiles := s.MinOpenFiles
	if v := req.Params[ParamMinOpenFiles]; v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return sdk.Result{}, sdk.Failf("param %s = %q is not a number", ParamMinOpenFiles, v)
		}
		minFiles = n
	}
	switch {
	case minFiles > 0 && nofile < minFiles:
		r.fail = append(r.fail, fmt.Sprintf("the open-files hard limit of the agent is %d, Doris %s needs >= %d: raise the agent's hard nofile limit (LimitNOFILE=65536 in its service unit or 'root hard nofile 65536' in /etc/security/limits.conf) and restart the agent", p.NoFileHard, s.Role, minFiles))
	case nofile < 65536:
		r.warn = append(r.warn, fmt.Sprintf("%s will start with an open-files limit of %d (hard limit); Doris recommends 65536", s.Role, nofile))
	default:
		r.ok = append(r.ok, fmt.Sprintf("%s will start with an open-files limit of %d (soft was %d)", s.Role, nofile, p.NoFileSoft))
	}

	// ports
	busy := false
	for _, k := range keys {
		if p.BusyPorts[ports[k]] {
			busy = true
			r.fail = append(r.fail, fmt.Sprintf("port %d (%s) is already in use: stop what listens on it or set %s in %s to a free port", ports[k], k, k, s.ConfFile))
		}
	}
	switch {
	case proc.Running():
		r.ok = append(r.ok, fmt.Sprintf("%s already running from %s (pid %d); its ports are its own", s.Role, home, proc.PID))
	case !busy:
		r.ok = append(r.ok, fmt.Sprintf("ports free: %s", portsText(ports)))
	}

	// disk
	minGB := 5.0
	if v := req.Params[ParamMinFreeDiskGB]; v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return sdk.Result{}, sdk.Failf("param %s = %q is not a number of GB", ParamMinFreeDiskGB, v)
		}
		minGB = f
	}
	availGB := float64(p.DiskAvailKB) / (1 << 20)
	switch {
	case p.DiskAvailKB < 0:
		r.warn = append(r.warn, fmt.Sprintf("could not measure free space for %s", dir))
	case availGB < minGB:
		r.fail = append(r.fail, fmt.Sprintf("only %.1f GB free on %s (for %s), need >= %.1f GB: free space or choose another installDir", availGB, p.DiskPath, dir, minGB))
	default:
		r.ok = append(r.ok, fmt.Sprintf("%.1f GB free on %s", availGB, p.DiskPath))
	}

	// java
	switch {
	case p.JavaVersion != "":
		r.ok = append(r.ok, fmt.Sprintf("java %s at %s", p.JavaVersion, p.Java))
		facts["java"], facts["javaVersion"] = p.Java, p.JavaVersion
	case s.NeedsJava:
		r.fail = append(r.fail, fmt.Sprintf("no usable java (%s): install a JDK (JDK 8 for Doris < 2.1, JDK 17 for 2.1+) and set JAVA_HOME for the agent, or pass param %s", javaWhere(p), ParamJavaHome))
	default:
		r.warn = append(r.warn, fmt.Sprintf("no usable java (%s); Doris 2.1+ BE needs JAVA_HOME for Java UDFs and catalogs", javaWhere(p)))
	}

	for _, w := range r.warn {
		h.Logf("precheck %s warning: %s", s.Role, w)
	}
	for _, f := range r.fixed {
		h.Logf("precheck %s fixed: %s", s.Role, f)
	}
	if len(r.fail) > 0 {
		sum := fmt.Sprintf("%s precheck failed on %s: %s", s.Role, req.Node.Host, r.fail[0])
		if len(r.fail) > 1 {
			sum += fmt.Sprintf(" (and %d more)", len(r.fail)-1)
		}
		return sdk.Result{}, &sdk.Failure{Summary: sum, Detail: r.detail()}
	}
	sum := fmt.Sprintf("%s precheck passed on %s", s.Role, req.Node.Host)
	if len(r.warn) > 0 || len(r.fixed) > 0 {
		sum += fmt.Sprintf(" (%d fixed, %d warnings)", len(r.fixed), len(r.warn))
	}
	return sdk.Result{Summary: sum, Detail: r.detail(), Facts: facts}, nil
}

func javaWhere(p Probe) string {
	if p.Java == "" {
		return "JAVA_HOME is not set and java is not on PATH"
	}
	return p.Java + " does not run"
}

func execErr(res sdk.ExecResult, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit %d: %s", res.ExitCode, strings.TrimSpace(clip(res.Output)))
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func portsText(ports map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(ports) {
		parts = append(parts, fmt.Sprintf("%s %d", k, ports[k]))
	}
	return strings.Join(parts, ", ")
}

// PackageCacheDir is where a package URL is unpacked on a host, shared by
// every role installed under the same installDir.
func PackageCacheDir(installDir, url string) string {
	sum := sha256.Sum256([]byte(url))
	return path.Join(installDir, ".packages", hex.EncodeToString(sum[:8]))
}

// markerFile records which package an installed role folder came from.
const markerFile = ".doris-manager-package"

// installScript copies the role folder into a temp sibling and renames it
// into place, so a half-copied install never looks installed.
// $1 source, $2 destination, $3 marker text, $4 Doris version ("" unknown).
const installScript = `set -e
src=$1; dst=$2; tmp="$dst.installing"
rm -rf "$tmp"
mkdir -p "$(dirname "$dst")"
cp -a "$src" "$tmp"
printf '%s\n' "$3" > "$tmp/` + markerFile + `"
if [ -n "$4" ]; then printf '%s\n' "$4" > "$tmp/` + versionFile + `"; fi
mv -T "$tmp" "$dst"
`

// InstallArgv builds the argv that installs src as dst, recording the
// package (marker) and its Doris version.
func InstallArgv(src, dst, marker, version string) []string {
	return []string{"bash", "-c", installScript, "doris-install", src, dst, marker, version}
}

// packageMarker is what markerFile holds for a package: its URL (without
// a password) and the checksums it was installed with.
func packageMarker(req sdk.Request) string {
	marker := redact.String(req.PackageURL)
	if req.PackageSHA256 != "" {
		marker += " sha256:" + strings.ToLower(req.PackageSHA256)
	}
	if req.PackageSHA512 != "" {
		marker += " sha512:" + strings.ToLower(req.PackageSHA512)
	}
	return marker
}

// packageTop is the top folder of an unpacked package that src lies in.
func packageTop(cache, src string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(src, cache), "/")
	return strings.SplitN(rel, "/", 2)[0]
}

// Install downloads the package (once per URL under installDir/.packages)
// and installs the role folder as installDir/<fe|be|apache_hdfs_broker>.
// An existing install of the same package is left as it is, conf included.
func (b *Base) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	s := b.Spec
	dir, home, err := s.dirs(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if req.PackageURL == "" {
		return sdk.Result{}, sdk.Failf("no packageUrl given: set the URL of a Doris release package (.tar.gz or .tar.xz)")
	}
	marker := packageMarker(req)
	shown := redact.String(req.PackageURL)
	facts := map[string]string{"installDir": home, "packageUrl": shown}
	if old, err := h.ReadFile(ctx, path.Join(home, markerFile), 4096); err == nil {
		if strings.TrimSpace(string(old)) == marker {
			return sdk.Result{Summary: fmt.Sprintf("%s already installed in %s from this package", s.Role, home), Facts: facts}, nil
		}
		return sdk.Result{}, sdk.Failf("%s already holds a %s installed from another package (%s): remove it or choose another installDir", home, s.Role, strings.TrimSpace(string(old)))
	} else if !errors.Is(err, sdk.ErrNotExist) {
		return sdk.Result{}, fmt.Errorf("read install marker in %s: %w", home, err)
	}
	if _, err := h.ReadFile(ctx, path.Join(home, "bin", s.StartScript), 1); err == nil {
		return sdk.Result{}, sdk.Failf("%s already holds a %s that was not installed by Doris Manager: remove it or choose another installDir", home, s.Role)
	}

	cache := PackageCacheDir(dir, req.PackageURL)
	dl, err := h.Download(ctx, sdk.Download{URL: req.PackageURL, SHA256: req.PackageSHA256, SHA512: req.PackageSHA512, Dest: cache, Unpack: true})
	if err != nil {
		f := sdk.AsFailure(err)
		return sdk.Result{}, &sdk.Failure{Summary: "cannot fetch the package: " + f.Summary, Detail: f.Detail, Retryable: true}
	}
	h.Logf("package %s in %s (cached: %v, sha256 %s)", shown, cache, dl.Cached, dl.SHA256)
	res, err := h.Exec(ctx, sdk.Command{Argv: s.FindStartScriptArgv(cache)})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("look for %s in the package: %w", s.Role, err)
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, sdk.Failf("look for %s in the package: %s", s.Role, execErr(res, nil))
	}
	src, err := ChooseRoleHome(s, cache, strings.Split(res.Output, "\n"))
	if err != nil {
		return sdk.Result{}, sdk.Failf("%s: %v", shown, err)
	}
	version := PackageVersion(packageTop(cache, src))
	res, err = h.Exec(ctx, sdk.Command{Argv: InstallArgv(src, home, marker, version)})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("install %s into %s: %w", s.Role, home, err)
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, sdk.Failf("install %s into %s failed: %s", s.Role, home, execErr(res, nil))
	}
	facts["packageSha256"] = dl.SHA256
	if dl.SHA512 != "" {
		facts["packageSha512"] = dl.SHA512
	}
	if version != "" {
		facts[sdk.FactVersion] = version
	}
	return sdk.Result{Summary: fmt.Sprintf("%s installed in %s from %s", s.Role, home, path.Base(src)), Facts: facts}, nil
}

// Deployed is a role as deployed on a host: its home and effective conf.
type Deployed struct {
	Home     string
	ConfPath string
	Conf     *Conf
	Vars     map[string]string
	Ports    map[string]int
	PidDir   string
	LogDir   string
}

// deployed derives paths and ports from conf text.
func (s Spec) deployed(home, text string) (Deployed, error) {
	d := Deployed{Home: home, ConfPath: s.ConfPath(home)}
	c, ports, err := Validate(d.ConfPath, text, s)
	if err != nil {
		return d, err
	}
	d.Conf, d.Ports = c, ports
	d.Vars = c.Vars(s, home)
	d.PidDir = path.Join(home, "bin")
	if v := d.Vars["PID_DIR"]; v != "" {
		d.PidDir = v
	}
	d.LogDir = path.Join(home, "log")
	if v := d.Vars["LOG_DIR"]; v != "" {
		d.LogDir = v
	} else if v, ok := c.Get("sys_log_dir"); ok {
		if e, err := Expand(v, d.Vars); err == nil && strings.HasPrefix(e, "/") {
			d.LogDir = e
		}
	}
	return d, nil
}

// Load reads the role's deployed conf from the host.
func (b *Base) Load(ctx context.Context, h sdk.Host, req sdk.Request) (Deployed, error) {
	_, home, err := b.Spec.dirs(req)
	if err != nil {
		return Deployed{}, err
	}
	conf := b.Spec.ConfPath(home)
	data, err := h.ReadFile(ctx, conf, 0)
	if errors.Is(err, sdk.ErrNotExist) {
		return Deployed{}, sdk.Failf("%s is missing on %s: install the %s (installService) and deploy its config first", conf, req.Node.Host, b.Spec.Role)
	}
	if err != nil {
		return Deployed{}, fmt.Errorf("read %s: %w", conf, err)
	}
	d, err := b.Spec.deployed(home, string(data))
	if err != nil {
		return d, sdk.Failf("%v", err)
	}
	return d, nil
}

// Configure validates req.Conf (or, when empty, the conf the package
// shipped), writes it atomically, creates meta_dir (FE) or every
// storage_root_path (BE), and reports the effective ports.
func (b *Base) Configure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	s := b.Spec
	_, home, err := s.dirs(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if _, err := h.ReadFile(ctx, path.Join(home, "bin", s.StartScript), 1); errors.Is(err, sdk.ErrNotExist) {
		return sdk.Result{}, sdk.Failf("%s is not installed in %s: run installService first", s.Role, home)
	} else if err != nil {
		return sdk.Result{}, fmt.Errorf("check %s install in %s: %w", s.Role, home, err)
	}
	text := req.Conf
	shipped := text == ""
	if shipped {
		data, err := h.ReadFile(ctx, s.ConfPath(home), 0)
		if err != nil {
			return sdk.Result{}, sdk.Failf("no conf given and %s has none: pass the %s text", home, s.ConfFile)
		}
		text = string(data)
	}
	d, err := s.deployed(home, text)
	if err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	if err := checkHostPortClash(s, req, d.Ports); err != nil {
		return sdk.Result{}, err
	}
	facts := map[string]string{"installDir": home}
	PortFacts(d.Ports, facts)
	dirs, err := DataDirs(s, d)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := keepsMemberIdentity(s, req, d, dirs); err != nil {
		return sdk.Result{}, err
	}
	switch s.Role {
	case FE.Role:
		facts["metaDir"] = dirs[0]
	case BE.Role:
		facts["storageRootPath"] = strings.Join(dirs, ";")
	}
	if len(dirs) > 0 {
		res, err := h.Exec(ctx, sdk.Command{Argv: append([]string{"mkdir", "-p", "--"}, dirs...)})
		if err != nil {
			return sdk.Result{}, fmt.Errorf("create %s: %w", strings.Join(dirs, ", "), err)
		}
		if res.ExitCode != 0 {
			return sdk.Result{}, sdk.Failf("cannot create %s on %s: %s (fix the path in %s or its permissions)", strings.Join(dirs, ", "), req.Node.Host, strings.TrimSpace(res.Output), s.ConfFile)
		}
	}
	if !shipped {
		if err := h.WriteFile(ctx, d.ConfPath, []byte(text), 0o644); err != nil {
			return sdk.Result{}, fmt.Errorf("write %s: %w", d.ConfPath, err)
		}
	}
	sum := fmt.Sprintf("%s config written to %s (%s)", s.Role, d.ConfPath, portsText(d.Ports))
	if shipped {
		sum = fmt.Sprintf("%s keeps the packaged %s (%s)", s.Role, d.ConfPath, portsText(d.Ports))
	}
	return sdk.Result{Summary: sum, Facts: facts}, nil
}

// keepsMemberIdentity refuses a conf that changes what the cluster knows
// a member node by (identityKeys: FE edit_log_port and meta_dir, BE
// heartbeat_service_port, broker broker_ipc_port). Deployed again (after
// the wizard went back), such a conf would leave the node's old entry in
// the cluster and have it join a second time under the new one.
func keepsMemberIdentity(s Spec, req sdk.Request, d Deployed, dirs []string) error {
	if member, _ := req.Node.Facts.Bool(sdk.FactRegistered); !member {
		return nil
	}
	var changed []string
	as := ""
	for _, k := range identityKeys[s.Role] {
		if k == "meta_dir" {
			if old := req.Node.Facts["metaDir"]; old != "" && len(dirs) > 0 && old != dirs[0] {
				changed = append(changed, fmt.Sprintf("meta_dir %s -> %s", old, dirs[0]))
			}
			continue
		}
		old, ok := req.Node.Ports[k]
		if !ok || old == 0 {
			continue
		}
		if as == "" {
			as = " as " + Endpoint(req.Node.Host, old)
		}
		if old != d.Ports[k] {
			changed = append(changed, fmt.Sprintf("%s %d -> %d", k, old, d.Ports[k]))
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return sdk.Failf("%s on %s is a member of the cluster%s, and this %s changes what the cluster knows it by (%s): the node would leave that entry behind and join a second time. Keep the old values; to change them, finish this process, then scale the node in and out",
		s.Role, req.Node.Host, as, s.ConfFile, strings.Join(changed, ", "))
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// checkHostPortClash refuses ports another role on the same host uses.
func checkHostPortClash(s Spec, req sdk.Request, ports map[string]int) error {
	var clashes []string
	for _, n := range req.Cluster.Nodes {
		if n.Host != req.Node.Host || n.Role == s.Role || n.Skipped {
			continue
		}
		for k, p := range n.Ports {
			for mk, mp := range ports {
				if p == mp {
					clashes = append(clashes, fmt.Sprintf("%s %d is also %s's %s", mk, mp, n.Role, k))
				}
			}
		}
	}
	if len(clashes) > 0 {
		sort.Strings(clashes)
		return sdk.Failf("port clash on %s: %s; give each role its own ports in %s", req.Node.Host, strings.Join(clashes, "; "), s.ConfFile)
	}
	return nil
}

// Status reports facts running, healthy, pid and the ports, and from the
// cluster's own SHOW FRONTENDS/BACKENDS/BROKER: registered, alive,
// decommissioning (BE) and version (else the version the home was
// installed from). Without an FE to ask, the cluster's facts are left out.
func (b *Base) Status(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	d, err := b.Load(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	proc, err := b.Spec.ReadProc(ctx, h, d.Home, d.PidDir)
	if err != nil {
		return sdk.Result{}, err
	}
	healthy, seen := false, "not running"
	if proc.Running() {
		healthy, seen = b.Health(ctx, h, req.Node.Host, d)
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRunning, proc.Running())
	facts.SetBool(sdk.FactHealthy, healthy)
	PortFacts(d.Ports, facts)
	if proc.Running() {
		facts["pid"] = strconv.Itoa(proc.PID)
	}
	sum := fmt.Sprintf("%s on %s: running=%v healthy=%v (%s)", b.Spec.Role, req.Node.Host, proc.Running(), healthy, seen)
	if row, listed, ok := b.ClusterRow(ctx, h, req); ok {
		facts.SetBool(sdk.FactRegistered, listed)
		facts.SetBool(sdk.FactAlive, listed && row.Alive)
		facts.SetBool(sdk.FactDecommissioning, listed && row.Decommissioned)
		if v := ShowVersion(row.Version); listed && v != "" {
			facts[sdk.FactVersion] = v
		}
		switch {
		case !listed:
			sum += "; not a member of the cluster"
		case row.Decommissioned:
			sum += fmt.Sprintf("; decommissioning, %d tablets left", row.TabletNum)
		default:
			sum += fmt.Sprintf("; cluster sees it alive=%v", row.Alive)
		}
	}
	if facts[sdk.FactVersion] == "" {
		if v, err := InstalledVersion(ctx, h, d.Home); err == nil && v != "" {
			facts[sdk.FactVersion] = v
		}
	}
	return sdk.Result{Summary: sum, Facts: facts}, nil
}

// StartOptions adapt the common start path to a role.
type StartOptions struct {
	// Prepare runs only when the role must be started (not when it is
	// already running) and returns extra arguments for the start script.
	Prepare func(ctx context.Context, d Deployed) ([]string, error)
	// Check, if set, runs at every poll once the process runs (started
	// now or already running), before its health is asked: an error (a
	// *sdk.Failure) ends the start, for a process that runs but is not
	// what was asked for.
	Check func(ctx context.Context, d Deployed) error
}

// Start starts the role with its own script from its home, raising the
// open-files limit, unless it already runs; then waits until it is healthy.
func (b *Base) Start(ctx context.Context, h sdk.Host, req sdk.Request, opt StartOptions) (sdk.Result, error) {
	s := b.Spec
	d, err := b.Load(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := CheckHost(req.Node.Host); err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	timeout := s.StartTimeout
	if timeout, err = ParamDuration(req.Params, ParamStartTimeout, timeout); err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	keys := sortedKeys(d.Ports)
	var ports []int
	for _, k := range keys {
		ports = append(ports, d.Ports[k])
	}
	// The probe is only needed when the role is not running yet, but
	// asking for it in the same exec costs less than a second exec. It
	// leaves out what only the precheck uses (free space, java -version).
	h.Logf("checking %s on %s: process, kernel settings, ports %s", s.Role, req.Node.Host, portsText(d.Ports))
	pp, err := s.ReadStartProbe(ctx, h, d.Home, d.PidDir, ports...)
	if err != nil {
		return sdk.Result{}, err
	}
	proc := pp.Proc
	facts := map[string]string{"installDir": d.Home}
	PortFacts(d.Ports, facts)
	started := false
	if proc.Running() {
		h.Logf("%s already running from %s (pid %d)", s.Role, d.Home, proc.PID)
	} else {
		if pp.ProbeErr != nil {
			return sdk.Result{}, pp.ProbeErr
		}
		p := pp.Probe
		var busy []string
		for _, k := range keys {
			if p.BusyPorts[d.Ports[k]] {
				busy = append(busy, fmt.Sprintf("%s %d", k, d.Ports[k]))
			}
		}
		if len(busy) > 0 {
			return sdk.Result{}, sdk.Failf("cannot start %s on %s: port in use (%s): stop what listens there or change it in %s", s.Role, req.Node.Host, strings.Join(busy, ", "), d.ConfPath)
		}
		if s.KernelStrict && (p.MaxMapCount < 2000000 || len(p.Swaps) > 0) {
			return sdk.Result{}, sdk.Failf("cannot start %s on %s: start_be.sh needs swap off and vm.max_map_count >= 2000000 (now: swap %v, max_map_count %d): run installService with autoFix or fix the host", s.Role, req.Node.Host, len(p.Swaps) > 0, p.MaxMapCount)
		}
		var extra []string
		if opt.Prepare != nil {
			if extra, err = opt.Prepare(ctx, d); err != nil {
				return sdk.Result{}, err
			}
		}
		cmd := sdk.Command{
			Argv:   append([]string{"bash", path.Join(d.Home, "bin", s.StartScript)}, append(extra, "--daemon")...),
			Dir:    d.Home,
			NoFile: p.NoFile(),
			Detach: true,
		}
		if jh := req.Params[ParamJavaHome]; jh != "" {
			cmd.Env = map[string]string{"JAVA_HOME": jh}
		}
		facts["openFiles"] = strconv.FormatUint(cmd.NoFile, 10)
		h.Logf("starting %s: %s (open files %d)", s.Role, strings.Join(cmd.Argv, " "), cmd.NoFile)
		began := time.Now()
		res, err := h.Exec(ctx, cmd)
		if err != nil {
			return sdk.Result{}, fmt.Errorf("start %s on %s: %w", s.Role, req.Node.Host, err)
		}
		h.Logf("%s returned after %.2fs (exit %d); waiting until %s is healthy", s.StartScript, time.Since(began).Seconds(), res.ExitCode, s.Role)
		if res.ExitCode != 0 {
			return sdk.Result{}, &sdk.Failure{
				Summary: fmt.Sprintf("%s refused to start on %s (exit %d): %s", s.StartScript, req.Node.Host, res.ExitCode, firstLine(res.Output)),
				Detail:  joinNonEmpty(strings.TrimSpace(res.Output), s.TailLogs(ctx, h, d.LogDir, 40)),
			}
		}
		started = true
	}
	var seen string
	var noPidSince time.Time
	probes, waitStart := 0, time.Now()
	err = b.Backoff.Poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		probes++
		pr, err := s.ReadProc(ctx, h, d.Home, d.PidDir)
		if err != nil {
			return false, nil
		}
		if pr.PID == 0 && started {
			// The daemons write their pid files themselves once they run:
			// doris_be creates be.pid after start_be.sh has returned, and
			// DorisFE truncates and rewrites the fe.pid that start_fe.sh
			// wrote. An empty or missing pid file right after the script is
			// a process still starting, not one that exited.
			if noPidSince.IsZero() {
				noPidSince = time.Now()
			}
			if time.Since(noPidSince) < PidFileGrace {
				return false, nil
			}
			tail := s.TailLogs(ctx, h, d.LogDir, 60)
			return false, &sdk.Failure{
				Summary: fmt.Sprintf("%s on %s wrote no pid file in %s within %s of its start: it exited while starting%s", s.Role, req.Node.Host, path.Join(d.PidDir, s.PidFile), PidFileGrace,
					priorityHint(d, req.Node.Host, tail)),
				Detail: tail,
			}
		}
		if !pr.Running() {
			tail := s.TailLogs(ctx, h, d.LogDir, 60)
			return false, &sdk.Failure{
				Summary: fmt.Sprintf("%s on %s exited while starting%s", s.Role, req.Node.Host, priorityHint(d, req.Node.Host, tail)),
				Detail:  tail,
			}
		}
		proc = pr
		if opt.Check != nil {
			if err := opt.Check(ctx, d); err != nil {
				return false, err
			}
		}
		ok, what := b.Health(ctx, h, req.Node.Host, d)
		// A probe cut short by the deadline says nothing about the node:
		// keep the last one that finished for the failure message.
		if ctx.Err() == nil || seen == "" {
			seen = what
		}
		return ok, nil
	})
	if err != nil {
		var f *sdk.Failure
		if errors.As(err, &f) {
			return sdk.Result{}, f
		}
		if errors.Is(err, ErrWaitTimeout) {
			return sdk.Result{}, &sdk.Failure{
				Summary:   fmt.Sprintf("%s on %s is running but not healthy after %s (last probe: %s)", s.Role, req.Node.Host, timeout, seen),
				Detail:    s.TailLogs(ctx, h, d.LogDir, 60),
				Retryable: true,
			}
		}
		return sdk.Result{}, err
	}
	facts["running"], facts["healthy"], facts["pid"] = "true", "true", strconv.Itoa(proc.PID)
	h.Logf("%s healthy (%s) after %.2fs, %d probes", s.Role, seen, time.Since(waitStart).Seconds(), probes)
	if !started {
		return sdk.Result{Summary: fmt.Sprintf("%s already running on %s (pid %d) and healthy", s.Role, req.Node.Host, proc.PID), Facts: facts}, nil
	}
	return sdk.Result{Summary: fmt.Sprintf("%s started on %s (pid %d) and healthy", s.Role, req.Node.Host, proc.PID), Facts: facts}, nil
}

// PidFileGrace is how long Start waits for the pid file of a started role
// to hold a pid before it judges the process gone.
const PidFileGrace = 30 * time.Second

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return clip(s)
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n")
}

// Stop runs the role's stop script and waits until its process is gone.
func (b *Base) Stop(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	s := b.Spec
	_, home, err := s.dirs(req)
	if err != nil {
		return sdk.Result{}, err
	}
	d, err := b.Load(ctx, h, req)
	if err != nil {
		// No conf: fall back to the script defaults for pid and log dirs.
		d = Deployed{Home: home, PidDir: path.Join(home, "bin"), LogDir: path.Join(home, "log")}
	}
	timeout, err := ParamDuration(req.Params, ParamStopTimeout, DefaultStopTimeout)
	if err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	proc, err := s.ReadProc(ctx, h, d.Home, d.PidDir)
	if err != nil {
		return sdk.Result{}, err
	}
	facts := map[string]string{"running": "false", "healthy": "false"}
	if !proc.Running() {
		return sdk.Result{Summary: fmt.Sprintf("%s is not running on %s", s.Role, req.Node.Host), Facts: facts}, nil
	}
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"bash", path.Join(d.Home, "bin", s.StopScript)}, Dir: d.Home})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("stop %s on %s: %w", s.Role, req.Node.Host, err)
	}
	out := strings.TrimSpace(res.Output)
	err = b.Backoff.Poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		pr, err := s.ReadProc(ctx, h, d.Home, d.PidDir)
		if err != nil {
			return false, nil
		}
		return !pr.Running() || pr.PID != proc.PID, nil
	})
	if err != nil {
		if errors.Is(err, ErrWaitTimeout) {
			return sdk.Result{}, &sdk.Failure{
				Summary:   fmt.Sprintf("%s on %s (pid %d) still runs %s after %s", s.Role, req.Node.Host, proc.PID, timeout, s.StopScript),
				Detail:    joinNonEmpty(out, s.TailLogs(ctx, h, d.LogDir, 40)),
				Retryable: true,
			}
		}
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: fmt.Sprintf("%s stopped on %s (was pid %d)", s.Role, req.Node.Host, proc.PID), Detail: out, Facts: facts}, nil
}
