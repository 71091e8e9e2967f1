package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goreleaser/nfpm/v2"
)

// fakeELF writes an ELF header for machine, with a marker after it so
// files can be told apart; debug/elf reads it as a program of machine.
func fakeELF(t *testing.T, p string, machine elf.Machine) []byte {
	t.Helper()
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: 1, Ehsize: 64, Phentsize: 56, Shentsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n" + p + "\n")
	writeFile(t, p, b.Bytes(), 0o755)
	return b.Bytes()
}

func writeFile(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

const pluginName = "doris-role-fe_v1.0.0_x2.0_linux_amd64"

// fakeBin lays out what make build writes on an amd64 machine and returns
// the agents' bytes by architecture.
func fakeBin(t *testing.T, bin string) map[string][]byte {
	fakeELF(t, filepath.Join(bin, "dorismanager"), elf.EM_X86_64)
	plugin := filepath.Join(bin, "plugins", "fe", pluginName)
	fakeELF(t, plugin, elf.EM_X86_64)
	writeFile(t, plugin+"_SHA256SUM", []byte("sum\n"), 0o644)
	writeFile(t, plugin+"_SHA256SUM.sig", []byte("sig\n"), 0o644)
	writeFile(t, filepath.Join(bin, "dev-plugin-key.pub"), []byte("public key\n"), 0o644)
	return map[string][]byte{
		"amd64": fakeELF(t, filepath.Join(bin, "agents", "linux-amd64", "doris-agent"), elf.EM_X86_64),
		"arm64": fakeELF(t, filepath.Join(bin, "agents", "linux-arm64", "doris-agent"), elf.EM_AARCH64),
	}
}

func embeddedFile(t *testing.T, name string) string {
	t.Helper()
	b, err := embedded.ReadFile("files/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The manager's files and their modes, in both formats.
var managerFiles = map[string]os.FileMode{
	BinPath:                              0o755,
	LibDir + "/plugins/fe/" + pluginName: 0o755,
	LibDir + "/plugins/fe/" + pluginName + "_SHA256SUM":     0o644,
	LibDir + "/plugins/fe/" + pluginName + "_SHA256SUM.sig": 0o644,
	LibDir + "/agents/linux-amd64/doris-agent":              0o755,
	LibDir + "/agents/linux-arm64/doris-agent":              0o755,
	UnitPath:                        0o644,
	EnvPath:                         0o640,
	KeysDir + "/dev-plugin-key.pub": 0o644,
	DocDir + "/LICENSE":             0o644,
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	bin, out := filepath.Join(dir, "bin"), filepath.Join(dir, "dist")
	agents := fakeBin(t, bin)
	license := filepath.Join(dir, "LICENSE")
	writeFile(t, license, []byte("Apache License 2.0\n"), 0o644)
	got, err := Build(Options{Bin: bin, Out: out, Version: "dev", License: license})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	want := []string{"doris-agent-0.0.0~dev-1.aarch64.rpm", "doris-agent-0.0.0~dev-1.x86_64.rpm", "doris-agent_0.0.0~dev_amd64.deb",
		"doris-agent_0.0.0~dev_arm64.deb", "dorismanager-0.0.0~dev-1.x86_64.rpm", "dorismanager_0.0.0~dev_amd64.deb"}
	sort.Strings(names)
	if !slices.Equal(names, want) {
		t.Fatalf("packages %q, want %q", names, want)
	}

	t.Run("manager deb", func(t *testing.T) {
		d, err := readDeb(filepath.Join(out, "dorismanager_0.0.0~dev_amd64.deb"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"Package": "dorismanager", "Version": "0.0.0~dev", "Architecture": "amd64", "Depends": "passwd"} {
			if d.control[k] != v {
				t.Errorf("control %s = %q, want %q", k, d.control[k], v)
			}
		}
		for script, file := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
			if d.meta[script] != embeddedFile(t, file) {
				t.Errorf("%s is not files/%s:\n%s", script, file, d.meta[script])
			}
		}
		if strings.TrimSpace(d.meta["conffiles"]) != EnvPath {
			t.Errorf("conffiles %q, want %s", d.meta["conffiles"], EnvPath)
		}
		checkFiles(t, d.files, managerFiles)
		for arch, data := range agents {
			if f := d.files[LibDir+"/agents/linux-"+arch+"/doris-agent"]; !bytes.Equal(f.data, data) {
				t.Errorf("the linux-%s agent is not bin's", arch)
			}
		}
		if string(d.files[UnitPath].data) != embeddedFile(t, "dorismanager.service") {
			t.Error("the unit is not files/dorismanager.service")
		}
	})

	t.Run("manager rpm", func(t *testing.T) {
		r, err := readRPM(filepath.Join(out, "dorismanager-0.0.0~dev-1.x86_64.rpm"))
		if err != nil {
			t.Fatal(err)
		}
		for tag, v := range map[int32]string{tagName: "dorismanager", tagVersion: "0.0.0~dev", tagRelease: "1", tagArch: "x86_64", tagOS: "linux",
			tagPostIn: embeddedFile(t, "postinstall.sh"), tagPreUn: embeddedFile(t, "preremove.sh"), tagPostUn: embeddedFile(t, "postremove.sh")} {
			if got := r.str(tag); got != v {
				t.Errorf("tag %d = %q, want %q", tag, got, v)
			}
		}
		if !slices.Contains(r.strs[tagRequireName], "shadow-utils") {
			t.Errorf("requires %q, want shadow-utils", r.strs[tagRequireName])
		}
		// The header's list and the payload agree, and are the files.
		list := r.fileList()
		checkFiles(t, r.files, managerFiles)
		for i, p := range list {
			flags := r.ints[tagFileFlags][i]
			if (p == EnvPath) != (flags&(fileConfig|fileNoReplace) == fileConfig|fileNoReplace) {
				t.Errorf("%s: file flags %#x", p, flags)
			}
			if _, ok := managerFiles[p]; !ok && !isParent(p) {
				t.Errorf("header lists %s", p)
			}
		}
		for p := range managerFiles {
			if !slices.Contains(list, p) {
				t.Errorf("header lacks %s", p)
			}
		}
		if !bytes.Equal(r.files[LibDir+"/agents/linux-arm64/doris-agent"].data, agents["arm64"]) {
			t.Error("the linux-arm64 agent is not bin's")
		}
	})

	t.Run("agent packages", func(t *testing.T) {
		for arch, rpmArch := range map[string]string{"amd64": "x86_64", "arm64": "aarch64"} {
			d, err := readDeb(filepath.Join(out, "doris-agent_0.0.0~dev_"+arch+".deb"))
			if err != nil {
				t.Fatal(err)
			}
			if d.control["Package"] != "doris-agent" || d.control["Architecture"] != arch || d.meta["postinst"] != "" {
				t.Errorf("%s deb: control %v, postinst %q", arch, d.control, d.meta["postinst"])
			}
			want := map[string]os.FileMode{AgentPath: 0o755, "/usr/share/doc/doris-agent/LICENSE": 0o644}
			checkFiles(t, d.files, want)
			if !bytes.Equal(d.files[AgentPath].data, agents[arch]) {
				t.Errorf("%s deb: not the linux-%s agent", arch, arch)
			}
			r, err := readRPM(filepath.Join(out, "doris-agent-0.0.0~dev-1."+rpmArch+".rpm"))
			if err != nil {
				t.Fatal(err)
			}
			if r.str(tagName) != "doris-agent" || r.str(tagArch) != rpmArch {
				t.Errorf("%s rpm: name %q arch %q", arch, r.str(tagName), r.str(tagArch))
			}
			checkFiles(t, r.files, want)
			if !bytes.Equal(r.files[AgentPath].data, agents[arch]) {
				t.Errorf("%s rpm: not the linux-%s agent", arch, arch)
			}
		}
	})
}

// isParent: rpm headers may list a package's own folders too.
func isParent(p string) bool {
	for f := range managerFiles {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

func checkFiles(t *testing.T, got map[string]pkgFile, want map[string]os.FileMode) {
	t.Helper()
	for p, mode := range want {
		f, ok := got[p]
		if !ok {
			t.Errorf("no %s", p)
			continue
		}
		if f.mode != mode {
			t.Errorf("%s: mode %v, want %v", p, f.mode, mode)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %s", p)
		}
	}
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct{ in, deb string }{
		{"1.2.3", "dorismanager_1.2.3_amd64.deb"},
		{"v1.2.3", "dorismanager_1.2.3_amd64.deb"},
		{"1.2.3-rc1", "dorismanager_1.2.3~rc1_amd64.deb"},
		{"dev", "dorismanager_0.0.0~dev_amd64.deb"},
		{"", "dorismanager_0.0.0~dev_amd64.deb"},
		{"my build/7", "dorismanager_0.0.0~my.build.7_amd64.deb"},
	} {
		deb, err := nfpm.Get("deb")
		if err != nil {
			t.Fatal(err)
		}
		if got := deb.ConventionalFileName(nfpm.WithDefaults(common("dorismanager", "amd64", tc.in, "d"))); got != tc.deb {
			t.Errorf("version %q: %s, want %s", tc.in, got, tc.deb)
		}
	}
}

// A bin folder that is not make build's is refused, saying what is wrong,
// and leaves no package.
func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(bin string)
		says   string
	}{
		{"no manager", func(bin string) { os.Remove(filepath.Join(bin, "dorismanager")) }, "run make build first"},
		{"no plugins", func(bin string) { os.RemoveAll(filepath.Join(bin, "plugins")) }, "plugins"},
		{"unsigned plugin", func(bin string) { os.Remove(filepath.Join(bin, "plugins", "fe", pluginName+"_SHA256SUM.sig")) }, "is not signed"},
		{"no arm64 agent", func(bin string) { os.RemoveAll(filepath.Join(bin, "agents", "linux-arm64")) }, "the agent for linux/arm64"},
		{"agent of the wrong architecture", func(bin string) {
			b, _ := os.ReadFile(filepath.Join(bin, "agents", "linux-arm64", "doris-agent"))
			os.WriteFile(filepath.Join(bin, "agents", "linux-amd64", "doris-agent"), b, 0o755)
		}, "is a linux/arm64 program, not linux/amd64"},
		{"agent not a program", func(bin string) {
			os.WriteFile(filepath.Join(bin, "agents", "linux-amd64", "doris-agent"), []byte("#!/bin/sh\n"), 0o755)
		}, "is not a Linux program"},
		{"no plugin key", func(bin string) { os.Remove(filepath.Join(bin, "dev-plugin-key.pub")) }, "the public key the plugins are signed with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin, out := filepath.Join(dir, "bin"), filepath.Join(dir, "dist")
			fakeBin(t, bin)
			tc.break_(bin)
			_, err := Build(Options{Bin: bin, Out: out, Version: "dev"})
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Build = %v, want an error saying %q", err, tc.says)
			}
			if left, _ := filepath.Glob(filepath.Join(out, "*")); len(left) > 0 {
				t.Errorf("left %q", left)
			}
		})
	}
}

// The unit, the scripts, the packages' paths and the manager's own
// defaults (core/preflight) name the same places and user.
func TestUnitAgreesWithThePackage(t *testing.T) {
	unit := map[string][]string{}
	for _, line := range strings.Split(embeddedFile(t, "dorismanager.service"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	one := func(k string) string {
		if len(unit[k]) != 1 {
			t.Fatalf("unit has %d %s= lines", len(unit[k]), k)
		}
		return unit[k][0]
	}
	argv := strings.Fields(one("ExecStart"))
	flags := map[string]string{}
	for i := 2; i+1 < len(argv); i += 2 {
		flags[argv[i]] = argv[i+1]
	}
	const data = "/var/lib/dorismanager"
	for _, c := range []struct{ what, got, want string }{
		{"ExecStart's binary", argv[0] + " " + argv[1], BinPath + " serve"},
		{"--plugins-dir", flags["--plugins-dir"], LibDir + "/plugins"},
		{"--agents-dir", flags["--agents-dir"], LibDir + "/agents"},
		{"--data-dir", flags["--data-dir"], data},
		{"the last word", argv[len(argv)-1], "$DORISMANAGER_OPTS"},
		{"WorkingDirectory", one("WorkingDirectory"), data},
		{"StateDirectory", "/var/lib/" + one("StateDirectory"), data},
		{"ReadWritePaths", one("ReadWritePaths"), data},
		{"EnvironmentFile", one("EnvironmentFile"), "-" + EnvPath},
		{"User", one("User"), "dorismanager"},
		{"Group", one("Group"), "dorismanager"},
		{"ProtectSystem", one("ProtectSystem"), "strict"},
		{"NoNewPrivileges", one("NoNewPrivileges"), "yes"},
		{"PrivateTmp", one("PrivateTmp"), "yes"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
	if !strings.Contains(embeddedFile(t, "dorismanager.env"), "\nDORISMANAGER_OPTS=") {
		t.Error("the env file does not set DORISMANAGER_OPTS")
	}
	post := embeddedFile(t, "postinstall.sh")
	for _, want := range []string{"groupadd --system dorismanager", "--gid dorismanager --home-dir " + data,
		"dorismanager\n", "install -d -o dorismanager -g dorismanager -m 0750 " + data, KeysDir + "/*.pub", BinPath + " plugins --data-dir " + data + " trust"} {
		if !strings.Contains(post, want) {
			t.Errorf("postinstall.sh lacks %q", want)
		}
	}
	// The manager finds LibDir without flags, and carries the same
	// architectures as make build builds.
	src, err := os.ReadFile("../../core/preflight/preflight.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `PackageDir = "`+LibDir+`"`) || !strings.Contains(string(src), `AgentArches = []string{"amd64", "arm64"}`) {
		t.Errorf("core/preflight's PackageDir or AgentArches differ from %s, %q", LibDir, DefaultArches)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^AGENT_ARCHES\s*:=\s*(.*)$`).FindSubmatch(mk); m == nil || !slices.Equal(strings.Fields(string(m[1])), DefaultArches) {
		t.Errorf("the Makefile's AGENT_ARCHES %q differ from %q", m, DefaultArches)
	}
}

func TestScriptsParse(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, name := range []string{"postinstall.sh", "preremove.sh", "postremove.sh"} {
		p := filepath.Join(t.TempDir(), name)
		writeFile(t, p, []byte(embeddedFile(t, name)), 0o755)
		if out, err := exec.Command(sh, "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s: %v %s", name, err, out)
		}
	}
}
