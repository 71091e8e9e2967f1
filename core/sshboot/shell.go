package sshboot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// shell runs fixed scripts on one host. Each command's output is framed by
// a random marker line, so whatever the login shell's start files print
// before or after it is told apart from the script's answer and reported
// once, never parsed as part of it.
type shell struct {
	client *ssh.Client
	host   string
	logf   func(format string, args ...any)
	// slow is how long a command may take to start before the task log
	// says so. sshd runs every command through the user's login shell,
	// whose start files (~/.bashrc, /etc/bash.bashrc, ~/.profile) run
	// first: a slow one costs every session.
	slow  time.Duration
	noisy bool // stray text was reported already
}

// run executes a fixed shell script; data goes in as positional parameters
// (never pasted into the script). It returns the script's own output.
func (sh *shell) run(ctx context.Context, script string, args ...string) (string, error) {
	s, err := sh.client.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()

	var m [12]byte
	_, _ = rand.Read(m[:])
	mark := "dm-frame-" + hex.EncodeToString(m[:])
	// $1 is the marker; the script sees its own arguments as $1, $2 ...
	// The EXIT trap frames the end even when the script calls exit.
	framed := `m=$1; shift; printf '%s\n' "$m"; trap 'printf "\n%s\n" "$m"' EXIT
` + script
	cmd := "sh -c " + quote(framed) + " sh " + quote(mark)
	for _, a := range args {
		cmd += " " + quote(a)
	}
	out := &frameWriter{mark: []byte(mark + "\n")}
	s.Stdout, s.Stderr = out, out
	start := time.Now()
	err = s.Run(cmd)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	payload, noise, began := out.split()
	if began.IsZero() {
		// The script never started: whatever came back is the shell's.
		return "", fmt.Errorf("the login shell on %s did not run the command (%v): %s", sh.host, err, clip(noise, 300))
	}
	if d := began.Sub(start); d > sh.slow {
		sh.logf("warning: an SSH session on %s took %.1fs before it ran the command: the SSH user's login shell start files on that host (~/.bashrc, /etc/bash.bashrc, ~/.profile) are slow, and every SSH step pays for it", sh.host, d.Seconds())
	}
	if n := strings.TrimSpace(noise); n != "" && !sh.noisy {
		sh.noisy = true
		sh.logf("warning: the login shell on %s printed text of its own around the command (from its start files; ignored): %s", sh.host, clip(n, 300))
	}
	if err != nil {
		return payload, fmt.Errorf("%w: %s", err, strings.TrimSpace(payload))
	}
	return payload, nil
}

// frameWriter collects a session's stdout and stderr (as CombinedOutput
// does) and notes when the opening marker arrived.
type frameWriter struct {
	mark  []byte
	mu    sync.Mutex
	buf   bytes.Buffer
	began time.Time
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.began.IsZero() && bytes.Contains(w.buf.Bytes(), w.mark) {
		w.began = time.Now()
	}
	return len(p), nil
}

// split returns the script's output (between the markers), the rest (what
// the shell printed around it), and when the script began (zero: never).
func (w *frameWriter) split() (payload, noise string, began time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf.Bytes()
	i := bytes.Index(b, w.mark)
	if i < 0 {
		return "", string(b), time.Time{}
	}
	before, rest := b[:i], b[i+len(w.mark):]
	after := []byte(nil)
	// The closing marker is the last one; the trap put a newline before it.
	if j := bytes.LastIndex(rest, w.mark); j >= 0 {
		rest, after = rest[:j], rest[j+len(w.mark):]
		rest = bytes.TrimSuffix(rest, []byte("\n"))
	}
	return string(rest), string(before) + string(after), w.began
}
