package doris

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/sdk"
)

// previousFile in an upgraded home names the folder that holds the version
// it replaced.
const previousFile = ".doris-manager-previous"

// StartFunc is a role's own Start (the FE's adds --helper where needed).
type StartFunc func(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error)

// switchScript puts the staged new version in place of the home, keeping
// the old one beside it, and moves the data dirs that live inside the old
// home (FE doris-meta, BE storage by default) into the new one, replacing
// the package's empty placeholders. Data is only ever moved, never copied
// or deleted. $1 home, $2 where the old home goes, $3 the staged new home,
// then the data dirs relative to the home.
const switchScript = `set -e
home=$1; prev=$2; staged=$3; shift 3
mv -T -- "$home" "$prev"
mv -T -- "$staged" "$home"
for rel in "$@"; do
  [ -e "$prev/$rel" ] || continue
  if [ -e "$home/$rel" ]; then rmdir -- "$home/$rel"; fi
  mkdir -p -- "$(dirname -- "$home/$rel")"
  mv -T -- "$prev/$rel" "$home/$rel"
done
printf '%s\n' "$prev" > "$home/` + previousFile + `"
`

// SwitchArgv builds the argv that runs switchScript.
func SwitchArgv(home, prev, staged string, dataRel ...string) []string {
	return append([]string{"bash", "-c", switchScript, "doris-switch", home, prev, staged}, dataRel...)
}

// upgrade is one node's upgrade as planned.
type upgrade struct {
	s          Spec
	host       string
	home, prev string
	dataRel    []string // data dirs inside the home, relative to it
	oldV, newV string
	javaHome   string
	failedHome string
}

// rollback says, command by command, how to put the old version back.
func (u upgrade) rollback() string {
	var b strings.Builder
	fmt.Fprintf(&b, "To roll %s back to %s, on %s:\n", u.s.Role, orUnknown(u.oldV), u.host)
	fmt.Fprintf(&b, "  bash %s   # if it runs\n", path.Join(u.home, "bin", u.s.StopScript))
	for _, rel := range u.dataRel {
		fmt.Fprintf(&b, "  mv %s %s\n", path.Join(u.home, rel), path.Join(u.prev, rel))
	}
	fmt.Fprintf(&b, "  mv %s %s\n", u.home, u.failedHome)
	fmt.Fprintf(&b, "  mv %s %s\n", u.prev, u.home)
	env := ""
	if u.javaHome != "" {
		env = "JAVA_HOME=" + u.javaHome + " "
	}
	fmt.Fprintf(&b, "  %sbash %s --daemon\n", env, path.Join(u.home, "bin", u.s.StartScript))
	b.WriteString("(or, after the mv commands, start the node from the manager). Its conf and data are the ones it ran with.")
	return b.String()
}

func orUnknown(v string) string {
	if v == "" {
		return "the previous version"
	}
	return v
}

