// Package preflight knows where the manager's own parts are (role plugins
// and the agent binaries it installs on hosts) and tells, before serve
// starts, what is missing and what to do about it.
//
// Two layouts are found without flags: make build's bin/ (plugins/ and
// agents/ beside the binary) and the packages' (/usr/bin/dorismanager with
// /usr/lib/dorismanager/plugins and /usr/lib/dorismanager/agents, found as
// ../lib/dorismanager from the binary, so a copy under /usr/local works too).
package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// PackageDir is where the packages put plugins/ and agents/.
const PackageDir = "/usr/lib/dorismanager"

// AgentArches are the architectures the manager carries an agent for
// (make build cross-compiles each; GOARCH names).
var AgentArches = []string{"amd64", "arm64"}

// AgentPath is the agent binary for linux/goarch in agentsDir.
func AgentPath(agentsDir, goarch string) string {
	return filepath.Join(agentsDir, "linux-"+goarch, "doris-agent")
}

// Dir is the default folder name ("plugins" or "agents") of the running
// binary's installation.
func Dir(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return dirFrom(exe, name)
}

// dirFrom is <name> beside exe if that exists, else
// <exe's dir>/../lib/dorismanager/<name> if that exists, else the first
// (so that messages name the usual place).
func dirFrom(exe, name string) string {
	bin := filepath.Dir(exe)
	beside := filepath.Join(bin, name)
	if isDir(beside) {
		return beside
	}
	if lib := filepath.Join(filepath.Dir(bin), "lib", "dorismanager", name); isDir(lib) {
		return lib
	}
	return beside
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Problem is one missing part.
type Problem struct {
	// Fatal problems keep serve from starting: nothing of the manager's
	// installation is there (a lone binary, as `go install` makes).
	Fatal bool
	What  string // what is missing and what that breaks
	Fix   string // what to do
}

func (p Problem) String() string { return p.What + ": " + p.Fix }

// fix is what to do about a missing part of a manager run from a clone or
// from the packages.
const fix = "build them with `make build` (bin/) and run bin/dorismanager, or install the dorismanager package (" + PackageDir + ")"

// Check reports what is missing in pluginsDir and agentsDir: role plugins
// (without them no role can be installed) and an agent binary for each of
// AgentArches (without one, installAgent refuses hosts of that
// architecture). Both missing entirely is fatal.
func Check(pluginsDir, agentsDir string) []Problem {
	var out []Problem
	pluginsGone := false
	switch n, err := countPlugins(pluginsDir); {
	case errors.Is(err, os.ErrNotExist):
		pluginsGone = true
		out = append(out, Problem{What: fmt.Sprintf("no role plugins: the plugins dir %s does not exist, so no FE, BE or BROKER can be installed", pluginsDir),
			Fix: fix + "; or point --plugins-dir at them"})
	case err != nil:
		out = append(out, Problem{What: fmt.Sprintf("the plugins dir %s cannot be read (%v)", pluginsDir, err), Fix: "fix its permissions for the manager's user"})
	case n == 0:
		out = append(out, Problem{What: fmt.Sprintf("no role plugins in %s, so no FE, BE or BROKER can be installed", pluginsDir),
			Fix: fix + "; or add plugins with `dorismanager plugins install FILE`"})
	}
	var missing []string
	for _, arch := range AgentArches {
		p := AgentPath(agentsDir, arch)
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			missing = append(missing, arch)
			out = append(out, Problem{What: fmt.Sprintf("no agent binary for linux/%s at %s: installAgent refuses %s hosts", arch, p, unameOf(arch)),
				Fix: fix + "; or point --agents-dir at a folder with linux-<arch>/doris-agent"})
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			missing = append(missing, arch)
			out = append(out, Problem{What: fmt.Sprintf("the agent binary %s is not an executable file", p), Fix: "chmod 755 " + p + ", or " + fix})
		}
	}
	if pluginsGone && len(missing) == len(AgentArches) {
		for i := range out {
			out[i].Fatal = true
		}
	}
	return out
}

// unameMachines are the `uname -m` answers of the hosts of each of
// AgentArches (Linux says x86_64 and aarch64; the others are the same
// machines under the names other systems use).
var unameMachines = map[string][]string{"amd64": {"x86_64", "amd64"}, "arm64": {"aarch64", "arm64"}}

// Machines are the `uname -m` answers of the hosts that run the agent of
// goarch.
func Machines(goarch string) []string { return slices.Clone(unameMachines[goarch]) }

// unameOf is what `uname -m` says on Linux hosts of goarch.
func unameOf(goarch string) string { return unameMachines[goarch][0] }

// ErrUnsupportedArch is a host the manager has no agent for.
var ErrUnsupportedArch = errors.New("unsupported host")

// HostArch is the agent architecture (GOARCH) for a host whose `uname -s`
// and `uname -m` are kernel and machine; an error names what the host is
// and what is supported.
func HostArch(kernel, machine string) (string, error) {
	kernel, machine = strings.TrimSpace(kernel), strings.TrimSpace(machine)
	var known []string
	for _, arch := range AgentArches {
		known = append(known, fmt.Sprintf("%s (linux/%s)", unameOf(arch), arch))
	}
	supported := "the manager carries agents for Linux on " + strings.Join(known, " and ") + " only"
	if kernel != "Linux" {
		return "", fmt.Errorf("%w: the host runs %q (uname -s), not Linux: %s", ErrUnsupportedArch, kernel, supported)
	}
	for _, arch := range AgentArches {
		for _, m := range unameMachines[arch] {
			if machine == m {
				return arch, nil
			}
		}
	}
	return "", fmt.Errorf("%w: the host's architecture is %q (uname -m): %s", ErrUnsupportedArch, machine, supported)
}

// countPlugins counts the plugin files in dir (<role>/<file>, without
// their checksum and signature files); whether they are signed and
// trusted is pluginhost's to say.
func countPlugins(dir string) (int, error) {
	roles, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range roles {
		if !r.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, r.Name()))
		if err != nil {
			return 0, err
		}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "_SHA256SUM") || strings.HasSuffix(name, "_SHA256SUM.sig") {
				continue
			}
			n++
		}
	}
	return n, nil
}

// Report logs every problem as a warning and returns an error naming them
// all when one is fatal (serve then does not start).
func Report(problems []Problem, log hclog.Logger) error {
	var fatal []string
	for _, p := range problems {
		if p.Fatal {
			fatal = append(fatal, p.What)
			continue
		}
		log.Warn("MISSING: "+p.What, "what_to_do", p.Fix)
	}
	if len(fatal) > 0 {
		return fmt.Errorf("the manager's role plugins and agent binaries are missing (a `go install`ed binary comes without them):\n  %s\nwhat to do: %s, or point --plugins-dir and --agents-dir at them",
			strings.Join(fatal, "\n  "), fix)
	}
	return nil
}
