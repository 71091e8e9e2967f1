package sshboot

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
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
	mark := newMark()
	s, err := sh.client.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()

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
		return "", fmt.Errorf("the login shell on %s did not run the command (%v): check the SSH user's shell and its start files (~/.bashrc, ~/.profile) on that host; it said: %s", sh.host, err, clip(noise, 300))
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

func newMark() string {
	var m [12]byte
	_, _ = rand.Read(m[:])
	return "dm-frame-" + hex.EncodeToString(m[:])
}

// sftpServers are where distributions install OpenSSH's sftp-server.
var sftpServers = []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
	"/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server"}

// openSFTP opens sftp on the connection: the sftp subsystem or, when its
// stream is broken, sftp-server started behind a marker line. sshd starts
// an external sftp-server (Debian's default) through the user's login
// shell, so text its start files print lands in the sftp stream; a session
// that prints the marker first lets everything before it be skipped.
func (sh *shell) openSFTP(ctx context.Context) (*sftp.Client, error) {
	sc, err := sftp.NewClient(sh.client)
	if err == nil {
		return sc, nil
	}
	sh.logf("warning: the sftp subsystem on %s did not answer cleanly (%v): the SSH user's login shell start files print text into it; starting sftp-server behind a marker instead", sh.host, err)
	s, err := sh.client.NewSession()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	in, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	mark := newMark()
	cmd := "sh -c " + quote(`m=$1; shift; printf '%s\n' "$m"; for p in "$@"; do [ -x "$p" ] && exec "$p"; done; echo "no sftp-server in $*" >&2; exit 127`) + " sh " + quote(mark)
	for _, p := range sftpServers {
		cmd += " " + quote(p)
	}
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, err
	}
	br := bufio.NewReader(out)
	for skipped := 0; ; {
		line, err := br.ReadString('\n')
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("start sftp-server on %s: %w", sh.host, errors.Join(err, ctx.Err()))
		}
		if strings.HasSuffix(strings.TrimSuffix(line, "\n"), mark) {
			break
		}
		if skipped += len(line); skipped > 1<<20 {
			s.Close()
			return nil, fmt.Errorf("start sftp-server on %s: more than 1 MiB of text from the login shell before it", sh.host)
		}
	}
	// Closing the client closes stdin: sftp-server exits and the session
	// ends; the SSH connection's close takes the session in any case.
	return sftp.NewClientPipe(br, in)
}
