package sshboot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/preflight"
	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/testhosts"
)

// TestInstallByHostArchitecture installs over real SSH on a host whose
// `uname` answers what the test says (a script first on the login shell's
// PATH): a host of another architecture gets that architecture's agent
// binary, and hosts the manager has no agent for are refused, with words
// naming what the host is and what is supported, before anything changes
// on the host or in the store.
func TestInstallByHostArchitecture(t *testing.T) {
	if !slices.Contains(preflight.AgentArches, runtime.GOARCH) {
		t.Skipf("this machine (%s) runs no agent the manager carries", runtime.GOARCH)
	}
	e := setup(t, 1)
	h := e.hs.Hosts[0]
	fake := func(kernel, machine string) {
		t.Helper()
		for name, v := range map[string]string{"fake-kernel": kernel, "fake-machine": machine} {
			if err := os.WriteFile(filepath.Join(h.Home, name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	uname := "#!/bin/sh\ncase \"$1\" in -s) cat /root/fake-kernel ;; -m) cat /root/fake-machine ;; *) exec /bin/uname \"$@\" ;; esac\n"
	if err := os.MkdirAll(filepath.Join(h.Home, "fakebin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Home, "fakebin", "uname"), []byte(uname), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Home, ".bashrc"), []byte("export PATH=/root/fakebin:$PATH\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Both architectures' agents; the other one is this machine's binary
	// with bytes appended (an ELF file runs with trailing data), so it
	// runs here and is told apart by its sum.
	native := runtime.GOARCH
	other := "arm64"
	if native == "arm64" {
		other = "amd64"
	}
	machineOf := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}
	bin, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	both := t.TempDir()
	otherBin := append(bytes.Clone(bin), []byte("\nthe "+other+" agent\n")...)
	for arch, data := range map[string][]byte{native: bin, other: otherBin} {
		p := preflight.AgentPath(both, arch)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.inst.cfg
	cfg.AgentsDir = both
	withBoth, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := deadline.Context(context.Background(), 2*time.Minute)
	defer cancel()
	cred := Credentials{PrivateKey: e.hs.Keys.Ed25519}
	home := filepath.Join(h.Root, "doris") // the host's /opt/doris
	remote := filepath.Join(home, "agent", "bin", "doris-agent")

	type refusal struct {
		name, kernel, machine string
		inst                  *Installer
		says                  []string
		unsupported           bool
	}
	refused := func(t *testing.T, tc refusal) {
		t.Helper()
		fake(tc.kernel, tc.machine)
		log := &syncBuf{}
		_, err := tc.inst.Install(ctx, e.target(h), cred, log)
		if err == nil {
			t.Fatalf("installed on a %s/%s host:\n%s", tc.kernel, tc.machine, log)
		}
		if errors.Is(err, ErrUnsupportedArch) != tc.unsupported {
			t.Errorf("errors.Is(%v, ErrUnsupportedArch) = %v, want %v", err, !tc.unsupported, tc.unsupported)
		}
		for _, s := range append(tc.says, h.Addr, "nothing was changed on the host") {
			if !strings.Contains(err.Error(), s) || !strings.Contains(log.String(), s) {
				t.Errorf("error or task log lacks %q:\nerror: %v\nlog:\n%s", s, err, log)
			}
		}
	}
	refusals := []refusal{
		{"unsupported architecture", "Linux", "mips", withBoth,
			[]string{`"mips" (uname -m)`, "x86_64 (linux/amd64) and aarch64 (linux/arm64) only"}, true},
		{"not Linux", "FreeBSD", "amd64", withBoth, []string{`"FreeBSD" (uname -s), not Linux`}, true},
		{"no binary for the host's architecture", "Linux", machineOf[other], e.inst,
			[]string{"no agent binary for linux/" + other, preflight.AgentPath(agentsDir, other), "make build"}, false},
	}

	// A fresh host is refused with nothing made: no folder, no agent record.
	for _, tc := range refusals {
		t.Run("fresh host/"+tc.name, func(t *testing.T) {
			refused(t, tc)
			if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused host got %s (%v)", home, err)
			}
			if a, err := e.reg.Get(ctx, e.clusterID, h.Addr); err == nil {
				t.Errorf("the refused host has an agent record: %+v", a)
			}
		})
	}

	// The other architecture's host gets the other architecture's binary.
	fake("Linux", machineOf[other])
	log := &syncBuf{}
	if _, err := withBoth.Install(ctx, e.target(h), cred, log); err != nil {
		t.Fatalf("install on a %s host: %v\n%s", machineOf[other], err, log)
	}
	if got, err := os.ReadFile(remote); err != nil || sha256.Sum256(got) != sha256.Sum256(otherBin) {
		t.Fatalf("the %s host got another binary than linux-%s/doris-agent (%v)", machineOf[other], other, err)
	}
	if want := "the host is linux/" + other + ": installing " + preflight.AgentPath(both, other); !strings.Contains(log.String(), want) {
		t.Errorf("task log lacks %q:\n%s", want, log)
	}
	installed, err := e.reg.Get(ctx, e.clusterID, h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	pid := agentPid(t, h)

	// A reinstall that is refused leaves the running agent alone: still
	// running, same binary, same certificate.
	for _, tc := range refusals {
		t.Run("reinstall/"+tc.name, func(t *testing.T) {
			refused(t, tc)
			if !testhosts.PidAlive(pid) {
				t.Fatal("the running agent was stopped")
			}
			if got, err := os.ReadFile(remote); err != nil || sha256.Sum256(got) != sha256.Sum256(otherBin) {
				t.Errorf("the agent binary on the host changed (%v)", err)
			}
			if a, err := e.reg.Get(ctx, e.clusterID, h.Addr); err != nil || a.CertSerial != installed.CertSerial {
				t.Errorf("the agent record changed: %+v %v, was serial %s", a, err, installed.CertSerial)
			}
		})
	}
}
