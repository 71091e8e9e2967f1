package pluginhost

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

const cliUsage = `usage: dorismanager plugins [flags] COMMAND
commands:
  list                    accepted plugins, refused files, pins
  verify                  check every file; exit 1 if any is refused
  install FILE            check FILE's describe and install it under its canonical name
  remove ROLE VERSION     remove a version no cluster is pinned to
flags:
`

// CLI runs "dorismanager plugins ..." and returns the exit code. Pins are
// read from the manager's database: --db (a PostgreSQL URL/DSN or a SQLite
// file) or else <data-dir>/dorismanager.db when it exists.
func CLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("plugins-dir", "bin/plugins", "plugins directory")
	dataDir := fs.String("data-dir", "data", "the manager's data directory (for pins)")
	dsn := fs.String("db", "", "database: postgres://... or a SQLite file (default <data-dir>/dorismanager.db)")
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
	db, err := openCLIDB(*dsn, *dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "plugins: %v\n", err)
		return 1
	}
	if db != nil {
		if sqlDB, err := db.DB(); err == nil {
			defer sqlDB.Close()
		}
	}
	cmd, cmdArgs := rest[0], rest[1:]
	switch {
	case cmd == "list" && len(cmdArgs) == 0:
		return cliList(ctx, *dir, db, stdout, stderr, false)
	case cmd == "verify" && len(cmdArgs) == 0:
		return cliList(ctx, *dir, db, stdout, stderr, true)
	case cmd == "install" && len(cmdArgs) == 1:
		p, err := Install(ctx, *dir, cmdArgs[0])
		if err != nil {
			fmt.Fprintf(stderr, "plugins install: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "installed %s %s as %s (sha256 %s)\n", p.Role, p.Version, p.Path, p.SHA256)
		return 0
	case cmd == "remove" && len(cmdArgs) == 2:
		path, err := Remove(ctx, *dir, db, cmdArgs[0], cmdArgs[1])
		if err != nil {
			fmt.Fprintf(stderr, "plugins remove: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed %s\n", path)
		return 0
	default:
		fs.Usage()
		return 2
	}
}

func openCLIDB(dsn, dataDir string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	if dsn == "" {
		path := filepath.Join(dataDir, "dorismanager.db")
		if _, err := os.Stat(path); err != nil {
			return nil, nil // no database yet: no pins
		}
		dsn = path
	}
	var db *gorm.DB
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || strings.Contains(dsn, "host=") {
		db, err = gorm.Open(postgres.Open(dsn), cfg)
	} else {
		db, err = gorm.Open(sqlite.Open(dsn), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if !db.Migrator().HasTable(&store.PluginPin{}) {
		return nil, nil
	}
	return db, nil
}

func cliList(ctx context.Context, dir string, db *gorm.DB, stdout, stderr io.Writer, verifyOnly bool) int {
	m, err := New(Config{Dir: dir, DB: db})
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
	if verifyOnly {
		for _, r := range o.Roles {
			for _, v := range r.Versions {
				fmt.Fprintf(tw, "OK\t%s\t%s\n", v.File, v.SHA256)
			}
		}
		for _, r := range o.Refused {
			fmt.Fprintf(tw, "REFUSED\t%s\t%s\n", r.File, r.Reason)
		}
		_ = tw.Flush()
		if len(o.Refused) > 0 {
			fmt.Fprintf(stderr, "%d file(s) refused in %s\n", len(o.Refused), dir)
			return 1
		}
		return 0
	}
	fmt.Fprintf(tw, "ROLE\tVERSION\tAPI\tSHA256\tFILE\n")
	for _, r := range o.Roles {
		for _, v := range r.Versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Role, v.Version, v.APIVersion, v.SHA256, v.File)
		}
	}
	_ = tw.Flush()
	if len(o.Refused) > 0 {
		fmt.Fprintf(stdout, "\nREFUSED\n")
		for _, r := range o.Refused {
			fmt.Fprintf(tw, "%s\t%s\n", r.File, r.Reason)
		}
		_ = tw.Flush()
	}
	if len(o.Clusters) > 0 {
		fmt.Fprintf(stdout, "\nCLUSTER\tROLE\tVERSION\n")
		for _, c := range o.Clusters {
			how := "pinned"
			if !c.Pinned {
				how = "default"
			}
			fmt.Fprintf(tw, "%d %s\t%s\t%s (%s)\n", c.ClusterID, c.ClusterName, c.Role, c.Version, how)
		}
		_ = tw.Flush()
	}
	return 0
}

// Install checks a plugin binary's describe and copies it into dir under
// its canonical name with its checksum file. Installing the same bytes
// again is a no-op; different bytes for an installed version are refused.
func Install(ctx context.Context, dir, file string) (Plugin, error) {
	info, err := describeFile(ctx, file)
	if err != nil {
		return Plugin{}, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case !roleNameRe.MatchString(info.Role):
		return Plugin{}, fmt.Errorf("%s: describe gives role %q; a role is upper-case letters and digits", file, info.Role)
	case !validSemver(info.Version):
		return Plugin{}, fmt.Errorf("%s: describe gives version %q, not a semantic version like 1.2.0", file, info.Version)
	case info.APIMajor != sdk.APIMajor:
		return Plugin{}, fmt.Errorf("%s: speaks plugin API %d.%d, this manager speaks API %d.x", file, info.APIMajor, info.APIMinor, sdk.APIMajor)
	}
	sum, err := fileSHA256(file)
	if err != nil {
		return Plugin{}, err
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
	if err := copyFileAtomic(file, dest, 0o755); err != nil {
		return Plugin{}, err
	}
	if err := writeFileAtomic(dest+SumSuffix, sumFileContent(sum, name), 0o644); err != nil {
		return Plugin{}, err
	}
	p, err := verify(ctx, dest, strings.ToLower(info.Role))
	if err != nil {
		return Plugin{}, fmt.Errorf("installed %s but it does not verify: %w", dest, err)
	}
	return p, nil
}

// Remove deletes an installed version and its checksum file, unless a
// cluster is pinned to it (ErrInUse). db may be nil (no pins).
func Remove(ctx context.Context, dir string, db *gorm.DB, role, version string) (string, error) {
	role = strings.ToUpper(role)
	if db != nil {
		var pins []store.PluginPin
		if err := db.WithContext(ctx).Where("role = ? AND version = ?", role, version).Find(&pins).Error; err != nil {
			return "", fmt.Errorf("read pins: %w", err)
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
		if strings.HasSuffix(f, SumSuffix) {
			continue
		}
		if err := os.Remove(f); err != nil {
			return "", err
		}
		if err := os.Remove(f + SumSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
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
