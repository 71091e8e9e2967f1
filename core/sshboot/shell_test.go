package sshboot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
)

func TestFrameSplit(t *testing.T) {
	const m = "dm-frame-x"
	cases := []struct {
		name, out, payload, noise string
		began                     bool
	}{
		{"clean", m + "\nconn=a\ninit=b\n\n" + m + "\n", "conn=a\ninit=b\n", "", true},
		{"no trailing newline", m + "\nabc\n" + m + "\n", "abc", "", true},
		{"empty", m + "\n\n" + m + "\n", "", "", true},
		{"rc noise around", "Welcome!\nwarn: pyenv\n" + m + "\nok\n\n" + m + "\nbye\n", "ok\n", "Welcome!\nwarn: pyenv\nbye\n", true},
		{"noise that looks like an answer", "init=systemd\n" + m + "\ninit=sysvinit\n\n" + m + "\n", "init=sysvinit\n", "init=systemd\n", true},
		{"cut before the end", m + "\npartial", "partial", "", true},
		{"never started", "bash: sh: command not found\n", "", "bash: sh: command not found\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &frameWriter{mark: []byte(m + "\n")}
			// Arrive in small pieces, as a session's output does.
			for i := 0; i < len(c.out); i += 3 {
				_, _ = w.Write([]byte(c.out[i:min(i+3, len(c.out))]))
			}
			payload, noise, began := w.split()
			if payload != c.payload || noise != c.noise || began.IsZero() == c.began {
				t.Errorf("split(%q) = %q, %q, began %v; want %q, %q, began %v", c.out, payload, noise, !began.IsZero(), c.payload, c.noise, c.began)
			}
		})
	}
}

// TestInstallThroughNoisySlowShell installs on a host whose root login
// shell prints on stdout and stderr and sleeps before every command, as
// real hosts' ~/.bashrc files do: the install succeeds, and its log says
// what the shell costs and what it printed.
func TestInstallThroughNoisySlowShell(t *testing.T) {
	e := setup(t, 1)
	h := e.hs.Hosts[0]
	// Before the usual non-interactive guard, as such lines usually are.
	rc := "echo 'Welcome to host1 (rc noise)'\necho 'rc warning on stderr' >&2\nsleep 0.6\n[ -z \"$PS1\" ] && return\n"
	if err := os.WriteFile(filepath.Join(h.Home, ".bashrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := e.inst.cfg
	cfg.SlowShellStart = 300 * time.Millisecond
	inst, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := deadline.Context(context.Background(), 2*time.Minute)
	defer cancel()
	log := &syncBuf{}
	res, err := inst.Install(ctx, e.target(h), Credentials{PrivateKey: e.hs.Keys.Ed25519}, log)
	if err != nil {
		t.Fatalf("install through a noisy shell: %v\n%s", err, log)
	}
	if res.AgentID == 0 {
		t.Fatalf("no agent id: %+v", res)
	}
	text := log.String()
	// sftp too: the hosts run Debian's external sftp-server, which sshd
	// starts through the login shell, so the noise lands in its stream.
	for _, want := range []string{"before it ran the command", "~/.bashrc", "printed text of its own", "Welcome to host1 (rc noise)", "rc warning on stderr",
		"sftp subsystem on " + h.Addr + " did not answer cleanly", "starting sftp-server behind a marker"} {
		if !strings.Contains(text, want) {
			t.Errorf("task log lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "printed text of its own"); n != 1 {
		t.Errorf("stray text reported %d times, want once:\n%s", n, text)
	}
	// The probe's answer was read from the frame, not from the noise: the
	// agent listens on the address the host was reached at.
	if !strings.Contains(text, "listening on "+h.Addr+":") {
		t.Errorf("the agent was not told to listen on %s:\n%s", h.Addr, text)
	}
}
