// Command packaging builds the .deb and .rpm packages of Doris Manager from
// what `make build` wrote (`make package`): the manager (binary, role
// plugins, agent binaries of every architecture, systemd unit, config) and
// the agent (one package per architecture). It is a Go module of its own so
// that nfpm and its dependencies stay out of the manager's.
package main

import (
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers "deb"
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers "rpm"
)

// Where the packages put things; the unit (files/dorismanager.service) and
// the scripts name the same paths, and core/preflight finds LibDir's
// plugins/ and agents/ from /usr/bin without flags.
const (
	BinPath   = "/usr/bin/dorismanager"
	LibDir    = "/usr/lib/dorismanager"
	UnitPath  = "/usr/lib/systemd/system/dorismanager.service"
	EnvPath   = "/etc/dorismanager/dorismanager.env"
	KeysDir   = "/usr/share/dorismanager/plugin-keys"
	DocDir    = "/usr/share/doc/dorismanager"
	AgentPath = "/usr/bin/doris-agent"
)

//go:embed files
var embedded embed.FS

// Options say what to package and where to.
type Options struct {
	Bin     string // make build's output folder: dorismanager, plugins/, agents/linux-<arch>/doris-agent
	Out     string // the packages go here
	Version string // VERSION of make build; one not starting with a digit becomes 0.0.0~<it>
	// PluginKey is the public key the plugins in Bin are signed with; the
	// manager package trusts it at install. Default <Bin>/dev-plugin-key.pub.
	PluginKey string
	License   string   // the LICENSE file, installed into the doc folder
	Arches    []string // agent architectures (GOARCH); every one must be in Bin
	Formats   []string // "deb", "rpm"
}

// DefaultArches are the agent architectures the manager carries
// (core/preflight.AgentArches).
var DefaultArches = []string{"amd64", "arm64"}