// UpgradeWith replaces the node's Doris by req.PackageURL, keeping its conf
// and data: it unpacks the package beside the install (installDir/.upgrade/
// <role dir>-<version>), copies the node's conf/ over the new conf/, stops
// the node, renames the home to <home>.prev-<old version> and the new one
// into its place (moving data dirs that live inside the home), starts it
// with start, and waits until the cluster lists it alive at the new version.
// A failure after the stop says in its Detail how to roll back. A retry
// after the switch only starts and checks. Facts: version, running,
// healthy, registered, alive.
func (b *Base) UpgradeWith(ctx context.Context, h sdk.Host, req sdk.Request, start StartFunc) (sdk.Result, error) {
	s := b.Spec
	dir, err := installDir(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := CheckHost(req.Node.Host); err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	if req.PackageURL == "" {
		return sdk.Result{}, sdk.Failf("no packageUrl given: set the URL of the Doris release to upgrade to")
	}
	d, err := b.Load(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	u := upgrade{s: s, host: req.Node.Host, home: d.Home, javaHome: req.Params[ParamJavaHome]}
	data, err := DataDirs(s, d)
	if err != nil {
		return sdk.Result{}, err
	}
	for _, p := range data {
		if p != d.Home && within(p, d.Home) {
			u.dataRel = append(u.dataRel, strings.TrimPrefix(p, d.Home+"/"))
		}
	}
	marker := packageMarker(req)
	cur, err := h.ReadFile(ctx, path.Join(d.Home, markerFile), 4096)
	if err != nil && !errors.Is(err, sdk.ErrNotExist) {
		return sdk.Result{}, fmt.Errorf("read %s: %w", path.Join(d.Home, markerFile), err)
	}
	if strings.TrimSpace(string(cur)) == marker {
		// Switched by an earlier attempt (or already at this package).
		u.newV, _ = InstalledVersion(ctx, h, d.Home)
		if p, err := h.ReadFile(ctx, path.Join(d.Home, previousFile), 4096); err == nil {
			u.prev = strings.TrimSpace(string(p))
			u.oldV, _ = InstalledVersion(ctx, h, u.prev)
		}
		h.Logf("%s already holds %s; starting and checking it", d.Home, redact.String(req.PackageURL))
	} else {
		if err := b.stageAndSwitch(ctx, h, req, dir, d, &u); err != nil {
			return sdk.Result{}, err
		}
	}
	if u.prev == "" {
		u.prev = d.Home + ".prev-<old version>"
	}
	u.failedHome = path.Join(dir, ".upgrade", "failed-"+s.Dir+"-"+safeVersion(u.newV))

	started, err := start(ctx, h, req)
	if err != nil {
		f := sdk.AsFailure(err)
		return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("upgraded %s on %s did not start: %s", s.Role, req.Node.Host, f.Summary),
			Detail: joinNonEmpty(u.rollback(), f.Detail), Retryable: f.Retryable}
	}
	row, err := b.waitUpgraded(ctx, h, req, u.newV)
	if err != nil {
		f := sdk.AsFailure(err)
		return sdk.Result{}, &sdk.Failure{Summary: f.Summary, Detail: joinNonEmpty(u.rollback(), f.Detail), Retryable: f.Retryable}
	}
	facts := sdk.Facts{}
	for k, v := range started.Facts {
		facts[k] = v
	}
	v := ShowVersion(row.Version)
	if v == "" {
		v = u.newV
	}
	if v != "" {
		facts[sdk.FactVersion] = v
	}
	facts.SetBool(sdk.FactRegistered, true)
	facts.SetBool(sdk.FactAlive, true)
	facts["packageUrl"] = redact.String(req.PackageURL)
	sum := fmt.Sprintf("%s on %s upgraded to %s and alive in the cluster", s.Role, req.Node.Host, orUnknown(v))
	if u.oldV != "" {
		sum = fmt.Sprintf("%s on %s upgraded from %s to %s and alive in the cluster", s.Role, req.Node.Host, u.oldV, orUnknown(v))
	}
	return sdk.Result{Summary: sum, Detail: fmt.Sprintf("the previous version is kept in %s: remove it once the cluster is fine\n%s", u.prev, u.rollback()),
		Facts: facts}, nil
}

// stageAndSwitch unpacks and stages the new version, stops the node and
// switches the homes.
func (b *Base) stageAndSwitch(ctx context.Context, h sdk.Host, req sdk.Request, dir string, d Deployed, u *upgrade) error {
	s := b.Spec
	u.oldV, _ = InstalledVersion(ctx, h, d.Home)
	if u.oldV == "" {
		if row, listed, ok := b.ClusterRow(ctx, h, req); ok && listed {
			u.oldV = ShowVersion(row.Version)
		}
	}
	unchanged := fmt.Sprintf("nothing was switched: %s still holds %s", d.Home, orUnknown(u.oldV))
	cache := PackageCacheDir(dir, req.PackageURL)
	dl, err := h.Download(ctx, sdk.Download{URL: req.PackageURL, SHA256: req.PackageSHA256, SHA512: req.PackageSHA512, Dest: cache, Unpack: true})
	if err != nil {
		f := sdk.AsFailure(err)
		return &sdk.Failure{Summary: "cannot fetch the package: " + f.Summary, Detail: joinNonEmpty(f.Detail, unchanged), Retryable: true}
	}
	shown := redact.String(req.PackageURL)
	h.Logf("package %s in %s (cached: %v, sha256 %s)", shown, cache, dl.Cached, dl.SHA256)
	res, err := h.Exec(ctx, sdk.Command{Argv: s.FindStartScriptArgv(cache)})
	if err != nil {
		return fmt.Errorf("look for %s in the package: %w", s.Role, err)
	}
	if res.ExitCode != 0 {
		return sdk.Failf("look for %s in the package: %s", s.Role, execErr(res, nil))
	}
	src, err := ChooseRoleHome(s, cache, strings.Split(res.Output, "\n"))
	if err != nil {
		return sdk.Failf("%s: %v", shown, err)
	}
	u.newV = PackageVersion(packageTop(cache, src))
	u.prev = d.Home + ".prev-" + safeVersion(u.oldV)
	staged := path.Join(dir, ".upgrade", s.Dir+"-"+safeVersion(u.newV))

	res, err = h.Exec(ctx, sdk.Command{Argv: []string{"test", "-e", u.prev}})
	if err != nil {
		return fmt.Errorf("check %s: %w", u.prev, err)
	}
	if res.ExitCode == 0 {
		return sdk.Failf("%s already exists (an earlier version kept by an upgrade): remove or rename it, then retry; %s", u.prev, unchanged)
	}
	steps := [][]string{
		{"rm", "-rf", "--", staged},
		InstallArgv(src, staged, packageMarker(req), u.newV),
		// The node's conf files replace the package's.
		{"cp", "-a", "--", path.Join(d.Home, "conf") + "/.", path.Join(staged, "conf") + "/"},
	}
	for _, argv := range steps {
		res, err := h.Exec(ctx, sdk.Command{Argv: argv})
		if err != nil {
			return fmt.Errorf("stage %s in %s: %w", u.newV, staged, err)
		}
		if res.ExitCode != 0 {
			return &sdk.Failure{Summary: fmt.Sprintf("cannot stage the new %s in %s on %s: %s", s.Role, staged, req.Node.Host, execErr(res, nil)),
				Detail: unchanged, Retryable: true}
		}
	}
	h.Logf("staged %s %s in %s with the conf of %s", s.Role, orUnknown(u.newV), staged, d.Home)

	if _, err := b.Stop(ctx, h, req); err != nil {
		f := sdk.AsFailure(err)
		return &sdk.Failure{Summary: fmt.Sprintf("cannot stop %s on %s for the upgrade: %s", s.Role, req.Node.Host, f.Summary),
			Detail: joinNonEmpty(f.Detail, unchanged+"; if it stopped, start it again"), Retryable: f.Retryable}
	}
	res, err = h.Exec(ctx, sdk.Command{Argv: SwitchArgv(d.Home, u.prev, staged, u.dataRel...)})
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("%s", execErr(res, nil))
	}
	if err != nil {
		u.failedHome = path.Join(dir, ".upgrade", "failed-"+s.Dir+"-"+safeVersion(u.newV))
		return &sdk.Failure{Summary: fmt.Sprintf("switching %s on %s to %s failed halfway: %v", d.Home, req.Node.Host, orUnknown(u.newV), err),
			Detail: "check which of these moves already happened before running the rest:\n" + u.rollback()}
	}
	h.Logf("switched %s to %s; %s kept in %s", d.Home, orUnknown(u.newV), orUnknown(u.oldV), u.prev)
	return nil
}

// waitUpgraded waits until the cluster lists the node alive and, when the
// package said its version and the cluster shows one, at that version.
func (b *Base) waitUpgraded(ctx context.Context, h sdk.Host, req sdk.Request, want string) (Member, error) {
	timeout, err := AliveTimeout(req)
	if err != nil {
		return Member{}, err
	}
	var row Member
	seen := "the cluster could not be asked"
	err = b.Backoff.Poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		r, listed, ok := b.ClusterRow(ctx, h, req)
		switch {
		case !ok:
			return false, nil
		case !listed:
			seen = "not listed by the cluster"
			return false, nil
		}
		row = r
		v := ShowVersion(r.Version)
		seen = fmt.Sprintf("Alive=%v, Version %q", r.Alive, r.Version)
		return r.Alive && (want == "" || v == "" || SameVersion(v, want)), nil
	})
	if errors.Is(err, ErrWaitTimeout) {
		return row, &sdk.Failure{Summary: fmt.Sprintf("upgraded %s on %s is not alive at %s in the cluster after %s (%s)", b.Spec.Role, req.Node.Host, orUnknown(want), timeout, seen),
			Retryable: true}
	}
	return row, err
}
