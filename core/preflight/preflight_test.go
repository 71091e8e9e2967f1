package preflight

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHostArch(t *testing.T) {
	for _, tc := range []struct {
		kernel, machine string
		want            string // GOARCH, or "" for a refusal
		says            []string
	}{
		{"Linux", "x86_64", "amd64", nil},
		{"Linux", "x86_64\n", "amd64", nil},
		{"Linux", "amd64", "amd64", nil},
		{"Linux", "aarch64", "arm64", nil},
		{"Linux", "arm64", "arm64", nil},
		{"Linux", "mips", "", []string{`"mips" (uname -m)`, "x86_64 (linux/amd64)", "aarch64 (linux/arm64)"}},
		{"Linux", "armv7l", "", []string{`"armv7l"`}},
		{"Linux", "armv8l", "", []string{`"armv8l"`}}, // 32-bit userland on an ARMv8 kernel
		{"Linux", "i686", "", []string{`"i686"`}},
		{"Linux", "ppc64le", "", []string{`"ppc64le"`}},
		{"Linux", "", "", []string{`""`}},
		{"FreeBSD", "amd64", "", []string{`"FreeBSD" (uname -s), not Linux`}},
		{"Darwin", "arm64", "", []string{`"Darwin"`}},
	} {
		t.Run(tc.kernel+"/"+tc.machine, func(t *testing.T) {
			got, err := HostArch(tc.kernel, tc.machine)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("HostArch = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrUnsupportedArch) {
				t.Fatalf("HostArch = %q, %v; want ErrUnsupportedArch", got, err)
			}
			for _, s := range append(tc.says, "the manager carries agents for Linux on") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// Machines and HostArch say the same: every name of an architecture maps
// back to it.
func TestMachines(t *testing.T) {
	for _, arch := range AgentArches {
		ms := Machines(arch)
		if len(ms) == 0 {
			t.Errorf("%s: no uname -m names", arch)
		}
		for _, m := range ms {
			if got, err := HostArch("Linux", m); err != nil || got != arch {
				t.Errorf("HostArch(Linux, %s) = %s, %v; want %s", m, got, err, arch)
			}
		}
	}
}

func TestDirFrom(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("clone/bin/plugins")            // make build
	mk("usr/bin")                      // the packages
	mk("usr/lib/dorismanager/plugins") //
	mk("both/bin/agents")              // beside wins over lib
	mk("both/lib/dorismanager/agents") //
	mk("gopath/bin")                   // go install: nothing
	for _, tc := range []struct{ exe, name, want string }{
		{"clone/bin/dorismanager", "plugins", "clone/bin/plugins"},
		{"usr/bin/dorismanager", "plugins", "usr/lib/dorismanager/plugins"},
		{"usr/bin/dorismanager", "agents", "usr/bin/agents"},
		{"both/bin/dorismanager", "agents", "both/bin/agents"},
		{"gopath/bin/dorismanager", "plugins", "gopath/bin/plugins"},
	} {
		if got := dirFrom(filepath.Join(root, tc.exe), tc.name); got != filepath.Join(root, tc.want) {
			t.Errorf("dirFrom(%s, %s) = %s, want %s", tc.exe, tc.name, got, filepath.Join(root, tc.want))
		}
	}
}

func TestCheck(t *testing.T) {
	write := func(t *testing.T, p string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	plugin := func(t *testing.T, dir string) {
		name := filepath.Join(dir, "fe", "doris-role-fe_v1.0.0_x2.0_linux_amd64")
		write(t, name, 0o755)
		write(t, name+"_SHA256SUM", 0o644)
		write(t, name+"_SHA256SUM.sig", 0o644)
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, plugins, agents string)
		want    []string // one substring per problem, in order
		fatal   bool
		noSetup bool
	}{
		{name: "complete", setup: func(t *testing.T, p, a string) {
			plugin(t, p)
			write(t, AgentPath(a, "amd64"), 0o755)
			write(t, AgentPath(a, "arm64"), 0o755)
		}},
		{name: "nothing at all (go install)", noSetup: true, fatal: true,
			want: []string{"does not exist", "linux/amd64", "linux/arm64"}},
		{name: "one agent architecture missing", setup: func(t *testing.T, p, a string) {
			plugin(t, p)
			write(t, AgentPath(a, "amd64"), 0o755)
		}, want: []string{"no agent binary for linux/arm64 at " + filepath.Join("AGENTS", "linux-arm64", "doris-agent") + ": installAgent refuses aarch64 hosts"}},
		{name: "agent not executable", setup: func(t *testing.T, p, a string) {
			plugin(t, p)
			write(t, AgentPath(a, "amd64"), 0o644)
			write(t, AgentPath(a, "arm64"), 0o755)
		}, want: []string{"linux-amd64/doris-agent is not an executable file"}},
		{name: "plugins dir empty, agents there", setup: func(t *testing.T, p, a string) {
			write(t, filepath.Join(p, "fe", "doris-role-fe_v1_SHA256SUM"), 0o644) // a checksum file alone is no plugin
			write(t, AgentPath(a, "amd64"), 0o755)
			write(t, AgentPath(a, "arm64"), 0o755)
		}, want: []string{"no role plugins in"}},
		{name: "plugins there, no agents", setup: func(t *testing.T, p, a string) { plugin(t, p) },
			want: []string{"linux/amd64", "linux/arm64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			plugins, agents := filepath.Join(root, "plugins"), filepath.Join(root, "agents")
			if !tc.noSetup {
				if err := os.MkdirAll(plugins, 0o755); err != nil {
					t.Fatal(err)
				}
				tc.setup(t, plugins, agents)
			}
			got := Check(plugins, agents)
			if len(got) != len(tc.want) {
				t.Fatalf("Check = %v, want %d problems", got, len(tc.want))
			}
			for i, p := range got {
				want := strings.ReplaceAll(tc.want[i], "AGENTS", agents)
				if !strings.Contains(p.What, want) {
					t.Errorf("problem %d %q does not say %q", i, p.What, want)
				}
				if !strings.Contains(p.Fix, "make build") && !strings.Contains(p.Fix, "chmod") {
					t.Errorf("problem %d says no fix: %q", i, p.Fix)
				}
				if p.Fatal != tc.fatal {
					t.Errorf("problem %d fatal %v, want %v", i, p.Fatal, tc.fatal)
				}
			}
			var log strings.Builder
			err := Report(got, hclog.New(&hclog.LoggerOptions{Output: &log}))
			if (err != nil) != tc.fatal {
				t.Fatalf("Report = %v, want an error: %v", err, tc.fatal)
			}
			if tc.fatal {
				if !strings.Contains(err.Error(), "make build") || !strings.Contains(err.Error(), PackageDir) {
					t.Errorf("the refusal says nothing to do: %v", err)
				}
				return
			}
			if n := strings.Count(log.String(), "[WARN]  MISSING: "); n != len(tc.want) {
				t.Errorf("%d warnings logged, want %d:\n%s", n, len(tc.want), log.String())
			}
		})
	}
}