// Build writes the packages and returns their paths.
func Build(o Options) ([]string, error) {
	if o.PluginKey == "" {
		o.PluginKey = filepath.Join(o.Bin, "dev-plugin-key.pub")
	}
	if len(o.Arches) == 0 {
		o.Arches = DefaultArches
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{"deb", "rpm"}
	}
	scripts, err := os.MkdirTemp("", "dorismanager-package-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scripts)
	if err := os.CopyFS(scripts, mustSub(embedded, "files")); err != nil {
		return nil, fmt.Errorf("unpack the package files: %w", err)
	}
	manager, err := managerInfo(o, scripts)
	if err != nil {
		return nil, err
	}
	infos := []func(format string) (*nfpm.Info, error){manager}
	for _, arch := range o.Arches {
		infos = append(infos, func(string) (*nfpm.Info, error) { return agentInfo(o, arch) })
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, format := range o.Formats {
		packager, err := nfpm.Get(format)
		if err != nil {
			return nil, err
		}
		for _, mk := range infos {
			// Packagers change the Info they are given: a new one each time.
			info, err := mk(format)
			if err != nil {
				return nil, err
			}
			info = nfpm.WithDefaults(info)
			if err := nfpm.PrepareForPackager(info, format); err != nil {
				return nil, fmt.Errorf("%s %s: %w", format, info.Name, err)
			}
			p := filepath.Join(o.Out, packager.ConventionalFileName(info))
			if err := write(p, func(f *os.File) error { return packager.Package(info, f) }); err != nil {
				return nil, fmt.Errorf("%s %s: %w", format, info.Name, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// write makes p through a temp file, so a failed build leaves no package.
func write(p string, fill func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".package-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// common fills what every package says.
func common(name, arch, version, description string) *nfpm.Info {
	info := &nfpm.Info{
		Name:        name,
		Arch:        arch,
		Platform:    "linux",
		Maintainer:  "Doris Manager <dorismanager@localhost>",
		Description: description,
		License:     "Apache-2.0",
		Section:     "admin",
		Priority:    "optional",
	}
	if version != "" && version[0] >= '0' && version[0] <= '9' || strings.HasPrefix(version, "v") && len(version) > 1 && version[1] >= '0' && version[1] <= '9' {
		info.Version = version
	} else {
		// An unreleased build ("dev"): before every release.
		info.Version, info.Prerelease, info.VersionSchema = "0.0.0", sanitize(cmpOr(version, "dev")), "none"
	}
	return info
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sanitize keeps what deb and rpm versions allow.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '+' {
			return r
		}
		return '.'
	}, s)
}

func file(src, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root"}}
}

// managerInfo checks Bin and returns the manager package's Info maker.
func managerInfo(o Options, scripts string) (func(format string) (*nfpm.Info, error), error) {
	bin := filepath.Join(o.Bin, "dorismanager")
	arch, err := elfArch(bin)
	if err != nil {
		return nil, fmt.Errorf("the manager binary: %w (run make build first)", err)
	}
	var contents files.Contents
	add := func(c *files.Content) { contents = append(contents, c) }
	add(file(bin, BinPath, 0o755))

	// The role plugins with their checksum and signature files.
	plugins := filepath.Join(o.Bin, "plugins")
	n := 0
	err = filepath.WalkDir(plugins, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(plugins, p)
		mode := os.FileMode(0o644)
		if !strings.HasSuffix(p, "_SHA256SUM") && !strings.HasSuffix(p, "_SHA256SUM.sig") {
			if a, err := elfArch(p); err != nil || a != arch {
				return fmt.Errorf("plugin %s is not a linux/%s program (%s, %v)", p, arch, a, err)
			}
			if _, err := os.Stat(p + "_SHA256SUM.sig"); err != nil {
				return fmt.Errorf("plugin %s is not signed (%w): make build signs it", p, err)
			}
			mode, n = 0o755, n+1
		}
		add(file(p, filepath.Join(LibDir, "plugins", rel), mode))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the role plugins: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("no role plugins in %s: run make build first", plugins)
	}
	if _, err := os.Stat(o.PluginKey); err != nil {
		return nil, fmt.Errorf("the public key the plugins are signed with: %w", err)
	}
	add(file(o.PluginKey, filepath.Join(KeysDir, filepath.Base(o.PluginKey)), 0o644))

	for _, a := range o.Arches {
		p, err := agentBinary(o.Bin, a)
		if err != nil {
			return nil, err
		}
		add(file(p, filepath.Join(LibDir, "agents", "linux-"+a, "doris-agent"), 0o755))
	}
	add(file(filepath.Join(scripts, "dorismanager.service"), UnitPath, 0o644))
	env := file(filepath.Join(scripts, "dorismanager.env"), EnvPath, 0o640)
	env.Type = files.TypeConfigNoReplace
	add(env)
	if o.License != "" {
		add(file(o.License, filepath.Join(DocDir, "LICENSE"), 0o644))
	}
	sort.Slice(contents, func(i, j int) bool { return contents[i].Destination < contents[j].Destination })

	return func(format string) (*nfpm.Info, error) {
		info := common("dorismanager", arch, o.Version, "Doris Manager: installs and runs Apache Doris clusters\n"+
			"A control plane that installs Apache Doris (FE, BE, BROKER) on bare Linux\n"+
			"hosts over SSH and runs the clusters: the server (systemd unit\n"+
			"dorismanager.service), its role plugins and the agent it installs on hosts.")
		// Fresh copies: packagers rewrite the contents they are given.
		for _, c := range contents {
			cc := *c
			fi := *c.FileInfo
			cc.FileInfo = &fi
			info.Contents = append(info.Contents, &cc)
		}
		info.Scripts = nfpm.Scripts{PostInstall: filepath.Join(scripts, "postinstall.sh"),
			PreRemove: filepath.Join(scripts, "preremove.sh"), PostRemove: filepath.Join(scripts, "postremove.sh")}
		// The scripts' useradd and groupadd.
		info.Depends = []string{map[string]string{"deb": "passwd", "rpm": "shadow-utils"}[format]}
		info.RPM.Summary = "Doris Manager: installs and runs Apache Doris clusters"
		return info, nil
	}, nil
}

// agentInfo is the doris-agent package of one architecture.
func agentInfo(o Options, arch string) (*nfpm.Info, error) {
	p, err := agentBinary(o.Bin, arch)
	if err != nil {
		return nil, err
	}
	info := common("doris-agent", arch, o.Version, "Doris Manager agent\n"+
		"The agent Doris Manager runs on every host of a cluster. The manager\n"+
		"installs its own copy per cluster over SSH; this package puts the binary\n"+
		"in /usr/bin for hosts whose software comes from packages.")
	info.Contents = files.Contents{file(p, AgentPath, 0o755)}
	if o.License != "" {
		info.Contents = append(info.Contents, file(o.License, "/usr/share/doc/doris-agent/LICENSE", 0o644))
	}
	info.RPM.Summary = "Doris Manager agent"
	return info, nil
}

// agentBinary is make build's agent for linux/arch, checked to be one.
func agentBinary(bin, arch string) (string, error) {
	p := filepath.Join(bin, "agents", "linux-"+arch, "doris-agent")
	a, err := elfArch(p)
	switch {
	case err != nil:
		return "", fmt.Errorf("the agent for linux/%s: %w (make build cross-compiles it)", arch, err)
	case a != arch:
		return "", fmt.Errorf("%s is a linux/%s program, not linux/%s", p, a, arch)
	}
	return p, nil
}

// elfArch is the GOARCH of a Linux program.
func elfArch(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("%s is not a Linux program: %w", p, err)
	}
	defer f.Close()
	arches := map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}
	a, ok := arches[f.Machine]
	if !ok {
		return f.Machine.String(), fmt.Errorf("%s is a program for %s, which has no package here", p, f.Machine)
	}
	if !slices.Contains(DefaultArches, a) {
		return a, fmt.Errorf("%s: %s has no package here", p, a)
	}
	return a, nil
}
