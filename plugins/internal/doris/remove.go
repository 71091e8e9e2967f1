package doris

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// Remove deletes the role's home, the earlier versions its upgrades kept
// beside it, and, with req.Purge, the data dirs its deployed conf names
// outside the home (FE meta_dir, every BE storage_root_path entry). When no
// role installed by the manager is left in installDir, the package cache
// and the upgrade staging area go too. The manager has stopped the role
// first; a role that still runs is refused rather than deleted under its
// feet. Removing a removed role succeeds; the data dirs are then taken from
// the facts Configure reported (metaDir, storageRootPath).
func (b *Base) Remove(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	s := b.Spec
	dir, home, err := s.dirs(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := removable(home); err != nil {
		return sdk.Result{}, err
	}
	if proc, err := s.ReadProc(ctx, h, home, path.Join(home, "bin")); err != nil {
		return sdk.Result{}, err
	} else if proc.Running() {
		return sdk.Result{}, sdk.Failf("%s still runs on %s (pid %d): stop it before removing %s", s.Role, req.Node.Host, proc.PID, home)
	}
	targets := []string{home}
	prevs, err := previousHomes(ctx, h, dir, home)
	if err != nil {
		return sdk.Result{}, err
	}
	targets = append(targets, prevs...)
	kept := len(targets)
	if req.Purge {
		data, err := b.dataDirs(ctx, h, req)
		if err != nil {
			return sdk.Result{}, err
		}
		for _, d := range data {
			if err := checkDataDir(d, dir); err != nil {
				return sdk.Result{}, err
			}
			if !within(d, home) {
				targets = append(targets, d)
			}
		}
	}
	res, err := h.Exec(ctx, sdk.Command{Argv: append([]string{"rm", "-rf", "--"}, targets...)})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("remove %s on %s: %w", strings.Join(targets, ", "), req.Node.Host, err)
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("could not remove %s on %s", strings.Join(targets, ", "), req.Node.Host),
			Detail: res.Output, Retryable: true}
	}
	cleaned, err := h.Exec(ctx, sdk.Command{Argv: []string{"bash", "-c", CacheCleanScript, "doris-clean", dir, markerFile}})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("remove the package cache in %s on %s: %w", dir, req.Node.Host, err)
	}
	if cleaned.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("removed %s on %s, but not the package cache in %s: retry, or remove %s and %s by hand",
			home, req.Node.Host, dir, path.Join(dir, ".packages"), path.Join(dir, ".upgrade")), Detail: cleaned.Output, Retryable: true}
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRunning, false)
	facts.SetBool(sdk.FactHealthy, false)
	sum := fmt.Sprintf("removed %s on %s", home, req.Node.Host)
	if len(prevs) > 0 {
		sum += ", the earlier versions its upgrades kept (" + strings.Join(prevs, ", ") + ")"
	}
	if len(targets) > kept {
		sum += " and its data " + strings.Join(targets[kept:], ", ")
	} else if req.Purge {
		sum += " (its data was inside it)"
	}
	if strings.TrimSpace(cleaned.Output) == "removed" {
		sum += fmt.Sprintf("; no role is left in %s, so its package cache went too", dir)
	}
	return sdk.Result{Summary: sum, Facts: facts}, nil
}

// CacheCleanScript removes installDir's package cache (.packages) and
// upgrade staging area (.upgrade) once no folder in installDir holds a
// package marker, that is once the last role the manager installed there
// (and every previous version kept by an upgrade) is gone. Roles removed
// at once on one host each run it after their own removal, so the last
// to finish sees the others gone. $1 installDir, $2 the marker's name.
const CacheCleanScript = `dir=$1; marker=$2
for m in "$dir"/*/"$marker"; do
  [ -e "$m" ] && exit 0
done
[ -e "$dir/.packages" ] || [ -e "$dir/.upgrade" ] || exit 0
rm -rf -- "$dir/.packages" "$dir/.upgrade" && echo removed
`

// PreviousHomesScript lists the folders upgrades kept a home's earlier
// versions in: <home>.prev-<version> beside it, holding the manager's
// package marker (a folder of that name without it is not the manager's).
// $1 the home, $2 the marker's name.
const PreviousHomesScript = `home=$1; marker=$2
for m in "$home".prev-*/"$marker"; do
  [ -e "$m" ] && printf '%s\n' "${m%/*}"
done
exit 0
`

