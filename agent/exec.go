package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// HelperArg is the first argument with which the agent binary re-executes
// itself to set resource limits on a command before exec'ing it.
const HelperArg = "__doris-agent-exec"

// DefaultNoFile is the open-files limit commands get unless told otherwise.
const DefaultNoFile = 65536

const outputTail = 64 << 10

// RunHelper handles a re-execution as the limits helper: when os.Args says
// so it never returns. Call it first thing in main (and TestMain).
func RunHelper() {
	if len(os.Args) < 4 || os.Args[1] != HelperArg {
		return
	}
	n, err := strconv.ParseUint(os.Args[2], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "doris-agent: bad open-files limit %q\n", os.Args[2])
		os.Exit(127)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		n = min(n, lim.Max) // even root may be unable to raise the hard limit
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintf(os.Stderr, "doris-agent: set open-files limit %d: %v\n", n, err)
		}
	}
	argv := os.Args[3:]
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "doris-agent: %v\n", err)
		os.Exit(127)
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "doris-agent: exec %s: %v\n", path, err)
	os.Exit(126)
}

// tail keeps the last n bytes written to it.
type tail struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { t.mu.Lock(); defer t.mu.Unlock(); return string(t.buf) }

// funcWriter adapts an emit function.
type funcWriter func(string)

func (f funcWriter) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }

func (a *Agent) taskLog(taskID string) string {
	if taskID == "" {
		taskID = "adhoc"
	}
	return filepath.Join(a.cfg.DataDir, "log", "task-"+taskID+".log")
}

func (a *Agent) commandEnv(extra map[string]string) []string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// runCommand runs one command and returns its result. Output goes to the
// task's log file and to emit (while someone listens).
func (a *Agent) runCommand(req wire.Exec, emit func(string)) wire.ExecResult {
	logPath := a.taskLog(req.TaskID)
	if req.Probe {
		logPath = os.DevNull
	}
	res := wire.ExecResult{LogPath: logPath, ExitCode: -1}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		res.Error = fmt.Sprintf("open task log: %v", err)
		return res
	}
	defer logf.Close()
	fmt.Fprintf(logf, "[%s] $ %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(req.Argv, " "))

	self, err := os.Executable()
	if err != nil {
		res.Error = fmt.Sprintf("locate agent binary: %v", err)
		return res
	}
	nofile := req.NoFile
	if nofile == 0 {
		nofile = DefaultNoFile
	}
	cmd := exec.Command(self, append([]string{HelperArg, strconv.FormatUint(nofile, 10)}, req.Argv...)...)
	cmd.Dir = req.Dir
	cmd.Env = a.commandEnv(req.Env)
	if req.Stdin != nil {
		cmd.Stdin = strings.NewReader(string(req.Stdin))
	}
	timeout := time.Duration(req.TimeoutSeconds * float64(time.Second))

	if req.Detach {
		return a.runDetached(cmd, logf, res, timeout, emit)
	}
	if timeout <= 0 {
		timeout = 24 * time.Hour
	}
	tl := &tail{n: outputTail}
	var mu sync.Mutex // one writer at a time into log and stream
	w := funcWriter(func(s string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = logf.WriteString(s)
		_, _ = tl.Write([]byte(s))
		emit(s)
	})
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Children left holding the pipe must not keep us waiting forever.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		res.Error = fmt.Sprintf("start %s: %v", req.Argv[0], err)
		fmt.Fprintln(logf, res.Error)
		return res
	}
	res.Pid = cmd.Process.Pid
	timer := time.AfterFunc(timeout, func() {
		mu.Lock()
		res.TimedOut = true
		mu.Unlock()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	werr := cmd.Wait()
	timer.Stop()
	mu.Lock()
	defer mu.Unlock()
	res.Output = tl.String()
	res.ExitCode = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) && !errors.Is(werr, exec.ErrWaitDelay) {
		res.Error = werr.Error()
	}
	if res.TimedOut {
		res.Error = fmt.Sprintf("timed out after %s and was killed", timeout)
	}
	fmt.Fprintf(logf, "[%s] exit code %d %s\n", time.Now().UTC().Format(time.RFC3339), res.ExitCode, res.Error)
	return res
}

// runDetached starts cmd in its own session with output straight into the
// task log, so it outlives the agent. It waits for the process to exit (a
// script that daemonizes returns quickly) or for the timeout (default 10 s),
// after which it is left running.
func (a *Agent) runDetached(cmd *exec.Cmd, logf *os.File, res wire.ExecResult, timeout time.Duration, emit func(string)) wire.ExecResult {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	start, _ := logf.Seek(0, io.SeekEnd)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		res.Error = fmt.Sprintf("start %s: %v", cmd.Args[3], err)
		fmt.Fprintln(logf, res.Error)
		return res
	}
	res.Pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // reaps it while the agent lives
	select {
	case <-done:
		res.ExitCode = cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		res.Running = true
		res.ExitCode = 0
	}
	if f, err := os.Open(logf.Name()); err == nil {
		fi, _ := f.Stat()
		off := max64(start, fi.Size()-outputTail)
		b := make([]byte, fi.Size()-off)
		n, _ := f.ReadAt(b, off)
		f.Close()
		res.Output = string(b[:n])
		if n > 0 {
			emit(res.Output)
		}
	}
	return res
}
