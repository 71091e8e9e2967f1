package sdktest

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/dorismanager/dorismanager/sdk"
)

// DefaultStartTimeout bounds the start of a plugin binary (StartBinary,
// Conformance with WithBinary).
const DefaultStartTimeout = 10 * time.Second

// StartBinary starts a built plugin binary as the manager does: the real
// go-plugin handshake (sdk.Handshake, sdk.PluginSets(nil), gRPC only,
// AutoMTLS, no environment) and returns the manager's side of it, every
// call going through gRPC to that process. A binary that exits, crashes or
// does not finish the handshake within startTimeout is an error naming the
// last lines it wrote to stderr. The process is stopped when the test ends.
func StartBinary(t testing.TB, path string, startTimeout time.Duration) (*sdk.RoleClient, error) {
	t.Helper()
	if startTimeout <= 0 {
		startTimeout = DefaultStartTimeout
	}
	tail := &stderrTail{}
	logs := &testWriter{t: t}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: sdk.PluginSets(nil),
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     startTimeout,
		// The plugin's own log records, and go-plugin's, go to the test log.
		Logger:     hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: logs, Level: hclog.Info}),
		Stderr:     tail,
		SyncStderr: tail,
	})
	t.Cleanup(func() {
		pc.Kill() // waits until the process and its output are done
		logs.stop()
	})
	fail := func(err error) (*sdk.RoleClient, error) {
		pc.Kill() // waits until the process's stderr is read
		msg := fmt.Sprintf("plugin binary %s did not start through the go-plugin handshake (start timeout %s): %v", path, startTimeout, err)
		if lines := tail.lines(); len(lines) > 0 {
			msg += "\nits last stderr lines:\n  " + strings.Join(lines, "\n  ")
		}
		return nil, fmt.Errorf("%s", msg)
	}
	rpc, err := pc.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return fail(err)
	}
	rc, ok := raw.(*sdk.RoleClient)
	if !ok {
		return fail(fmt.Errorf("dispensed %T, want *sdk.RoleClient", raw))
	}
	return rc, nil
}

// stderrTail keeps the last lines a plugin wrote to stderr that are not
// hclog JSON records.
type stderrTail struct {
	mu      sync.Mutex
	partial []byte
	tail    []string
}

const stderrTailLines = 20

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(s.partial[:i]), "\r")
		s.partial = s.partial[i+1:]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "{") {
			continue
		}
		if len(s.tail) == stderrTailLines {
			s.tail = s.tail[1:]
		}
		s.tail = append(s.tail, line)
	}
	return len(p), nil
}

func (s *stderrTail) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.tail...)
	if len(s.partial) > 0 {
		out = append(out, string(s.partial))
	}
	return out
}

// testWriter sends log lines to the test log until the test's cleanup.
type testWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}
