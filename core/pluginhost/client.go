package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
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
		logs: &logFanout{prefix: name, sinks: map[int]logSink{}}}
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
	sum, err := hex.DecodeString(c.p.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("bad checksum of %s: %w", c.p.Path, err)
	}
	cmd := exec.Command(c.p.Path)
	bindToParent(cmd)
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: sdk.PluginSets(nil),
		Cmd:              cmd,
		// A fresh hash per client: SecureConfig.Check writes into it.
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     c.cfg.StartTimeout,
		Logger:           c.log,
		Stderr:           c.logs.writer(),
		SyncStdout:       c.logs.writer(),
		SyncStderr:       c.logs.writer(),
	})
	rpc, err := pc.Client()
	if err != nil {
		pc.Kill()
		return nil, nil, fmt.Errorf("start %s plugin %s (%s): %w", c.p.Role, c.p.Version, c.p.Path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		pc.Kill()
		return nil, nil, fmt.Errorf("start %s plugin %s (%s): %w", c.p.Role, c.p.Version, c.p.Path, err)
	}
	rc, ok := raw.(*sdk.RoleClient)
	if !ok {
		pc.Kill()
		return nil, nil, fmt.Errorf("start %s plugin %s: dispensed %T", c.p.Role, c.p.Version, raw)
	}
	c.pc, c.role = pc, rc
	c.log.Debug("role plugin started")
	return rc, pc, nil
}

type roleFunc func(sdk.Role, context.Context, sdk.Host, sdk.Request) (sdk.Result, error)

func (c *client) call(ctx context.Context, method string, fn roleFunc, h sdk.Host, taskLog io.Writer, req sdk.Request) (sdk.Result, error) {
	c.begin()
	defer c.end()
	rc, pc, err := c.get()
	if err != nil {
		return sdk.Result{}, err
	}
	if taskLog != nil {
		detach := c.logs.attach(req.TaskID, taskLog)
		defer detach()
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
		return sdk.Result{}, fmt.Errorf("%w: %s plugin %s (%s) exited during %s (%v); it is started afresh on the next call",
			ErrPluginExited, c.p.Role, c.p.Version, c.p.File(c.cfg.Dir), method, err)
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

// logFanout copies a plugin's output, readably formatted, into the logs of
// the tasks whose calls are in flight. Its writers are the plugin's stderr
// (which go-plugin also parses into the manager's logger) and the
// os.Stdout/os.Stderr that go-plugin redirects inside the plugin. A JSON
// line with a "task_id" goes only to that task; any other line to every
// call in flight.
type logFanout struct {
	prefix string

	mu    sync.Mutex
	sinks map[int]logSink
	next  int
}

type logSink struct {
	taskID int64
	w      io.Writer
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

// writer returns a line-buffering writer for one output stream.
func (f *logFanout) writer() io.Writer { return &lineWriter{f: f} }

func (f *logFanout) emit(line []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sinks) == 0 || len(bytes.TrimSpace(line)) == 0 {
		return
	}
	text, taskID := formatLogLine(f.prefix, line)
	for _, s := range f.sinks {
		if taskID != 0 && s.taskID != taskID {
			continue
		}
		_, _ = io.WriteString(s.w, text)
	}
}

type lineWriter struct {
	f       *logFanout
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
		w.f.emit(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil // do not keep a large buffer alive
	}
	return len(p), nil
}

// formatLogLine renders an hclog JSON line as
// "2006-01-02T15:04:05.000Z [INFO]  plugin FE 1.2.0: message: k=v";
// other lines are kept as they are.
func formatLogLine(prefix string, line []byte) (string, int64) {
	var entry map[string]any
	if line[0] != '{' || json.Unmarshal(line, &entry) != nil {
		return fmt.Sprintf("plugin %s: %s\n", prefix, line), 0
	}
	ts, _ := entry["@timestamp"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	level, _ := entry["@level"].(string)
	msg, _ := entry["@message"].(string)
	var taskID int64
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
	return out + "\n", taskID
}