// previousHomes lists the earlier versions upgrades kept beside home
// (<home>.prev-<version>; the newest is also named in the home's
// previousFile, the older ones by nothing but their name).
func previousHomes(ctx context.Context, h sdk.Host, dir, home string) ([]string, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"bash", "-c", PreviousHomesScript, "doris-previous", home, markerFile}})
	if err != nil {
		return nil, fmt.Errorf("list the earlier versions of %s: %w", home, err)
	}
	if res.ExitCode != 0 {
		return nil, sdk.Failf("list the earlier versions of %s: %s", home, execErr(res, nil))
	}
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(res.Output), "\n") {
		if p == "" {
			continue
		}
		// The names come from the host: only siblings of the home inside
		// installDir are deleted.
		if path.Clean(p) != p || path.Dir(p) != path.Dir(home) || !strings.HasPrefix(path.Base(p), path.Base(home)+".prev-") || !within(p, dir) {
			return nil, sdk.Failf("%q is not a %s.prev-<version> folder beside %s: remove it by hand if it is an earlier version", p, home, home)
		}
		out = append(out, p)
	}
	return out, nil
}

// dataDirs lists the role's data dirs from the deployed conf, or from the
// facts Configure reported when the conf is gone.
func (b *Base) dataDirs(ctx context.Context, h sdk.Host, req sdk.Request) ([]string, error) {
	d, err := b.Load(ctx, h, req)
	if err == nil {
		return DataDirs(b.Spec, d)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var out []string
	switch b.Spec.Role {
	case RoleFE:
		if v := req.Node.Facts["metaDir"]; v != "" {
			out = append(out, v)
		}
	case RoleBE:
		for _, p := range strings.Split(req.Node.Facts["storageRootPath"], ";") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// DataDirs are the role's data dirs as the deployed conf names them: FE
// meta_dir (default ${DORIS_HOME}/doris-meta), BE storage_root_path
// entries (default ${DORIS_HOME}/storage); none for the broker.
func DataDirs(s Spec, d Deployed) ([]string, error) {
	switch s.Role {
	case RoleFE:
		meta := "${DORIS_HOME}/doris-meta"
		if v, ok := d.Conf.Get("meta_dir"); ok && v != "" {
			meta = v
		}
		m, err := Expand(meta, d.Vars)
		if err != nil || !strings.HasPrefix(m, "/") {
			return nil, sdk.Failf("%s: meta_dir = %q must be an absolute path or use ${DORIS_HOME} (%v)", d.ConfPath, meta, errOr(err, "relative path"))
		}
		return []string{path.Clean(m)}, nil
	case RoleBE:
		val := "${DORIS_HOME}/storage"
		if v, ok := d.Conf.Get("storage_root_path"); ok && v != "" {
			val = v
		}
		roots, err := ParseStorageRoots(val, d.Vars)
		if err != nil {
			return nil, sdk.Failf("%s: %v", d.ConfPath, err)
		}
		var out []string
		for _, r := range roots {
			out = append(out, path.Clean(r.Path))
		}
		return out, nil
	}
	return nil, nil
}

// removable refuses paths whose removal would take more than a role home
// with it: relative paths and anything shallower than /a/b.
func removable(p string) error {
	clean := path.Clean(p)
	if !path.IsAbs(clean) || strings.Count(clean, "/") < 2 {
		return sdk.Failf("refusing to remove %q: not a role folder (an absolute path at least two levels deep)", p)
	}
	return nil
}

// checkDataDir refuses to purge a data dir that is relative, shallower
// than /a/b, or is or holds the install dir (and so every role's home).
func checkDataDir(p, installDir string) error {
	if !path.IsAbs(p) || strings.Count(path.Clean(p), "/") < 2 {
		return sdk.Failf("refusing to purge data dir %q: not an absolute path at least two levels deep; remove it by hand if it really is the role's data", p)
	}
	if within(installDir, p) {
		return sdk.Failf("refusing to purge data dir %q: it holds the install dir %s; remove the role's data by hand", p, installDir)
	}
	return nil
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+"/")
}
