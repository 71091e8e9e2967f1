package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/internal/redact"
)

// Handler is the agent's HTTP API. It checks no credentials itself: Serve
// puts it behind mutual TLS, where only the manager's certificate gets a
// connection at all.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.HealthPath, a.health)
	mux.HandleFunc("GET "+wire.HardwarePath, a.hardware)
	mux.HandleFunc("POST "+wire.ExecPath, a.exec)
	mux.HandleFunc("POST "+wire.WriteFilePath, a.writeFile)
	mux.HandleFunc("POST "+wire.ReadFilePath, a.readFile)
	mux.HandleFunc("POST "+wire.DownloadPath, a.download)
	mux.HandleFunc("POST "+wire.DesiredPath, a.setDesired)
	mux.HandleFunc("POST "+wire.UninstallPath, a.uninstall)
	return mux
}

func (a *Agent) health(w http.ResponseWriter, r *http.Request) {
	ok(w, wire.Health{AgentID: a.id, Version: a.version, Host: a.cfg.Host})
}

func (a *Agent) hardware(w http.ResponseWriter, r *http.Request) {
	ok(w, Hardware(a.cfg.DataDir, a.cfg.InstallDir))
}

// stream writes NDJSON lines with flushing; safe for concurrent use.
type stream struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, enc: json.NewEncoder(w)}
}

func (s *stream) line(l wire.Line) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.enc.Encode(l)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// streamOpener returns the open function for results.once: it starts the
// stream into *sp and returns the sink for output lines.
func streamOpener(w http.ResponseWriter, sp **stream) func() func(string) {
	return func() func(string) {
		*sp = newStream(w)
		s := *sp
		return func(out string) { s.line(wire.Line{Output: out}) }
	}
}

// refuseReused answers a request whose id was used for another request
// (409, logged) and reports whether err was that.
func (a *Agent) refuseReused(w http.ResponseWriter, r *http.Request, id string, err error) bool {
	var he *httpError
	if !errors.As(err, &he) || he.status != http.StatusConflict {
		return false
	}
	a.log.Warn("refused a request: its requestId was used for a different request", "requestId", id, "path", r.URL.Path)
	fail(w, err)
	return true
}

func (a *Agent) exec(w http.ResponseWriter, r *http.Request) {
	var req wire.Exec
	if err := decode(w, r, &req, 1<<20); err != nil {
		fail(w, err)
		return
	}
	if err := validTaskRequest(req.RequestID, req.TaskID); err != nil {
		fail(w, err)
		return
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		fail(w, badRequest("argv is empty: give the program and its arguments"))
		return
	}
	if req.Probe {
		a.probe(w, req)
		return
	}
	var s *stream
	res, replayed, err := a.results.once(r.Context(), req.RequestID, execHash(req), streamOpener(w, &s),
		func(emit func(string)) wire.Line { er := a.runCommand(req, emit); return wire.Line{Exec: &er} },
		func(wire.Line) bool { return true })
	if err != nil {
		// A reused id is refused; otherwise the caller went away, and the
		// command goes on and its result is recorded.
		a.refuseReused(w, r, req.RequestID, err)
		return
	}
	if replayed && res.Exec != nil && res.Exec.Output != "" {
		s.line(wire.Line{Output: fmt.Sprintf("[agent: request %s already ran; its recorded output tail follows]\n%s", req.RequestID, res.Exec.Output), Replayed: true})
	}
	res.Replayed = replayed
	s.line(res)
}

// probe runs a read-only command without recording it: repeating it is
// harmless, and status checks every few seconds would otherwise fill the
// results and the task log.
func (a *Agent) probe(w http.ResponseWriter, req wire.Exec) {
	if req.Detach {
		fail(w, badRequest("a probe cannot be detached: it must not start anything"))
		return
	}
	s := newStream(w)
	res := a.runCommand(req, func(out string) { s.line(wire.Line{Output: out}) })
	res.LogPath = ""
	s.line(wire.Line{Exec: &res})
}

