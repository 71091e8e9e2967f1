package pluginhost

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/dorismanager/dorismanager/sdk"
)

// client is one plugin binary and, while it runs, its process. The process
// starts on the first call and again on the first call after it exited.
type client struct {
	p    Plugin
	cfg  Config
	log  hclog.Logger
	logs *logFanout

	mu      sync.Mutex
	pc      *plugin.Client
	role    *sdk.RoleClient
	active  int  // calls in flight
	retired bool // removed by a rescan: stop when idle
	stopped bool // killed for good (Close, retire)
}

func newClient(p Plugin, cfg Config, log hclog.Logger) *client {
	name := fmt.Sprintf("%s %s", p.Role, p.Version)
	return &client{p: p, cfg: cfg, log: log.Named("plugin").With("role", p.Role, "version", p.Version),
		logs: newLogFanout(name)}
}

// get returns the running plugin, starting it if needed.
func (c *client) get() (*sdk.RoleClient, *plugin.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, nil, fmt.Errorf("%s plugin %s is stopped (plugin host closed or file rescanned away)", c.p.Role, c.p.Version)
	}
	if c.pc != nil && !c.pc.Exited() {
		return c.role, c.pc, nil
	}
	if c.pc != nil {
		c.log.Warn("role plugin had exited; starting it again")
		c.pc.Kill() // releases what go-plugin still holds for the dead process
		c.pc, c.role = nil, nil
	}
	pc, rc, err := launch(c.p.Exec, c.p.SHA256, c.cfg.StartTimeout, c.log, c.logs)
	if err != nil {
		return nil, nil, fmt.Errorf("start %s plugin %s (%s): %w", c.p.Role, c.p.Version, c.p.File(c.cfg.Dir), err)
	}
	c.pc, c.role = pc, rc
	c.log.Debug("role plugin started")
	return rc, pc, nil
}

// launch starts a plugin binary through the go-plugin handshake
// (sdk.StartPlugin: gRPC only, checksum checked, AutoMTLS, no environment)
// and dispenses its role. Its output goes through logs; a start that fails
// is returned with the last stderr lines of the process.
func launch(path, sha string, startTimeout time.Duration, log hclog.Logger, logs *logFanout) (*plugin.Client, *sdk.RoleClient, error) {
	sum, err := hex.DecodeString(sha)
	if err != nil {
		return nil, nil, fmt.Errorf("bad checksum of %s: %w", path, err)
	}
	logs.resetTail() // a new process: earlier lines would mislead
	cmd := exec.Command(path)
	bindToParent(cmd)
	pc, rc, err := sdk.StartPlugin(sdk.StartOptions{Cmd: cmd, Checksum: sum, StartTimeout: startTimeout, Logger: log,
		Stderr: logs.writer(true), SyncStdout: logs.writer(false), SyncStderr: logs.writer(true)})
	if err != nil {
		return nil, nil, withStderr(err, logs.tail())
	}
	return pc, rc, nil
}

// handshakeInfo starts a plugin file as the manager does, asks its Info
// over gRPC and stops it.
func handshakeInfo(ctx context.Context, path, sha string, timeout time.Duration) (sdk.Info, error) {
	logs := newLogFanout(path)
	pc, rc, err := launch(path, sha, timeout, hclog.NewNullLogger(), logs)
	if err != nil {
		return sdk.Info{}, fmt.Errorf("start through the plugin handshake: %w", err)
	}
	defer pc.Kill()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := rc.Info(ctx)
	if err != nil {
		return sdk.Info{}, withStderr(fmt.Errorf("Info over gRPC: %w", err), logs.tail())
	}
	return info, nil
}

// roleFunc is one call of the plugin's role.
type roleFunc func(*sdk.RoleClient, context.Context, sdk.Host, sdk.Request) (sdk.Result, error)

func (c *client) call(ctx context.Context, method string, fn roleFunc, h sdk.Host, taskLog io.Writer, req sdk.Request) (sdk.Result, error) {
	c.begin()
	defer c.end()
	// Attached before the start, so what a plugin says while starting
	// (or crashing) reaches the task log too.
	if taskLog != nil {
		detach := c.logs.attach(req.TaskID, taskLog)
		defer detach()
	}
	rc, pc, err := c.get()
	if err != nil {
		return sdk.Result{}, err
	}
	res, err := fn(rc, ctx, h, req)
	if err == nil {
		return res, nil
	}
	var f *sdk.Failure
	if errors.As(err, &f) {
		return sdk.Result{}, f
	}
	if ctx.Err() != nil {
		return sdk.Result{}, fmt.Errorf("%s plugin %s %s: %w", c.p.Role, c.p.Version, method, ctx.Err())
	}
	// A transport error: find out whether the process died.
	t := time.NewTimer(c.cfg.ExitGrace)
	defer t.Stop()
	exited := false
	select {
	case <-rc.Exited():
		exited = true
	case <-t.C:
		exited = pc.Exited()
	case <-ctx.Done():
	}
	if exited {
		c.log.Error("role plugin exited during a call", "method", method, "task", req.TaskID)
		// Exited is closed only after go-plugin has read all of the
		// process's stderr: the tail is complete.
		return sdk.Result{}, withStderr(fmt.Errorf("%w: %s plugin %s (%s) exited during %s (%v); it is started afresh on the next call",
			ErrPluginExited, c.p.Role, c.p.Version, c.p.File(c.cfg.Dir), method, err), c.logs.tail())
	}
	return sdk.Result{}, fmt.Errorf("%s plugin %s %s: %w", c.p.Role, c.p.Version, method, err)
}

