package pluginmain

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
)

// A plugin built as the Makefile builds it says its semver and the build
// on "version", and still describes itself with the semver for the
// manager.
func TestPluginVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "doris-role-broker")
	const stamp = "github.com/dorismanager/dorismanager/internal/buildinfo"
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-ldflags",
		"-X main.version=1.4.2 -X "+stamp+".version=v0.9.0-3-gabc1234-dirty -X "+stamp+".commit=abc1234", "-o", bin, "../../broker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, VersionArg).Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"doris-role-broker 1.4.2 (plugin API " + itoa(sdk.APIMajor) + "." + itoa(sdk.APIMinor) + ")",
		"build:   v0.9.0-3-gabc1234-dirty", "commit:  abc1234", "go:      " + runtime.Version(),
		"os/arch: " + runtime.GOOS + "/" + runtime.GOARCH,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("version:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	out, err = exec.Command(bin, sdk.DescribeArg).Output()
	var info sdk.Info
	if err != nil || json.Unmarshal(out, &info) != nil || info.Version != "1.4.2" || info.Role != "BROKER" {
		t.Errorf("describe: %v %s", err, out)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