func (a *Agent) download(w http.ResponseWriter, r *http.Request) {
	var req wire.Download
	if err := decode(w, r, &req, 1<<20); err != nil {
		fail(w, err)
		return
	}
	if err := validTaskRequest(req.RequestID, req.TaskID); err != nil {
		fail(w, err)
		return
	}
	if !strings.HasPrefix(req.URL, "http://") && !strings.HasPrefix(req.URL, "https://") {
		fail(w, badRequest("url must be http:// or https://, got %q", redact.String(req.URL)))
		return
	}
	if err := wantedSums(req).check(); err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	if req.ViaManager && req.SHA256 == "" {
		fail(w, badRequest("a download via the manager needs the package's sha256"))
		return
	}
	if !filepath.IsAbs(req.Dest) {
		fail(w, badRequest("dest must be an absolute path, got %q", req.Dest))
		return
	}
	var s *stream
	res, replayed, err := a.results.once(r.Context(), req.RequestID, downloadHash(req), streamOpener(w, &s),
		func(emit func(string)) wire.Line {
			dr, err := a.fetch(req, emit)
			if err != nil {
				return wire.Line{Error: redact.String(err.Error())}
			}
			return wire.Line{Download: &dr}
		},
		// A failed download is safe to try again; only successes are kept.
		func(l wire.Line) bool { return l.Error == "" })
	if err != nil {
		a.refuseReused(w, r, req.RequestID, err)
		return
	}
	res.Replayed = replayed
	s.line(res)
}

func (a *Agent) writeFile(w http.ResponseWriter, r *http.Request) {
	var req wire.WriteFile
	if err := decode(w, r, &req, 64<<20); err != nil {
		fail(w, err)
		return
	}
	if err := validRequestID(req.RequestID); err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	if !filepath.IsAbs(req.Path) {
		fail(w, badRequest("path must be absolute, got %q", req.Path))
		return
	}
	mode := os.FileMode(req.Mode).Perm()
	if req.Mode == 0 {
		mode = 0o644
	}
	res, _, err := a.results.once(r.Context(), req.RequestID, writeHash(req, mode), nil, func(func(string)) wire.Line {
		if err := os.MkdirAll(filepath.Dir(req.Path), 0o755); err != nil {
			return wire.Line{Error: fmt.Sprintf("create parent of %s: %v", req.Path, err)}
		}
		if err := writeAtomic(req.Path, req.Data, mode); err != nil {
			return wire.Line{Error: fmt.Sprintf("write %s: %v", req.Path, err)}
		}
		return wire.Line{}
	}, func(l wire.Line) bool { return l.Error == "" })
	if err != nil {
		if !a.refuseReused(w, r, req.RequestID, err) {
			fail(w, err)
		}
		return
	}
	if res.Error != "" {
		fail(w, errors.New(res.Error))
		return
	}
	ok(w, nil)
}

func (a *Agent) readFile(w http.ResponseWriter, r *http.Request) {
	var req wire.ReadFile
	if err := decode(w, r, &req, 1<<20); err != nil {
		fail(w, err)
		return
	}
	if !filepath.IsAbs(req.Path) {
		fail(w, badRequest("path must be absolute, got %q", req.Path))
		return
	}
	max := req.MaxBytes
	if max <= 0 {
		max = 1 << 20
	}
	max = min(max, 64<<20)
	f, err := os.Open(req.Path)
	if errors.Is(err, os.ErrNotExist) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(wire.Envelope[wire.ErrorData]{Msg: fmt.Sprintf("%s does not exist", req.Path), Code: 404, Data: wire.ErrorData{Reason: wire.ReasonNotExist}})
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(w, err)
		return
	}
	if fi.IsDir() {
		fail(w, badRequest("%s is a directory", req.Path))
		return
	}
	size := fi.Size()
	off := max64(0, size-max)
	buf := make([]byte, size-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		fail(w, fmt.Errorf("read %s: %w", req.Path, err))
		return
	}
	ok(w, wire.FileData{Data: buf[:n], Size: size, Truncated: off > 0})
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

var taskIDOK = requestIDRe

func validTaskID(id string) error {
	if id == "" {
		return nil
	}
	if !taskIDOK.MatchString(id) || id == "." || id == ".." {
		return errors.New("taskId must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
	}
	return nil
}

// validTaskRequest checks the ids of a request that runs for a task and
// writes into its log.
func validTaskRequest(requestID, taskID string) error {
	if err := validRequestID(requestID); err != nil {
		return badRequest("%v", err)
	}
	if err := validTaskID(taskID); err != nil {
		return badRequest("%v", err)
	}
	return nil
}