func (c *client) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active++
}

func (c *client) end() {
	c.mu.Lock()
	c.active--
	stop := c.retired && c.active == 0
	c.mu.Unlock()
	if stop {
		c.kill()
	}
}

// retire stops the process once no call uses it.
func (c *client) retire() {
	c.mu.Lock()
	c.retired = true
	stop := c.active == 0
	c.mu.Unlock()
	if stop {
		c.kill()
	}
}

// kill stops the process (gracefully, then by force) and waits for it.
func (c *client) kill() {
	c.mu.Lock()
	pc := c.pc
	c.pc, c.role, c.stopped = nil, nil, true
	c.mu.Unlock()
	if pc != nil {
		pc.Kill()
	}
}

// StderrError is a failed start or call of a plugin process together with
// the last lines the process wrote to stderr that were not log records
// (a Go panic and its stack, a message of a crashing program).
type StderrError struct {
	Err   error
	Lines []string
}

func (e *StderrError) Error() string {
	return e.Err.Error() + "; the plugin's last stderr lines:\n  " + strings.Join(e.Lines, "\n  ")
}

func (e *StderrError) Unwrap() error { return e.Err }

func withStderr(err error, lines []string) error {
	if len(lines) == 0 {
		return err
	}
	return &StderrError{Err: err, Lines: lines}
}

// The stderr tail keeps this many lines of at most tailLineBytes each.
const (
	tailLines     = 20
	tailLineBytes = 512
	// tailBeforePanic lines before a panic stay in the tail.
	tailBeforePanic = 4
)

// logFanout copies a plugin's output, readably formatted, into the logs of
// the tasks whose calls are in flight, and keeps the last stderr lines that
// are not log records for error messages. Its writers are the plugin's
// stderr (which go-plugin also parses into the manager's logger) and the
// os.Stdout/os.Stderr that go-plugin redirects inside the plugin. A JSON
// line with a "task_id" goes only to that task; any other line to every
// call in flight.
type logFanout struct {
	prefix string

	mu      sync.Mutex
	sinks   map[int]logSink
	next    int
	ring    []string // non-log stderr lines, oldest first
	inPanic bool     // ring starts with a panic: keep its head, drop the rest
}

type logSink struct {
	taskID int64
	w      io.Writer
}

func newLogFanout(prefix string) *logFanout {
	return &logFanout{prefix: prefix, sinks: map[int]logSink{}}
}

func (f *logFanout) attach(taskID int64, w io.Writer) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.next
	f.next++
	f.sinks[id] = logSink{taskID: taskID, w: w}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.sinks, id)
	}
}

// tail returns the last non-log stderr lines, oldest first.
func (f *logFanout) tail() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ring...)
}

func (f *logFanout) resetTail() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring, f.inPanic = nil, false
}

// writer returns a line-buffering writer for one output stream; stderr
// lines that are not log records go to the tail too.
func (f *logFanout) writer(stderr bool) io.Writer { return &lineWriter{f: f, stderr: stderr} }

func (f *logFanout) emit(line []byte, stderr bool) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	text, taskID, isLog := formatLogLine(f.prefix, line)
	f.mu.Lock()
	defer f.mu.Unlock()
	if stderr && !isLog {
		s := string(bytes.TrimRight(line, "\r"))
		if len(s) > tailLineBytes {
			s = s[:tailLineBytes] + "..."
		}
		// A crash's first lines say the most: at a panic the ring keeps
		// a few lines before it, then the panic's head.
		if !f.inPanic && (strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: ")) {
			if n := len(f.ring); n > tailBeforePanic {
				f.ring = append([]string(nil), f.ring[n-tailBeforePanic:]...)
			}
			f.inPanic = true
		}
		switch {
		case len(f.ring) < tailLines:
			f.ring = append(f.ring, s)
		case !f.inPanic:
			copy(f.ring, f.ring[1:])
			f.ring[tailLines-1] = s
		}
	}
	for _, s := range f.sinks {
		if taskID != 0 && s.taskID != taskID {
			continue
		}
		_, _ = io.WriteString(s.w, text)
	}
}

type lineWriter struct {
	f       *logFanout
	stderr  bool
	mu      sync.Mutex
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.f.emit(w.partial[:i], w.stderr)
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil // do not keep a large buffer alive
	}
	return len(p), nil
}

// formatLogLine renders an hclog JSON line as
// "2006-01-02T15:04:05.000Z [INFO]  plugin FE 1.2.0: message: k=v";
// other lines are kept as they are (isLog false).
func formatLogLine(prefix string, line []byte) (text string, taskID int64, isLog bool) {
	var entry map[string]any
	if line[0] != '{' || json.Unmarshal(line, &entry) != nil {
		return fmt.Sprintf("plugin %s: %s\n", prefix, line), 0, false
	}
	ts, _ := entry["@timestamp"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	level, _ := entry["@level"].(string)
	msg, _ := entry["@message"].(string)
	var kv []string
	keys := make([]string, 0, len(entry))
	for k := range entry {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := entry[k]
		if k == "task_id" {
			if n, ok := v.(float64); ok {
				taskID = int64(n)
			}
		}
		kv = append(kv, fmt.Sprintf("%s=%v", k, v))
	}
	out := fmt.Sprintf("%s [%s] plugin %s: %s", ts, strings.ToUpper(level), prefix, msg)
	if len(kv) > 0 {
		out += ": " + strings.Join(kv, " ")
	}
	return out + "\n", taskID, true
}
