package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dorismanager/dorismanager/core/preflight"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/dorissim"
)

// PluginVersion is the version stamped into the plugins Build makes.
const PluginVersion = "1.0.0"

// RepoRoot finds the module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// DevKey is the development signing key Build makes in binDir once, as
// `make build` does (bin/dev-plugin-key, 0600; its public key beside it
// with ".pub"). StartManager trusts it.
const DevKey = "dev-plugin-key"

// The Doris simulator and its packer in the bin dir (Build) or a
// sandbox's work dir.
const (
	simName      = "dorissim"
	packToolName = "dorissim-pack"
)

// buildSimTools builds the Doris simulator and its packer into dir.
func buildSimTools(ctx context.Context, dir string) error {
	if err := dorissim.BuildBinary(ctx, filepath.Join(dir, simName)); err != nil {
		return fmt.Errorf("build the Doris simulator: %w", err)
	}
	return dorissim.BuildPackTool(ctx, filepath.Join(dir, packToolName))
}

// Build compiles the manager, the agent (for this machine's architecture
// only) and the three role plugins into binDir with the layout `make build`
// uses, each plugin with its checksum
// file signed with binDir's development key (made once).
func Build(ctx context.Context, binDir string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	build := func(out, pkg string, ldflags string, env ...string) error {
		args := []string{"build", "-o", out}
		if ldflags != "" {
			args = append(args, "-ldflags", ldflags)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", pkg, err, b)
		}
		return nil
	}
	if err := build(filepath.Join(binDir, "dorismanager"), "./cmd/dorismanager", ""); err != nil {
		return err
	}
	// The Doris simulator and its packer, once for every sandbox.
	if err := buildSimTools(ctx, binDir); err != nil {
		return err
	}
	// The agent for this machine's architecture (the test hosts' own), where
	// the manager looks for it: agents/linux-<arch>/doris-agent beside it.
	if err := build(preflight.AgentPath(filepath.Join(binDir, "agents"), runtime.GOARCH), "./cmd/doris-agent", "-s -w", "CGO_ENABLED=0"); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(binDir, DevKey)); errors.Is(err, os.ErrNotExist) {
		if err := manage(ctx, binDir, "plugins", "keygen", filepath.Join(binDir, DevKey)); err != nil {
			return err
		}
	}
	for _, role := range []string{"fe", "be", "broker"} {
		name := fmt.Sprintf("doris-role-%s_v%s_x%d.%d_%s_%s", role, PluginVersion, sdk.APIMajor, sdk.APIMinor, runtime.GOOS, runtime.GOARCH)
		out := filepath.Join(binDir, "plugins", role, name)
		if err := build(out, "./plugins/"+role, "-X main.version="+PluginVersion); err != nil {
			return err
		}
		if err := SignPlugin(ctx, binDir, out); err != nil {
			return err
		}
	}
	return nil
}

// SignPlugin writes a plugin file's checksum file and its signature with
// binDir's development key (dorismanager plugins sign).
func SignPlugin(ctx context.Context, binDir, file string) error {
	return manage(ctx, binDir, "plugins", "sign", "--key", filepath.Join(binDir, DevKey), file)
}

// manage runs binDir's dorismanager with args.
func manage(ctx context.Context, binDir string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "dorismanager"), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dorismanager %s: %v: %s", strings.Join(args, " "), err, b)
	}
	return nil
}

// IsRoot reports whether the sandbox can run here (it needs root for
// network namespaces).
func IsRoot() bool { return os.Geteuid() == 0 }

// trimLines keeps error messages readable.
func trimLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// BuildExampleRole builds the example third-party role plugin
// (examples/exporter: a Go module of its own that depends on the SDK only)
// as out, stamped with version, and signs it with binDir's development key
// (see Build; binDir "" leaves it unsigned). Install it with `dorismanager
// plugins install`.
func BuildExampleRole(ctx context.Context, binDir, out, version string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X main.version="+version, "-o", out, ".")
	cmd.Dir = filepath.Join(root, "examples", "exporter")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build examples/exporter: %v: %s", err, b)
	}
	if binDir == "" {
		return nil
	}
	return SignPlugin(ctx, binDir, out)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
