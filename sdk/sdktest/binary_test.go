package sdktest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk/sdktest"
	"github.com/dorismanager/dorismanager/sdk/sdktest/internal/minirole"
)

// buildMini builds testdata/miniplugin, misbehaving as mode says.
func buildMini(t *testing.T, mode string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "miniplugin-"+mode)
	cmd := exec.Command("go", "build", "-ldflags", "-X main.mode="+mode, "-o", bin, "./testdata/miniplugin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build miniplugin: %v\n%s", err, out)
	}
	return bin
}

// Conformance with a binary runs every call through the handshake and
// gRPC to the process.
func TestConformanceBinary(t *testing.T) {
	sdktest.Conformance(t, minirole.Role{Version: "1.0.0"}, sdktest.WithBinary(buildMini(t, "")),
		sdktest.WithHost(scriptedHost))
}

// TestConformanceBadBinary is run in a child process by
// TestConformanceCatchesBadBinaries, with SDKTEST_BADBIN naming the binary.
func TestConformanceBadBinary(t *testing.T) {
	bin := os.Getenv("SDKTEST_BADBIN")
	if bin == "" {
		t.Skip("run by TestConformanceCatchesBadBinaries")
	}
	sdktest.Conformance(t, minirole.Role{Version: "1.0.0"}, sdktest.WithBinary(bin), sdktest.WithStartTimeout(2*time.Second))
}

// Binaries that exit, hang or crash when started as a plugin pass
// "describe" but fail Conformance, which names what they wrote to stderr.
func TestConformanceCatchesBadBinaries(t *testing.T) {
	for mode, want := range map[string][]string{
		"exit":  {"cannot read /etc/mini.conf"},
		"hang":  {"timeout while waiting for plugin to start", "warming up the cache"},
		"crash": {"panic: assignment to entry in nil map", "main.main"},
	} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceBadBinary$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SDKTEST_BADBIN="+buildMini(t, mode))
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a binary that does not start:\n%s", out)
			}
			for _, w := range append(want, "did not start through the go-plugin handshake") {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// StartBinary's error names the binary's last stderr lines.
func TestStartBinaryExitAtStart(t *testing.T) {
	_, err := sdktest.StartBinary(t, buildMini(t, "exit"), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "cannot read /etc/mini.conf") {
		t.Fatalf("err = %v, want the binary's stderr", err)
	}
}
