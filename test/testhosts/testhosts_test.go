package testhosts

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"golang.org/x/crypto/ssh"
)

func dial(t *testing.T, h *Host, key []byte, pass string) (*ssh.Client, error) {
	t.Helper()
	var signer ssh.Signer
	var err error
	if pass != "" {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(key, []byte(pass))
	} else {
		signer, err = ssh.ParsePrivateKey(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", net.JoinHostPort(h.Addr, "22"), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(h.HostPublicKey()),
		Timeout:         5 * time.Second,
	})
}

func TestHosts(t *testing.T) {
	Require(t)
	ctx := context.Background()
	hs, err := Start(ctx, Options{N: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := hs.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(hs.Dir); !os.IsNotExist(err) {
			t.Errorf("dir %s left behind", hs.Dir)
		}
	}()
	keys := []struct {
		name string
		key  []byte
		pass string
	}{{"rsa", hs.Keys.RSA, ""}, {"ecdsa", hs.Keys.ECDSA, ""}, {"ed25519", hs.Keys.Ed25519, ""}, {"encrypted", hs.Keys.Ed25519Encrypted, hs.Keys.Passphrase}}
	for _, h := range hs.Hosts {
		for _, k := range keys {
			c, err := dial(t, h, k.key, k.pass)
			if err != nil {
				t.Fatalf("%s with %s key: %v", h.Name, k.name, err)
			}
			s, _ := c.NewSession()
			out, err := s.Output("hostname; touch /opt/marker")
			c.Close()
			if err != nil || strings.TrimSpace(string(out)) != h.Name {
				t.Fatalf("%s: hostname %q, %v", h.Name, out, err)
			}
		}
		if _, err := os.Stat(filepath.Join(h.Root, "marker")); err != nil {
			t.Errorf("%s: /opt is not the host's Root: %v", h.Name, err)
		}
		out, err := h.Exec(ctx, "cat", "/etc/hostname", "/proc/sys/kernel/hostname")
		if err != nil || !strings.Contains(string(out), h.Name) {
			t.Errorf("%s: Exec hostname: %q %v", h.Name, out, err)
		}
	}
	if _, err := dial(t, hs.Hosts[0], hs.Keys.Unauthorized, ""); err == nil {
		t.Error("unauthorized key accepted")
	}
	// Rotation changes the served key.
	h := hs.Hosts[0]
	old := h.HostKeyFingerprint()
	if err := h.RotateHostKey(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := h.ScanHostKey(ctx); err != nil || ssh.FingerprintSHA256(got) == old {
		t.Fatalf("after rotation: %v %v", got, err)
	}
	// Cut link: connects fail.
	if err := h.SetReachable(ctx, false); err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	if c, err := d.Dial("tcp", net.JoinHostPort(h.Addr, "22")); err == nil {
		c.Close()
		t.Fatal("host reachable while cut")
	}
	if err := h.SetReachable(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, h, hs.Keys.Ed25519, ""); err != nil {
		t.Fatalf("after restoring link: %v", err)
	}
}

// TestOrphansAreReaped: a daemon's process that dies after its parent is
// gone is reaped by the host's own init at once, as on a real host, and
// does not linger as a zombie that `kill -0` (start scripts' liveness
// test) would take for alive.
func TestOrphansAreReaped(t *testing.T) {
	Require(t)
	ctx, cancel := deadline.Context(context.Background(), time.Minute)
	defer cancel()
	hs, err := Start(ctx, Options{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	h := hs.Hosts[0]
	c, err := dial(t, h, hs.Keys.Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// The shell exits at once; its background child lives on, orphaned,
	// for a moment, then exits.
	out, err := s.Output(`sleep 1 </dev/null >/dev/null 2>&1 & echo $!`)
	s.Close()
	pid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || perr != nil {
		t.Fatalf("start an orphan: %q %v %v", out, err, perr)
	}
	// Orphaned, it belongs to the host's init, not to the machine's PID 1.
	for ppid := -1; ppid != h.initPid; {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("orphan %d gone before it was seen adopted: %v", pid, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("orphan %d has parent %d, want the host's init %d", pid, ppid, h.initPid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if os.IsNotExist(err) {
			return
		}
		if ctx.Err() != nil {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Fatalf("orphan %d was never reaped: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
