// Package sdktest helps role plugin authors test their roles: a FakeHost
// that records every call and answers with scripted responses, an
// in-process harness that runs a role across the real gRPC boundary, and a
// conformance test every role plugin should pass.
package sdktest

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/dorismanager/dorismanager/sdk"
)

// Call is one recorded Host call. Only the fields of its Method are set.
type Call struct {
	Method   string // Exec, WriteFile, ReadFile, Download, Query, HTTPGet, HTTPPost, Logf
	Command  sdk.Command
	Path     string // WriteFile, ReadFile
	Data     []byte // WriteFile
	Mode     uint32 // WriteFile
	MaxBytes int64  // ReadFile
	Download sdk.Download
	FE       string // Query
	SQL      string // Query
	URL      string // HTTPGet, HTTPPost
	Body     []byte // HTTPPost
	Message  string // Logf, formatted
}

// ExecFunc answers one Exec.
type ExecFunc func(cmd sdk.Command) (sdk.ExecResult, error)

// QueryFunc answers one Query.
type QueryFunc func(fe, sql string) (sdk.Rows, error)

// HTTPGetFunc answers one HTTPGet.
type HTTPGetFunc func(url string) (sdk.HTTPResponse, error)

// HTTPPostFunc answers one HTTPPost.
type HTTPPostFunc func(url, contentType string, body []byte) (sdk.HTTPResponse, error)

// DownloadFunc answers one Download.
type DownloadFunc func(d sdk.Download) (sdk.DownloadResult, error)

// File is one file of the FakeHost's in-memory file system.
type File struct {
	Data []byte
	Mode uint32
}

type prefixed[F any] struct {
	prefix []string
	fn     F
}

// FakeHost is an sdk.Host for unit tests. It records every call, keeps an
// in-memory file system for WriteFile/ReadFile, and answers Exec, Query,
// HTTPGet and Download from handlers the test registers. Every method
// returns ctx.Err() first when ctx is done. It is safe for concurrent use.
//
// Without a matching handler: Exec answers exit code 127 with an output
// naming the argv, Query and HTTPGet return an error naming the SQL or URL,
// and Download succeeds, storing a placeholder file at Dest unless Unpack.
type FakeHost struct {
	mu       sync.Mutex
	calls    []Call
	files    map[string]File
	fail     map[string]error
	failAll  error
	execs    []prefixed[ExecFunc]
	queries  []prefixed[QueryFunc]
	gets     []prefixed[HTTPGetFunc]
	posts    []prefixed[HTTPPostFunc]
	download DownloadFunc
	defExec  ExecFunc
	logPath  string
}

var _ sdk.Host = (*FakeHost)(nil)

// NewFakeHost returns an empty FakeHost.
func NewFakeHost() *FakeHost {
	return &FakeHost{files: map[string]File{}, fail: map[string]error{}, logPath: "/fake/task.log"}
}

// HandleExec answers Exec calls whose argv starts with argvPrefix (an empty
// prefix matches everything). The longest matching prefix wins; among
// equal lengths, the latest registration.
func (f *FakeHost) HandleExec(fn ExecFunc, argvPrefix ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, prefixed[ExecFunc]{prefix: argvPrefix, fn: fn})
}

// ExecOK answers Exec calls starting with argvPrefix with exit code 0 and
// the given output.
func (f *FakeHost) ExecOK(output string, argvPrefix ...string) {
	f.HandleExec(func(sdk.Command) (sdk.ExecResult, error) {
		return sdk.ExecResult{Output: output}, nil
	}, argvPrefix...)
}

// ExecExit answers Exec calls starting with argvPrefix with the given exit
// code and output.
func (f *FakeHost) ExecExit(code int, output string, argvPrefix ...string) {
	f.HandleExec(func(sdk.Command) (sdk.ExecResult, error) {
		return sdk.ExecResult{ExitCode: code, Output: output}, nil
	}, argvPrefix...)
}

// SetDefaultExec answers every Exec no handler matches.
func (f *FakeHost) SetDefaultExec(fn ExecFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.defExec = fn
}

// HandleQuery answers Query calls whose SQL, trimmed, starts with
// sqlPrefix (case-insensitive). The longest matching prefix wins.
func (f *FakeHost) HandleQuery(sqlPrefix string, fn QueryFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, prefixed[QueryFunc]{prefix: []string{strings.ToUpper(strings.TrimSpace(sqlPrefix))}, fn: fn})
}

// QueryRows answers Query calls starting with sqlPrefix with fixed rows.
func (f *FakeHost) QueryRows(sqlPrefix string, rows sdk.Rows) {
	f.HandleQuery(sqlPrefix, func(string, string) (sdk.Rows, error) { return rows, nil })
}

// HandleHTTPGet answers HTTPGet calls whose URL starts with urlPrefix.
// The longest matching prefix wins.
func (f *FakeHost) HandleHTTPGet(urlPrefix string, fn HTTPGetFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, prefixed[HTTPGetFunc]{prefix: []string{urlPrefix}, fn: fn})
}

// HandleHTTPPost answers HTTPPost calls whose URL starts with urlPrefix.
// The longest matching prefix wins.
func (f *FakeHost) HandleHTTPPost(urlPrefix string, fn HTTPPostFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts = append(f.posts, prefixed[HTTPPostFunc]{prefix: []string{urlPrefix}, fn: fn})
}

// HTTPGetResponse answers HTTPGet calls starting with urlPrefix with a
// fixed status and body.
func (f *FakeHost) HTTPGetResponse(urlPrefix string, status int, body string) {
	f.HandleHTTPGet(urlPrefix, func(string) (sdk.HTTPResponse, error) {
		return sdk.HTTPResponse{Status: status, Body: []byte(body)}, nil
	})
}

// HandleDownload replaces the default Download behaviour.
func (f *FakeHost) HandleDownload(fn DownloadFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.download = fn
}

// SetFile puts a file into the in-memory file system.
func (f *FakeHost) SetFile(path string, data []byte, mode uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = File{Data: append([]byte(nil), data...), Mode: mode}
}

// RemoveFile deletes a file from the in-memory file system.
func (f *FakeHost) RemoveFile(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path)
}

// FailPath makes WriteFile and ReadFile of path return err.
func (f *FakeHost) FailPath(path string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[path] = err
}

// FailAll makes every later Exec, WriteFile, ReadFile, Download, Query and
// HTTPGet return err (nil restores normal behaviour). Calls are still
// recorded.
func (f *FakeHost) FailAll(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAll = err
}

// File returns a file of the in-memory file system.
func (f *FakeHost) File(path string) (File, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[path]
	if ok {
		fl.Data = append([]byte(nil), fl.Data...)
	}
	return fl, ok
}

// Paths lists the files of the in-memory file system, sorted.
func (f *FakeHost) Paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.files))
	for p := range f.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Calls returns every call recorded so far, in order.
func (f *FakeHost) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsOf returns the recorded calls of one method.
func (f *FakeHost) CallsOf(method string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Execs returns the argv of every Exec call, in order.
func (f *FakeHost) Execs() [][]string {
	var out [][]string
	for _, c := range f.CallsOf("Exec") {
		out = append(out, c.Command.Argv)
	}
	return out
}

// Logs returns every Logf line, in order.
func (f *FakeHost) Logs() []string {
	var out []string
	for _, c := range f.CallsOf("Logf") {
		out = append(out, c.Message)
	}
	return out
}

// ResetCalls forgets the recorded calls, keeping files and handlers.
func (f *FakeHost) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// record logs a call and returns the error it must fail with, if any.
func (f *FakeHost) record(ctx context.Context, c Call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.failAll
}

// Exec implements sdk.Host.
func (f *FakeHost) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	cmd.Argv = append([]string(nil), cmd.Argv...)
	if err := f.record(ctx, Call{Method: "Exec", Command: cmd}); err != nil {
		return sdk.ExecResult{}, err
	}
	if len(cmd.Argv) == 0 {
		return sdk.ExecResult{}, fmt.Errorf("exec: empty argv")
	}
	f.mu.Lock()
	fn := longest(f.execs, func(p []string) bool { return argvHasPrefix(cmd.Argv, p) })
	if fn == nil {
		fn = f.defExec
	}
	logPath := f.logPath
	f.mu.Unlock()
	if fn == nil {
		return sdk.ExecResult{ExitCode: 127, Output: fmt.Sprintf("sdktest.FakeHost: no Exec handler for %q", cmd.Argv), LogPath: logPath}, nil
	}
	res, err := fn(cmd)
	if res.LogPath == "" {
		res.LogPath = logPath
	}
	return res, err
}

// WriteFile implements sdk.Host.
func (f *FakeHost) WriteFile(ctx context.Context, path string, data []byte, mode uint32) error {
	if err := f.record(ctx, Call{Method: "WriteFile", Path: path, Data: append([]byte(nil), data...), Mode: mode}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[path]; err != nil {
		return err
	}
	if path == "" || !strings.HasPrefix(path, "/") {
		return fmt.Errorf("write %q: path must be absolute", path)
	}
	f.files[path] = File{Data: append([]byte(nil), data...), Mode: mode}
	return nil
}

// ReadFile implements sdk.Host.
func (f *FakeHost) ReadFile(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	if err := f.record(ctx, Call{Method: "ReadFile", Path: path, MaxBytes: maxBytes}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[path]; err != nil {
		return nil, err
	}
	fl, ok := f.files[path]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", path, sdk.ErrNotExist)
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	data := fl.Data
	if int64(len(data)) > maxBytes {
		data = data[int64(len(data))-maxBytes:]
	}
	return append([]byte(nil), data...), nil
}

// Download implements sdk.Host.
func (f *FakeHost) Download(ctx context.Context, d sdk.Download) (sdk.DownloadResult, error) {
	if err := f.record(ctx, Call{Method: "Download", Download: d}); err != nil {
		return sdk.DownloadResult{}, err
	}
	f.mu.Lock()
	fn := f.download
	f.mu.Unlock()
	if fn != nil {
		return fn(d)
	}
	if d.URL == "" || d.Dest == "" {
		return sdk.DownloadResult{}, fmt.Errorf("download: url and dest are required")
	}
	body := []byte("sdktest download of " + d.URL)
	sum, sum512 := sha256.Sum256(body), sha512.Sum512(body)
	hexSum, hex512 := hex.EncodeToString(sum[:]), hex.EncodeToString(sum512[:])
	if d.SHA256 != "" {
		hexSum = strings.ToLower(d.SHA256)
	}
	if d.SHA512 != "" {
		hex512 = strings.ToLower(d.SHA512)
	}
	if !d.Unpack {
		f.SetFile(d.Dest, body, 0o644)
	}
	return sdk.DownloadResult{Path: d.Dest, SHA256: hexSum, SHA512: hex512, Bytes: int64(len(body))}, nil
}

// Query implements sdk.Host.
func (f *FakeHost) Query(ctx context.Context, fe string, sql string) (sdk.Rows, error) {
	if err := f.record(ctx, Call{Method: "Query", FE: fe, SQL: sql}); err != nil {
		return sdk.Rows{}, err
	}
	up := strings.ToUpper(strings.TrimSpace(sql))
	f.mu.Lock()
	fn := longest(f.queries, func(p []string) bool { return strings.HasPrefix(up, p[0]) })
	f.mu.Unlock()
	if fn == nil {
		return sdk.Rows{}, fmt.Errorf("sdktest.FakeHost: no Query handler for %q on %s", sql, fe)
	}
	return fn(fe, sql)
}

// HTTPGet implements sdk.Host.
func (f *FakeHost) HTTPGet(ctx context.Context, url string) (sdk.HTTPResponse, error) {
	if err := f.record(ctx, Call{Method: "HTTPGet", URL: url}); err != nil {
		return sdk.HTTPResponse{}, err
	}
	f.mu.Lock()
	fn := longest(f.gets, func(p []string) bool { return strings.HasPrefix(url, p[0]) })
	f.mu.Unlock()
	if fn == nil {
		return sdk.HTTPResponse{}, fmt.Errorf("sdktest.FakeHost: no HTTPGet handler for %s", url)
	}
	return fn(url)
}

// HTTPPost implements sdk.Host.
func (f *FakeHost) HTTPPost(ctx context.Context, url, contentType string, body []byte) (sdk.HTTPResponse, error) {
	if err := f.record(ctx, Call{Method: "HTTPPost", URL: url, Body: append([]byte(nil), body...)}); err != nil {
		return sdk.HTTPResponse{}, err
	}
	f.mu.Lock()
	fn := longest(f.posts, func(p []string) bool { return strings.HasPrefix(url, p[0]) })
	f.mu.Unlock()
	if fn == nil {
		return sdk.HTTPResponse{}, fmt.Errorf("sdktest.FakeHost: no HTTPPost handler for %s", url)
	}
	return fn(url, contentType, body)
}

// Logf implements sdk.Host.
func (f *FakeHost) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: "Logf", Message: fmt.Sprintf(format, args...)})
}

// longest picks the handler with the longest matching prefix, the latest
// registration winning ties. Callers hold f.mu.
func longest[F any](hs []prefixed[F], match func([]string) bool) F {
	var best F
	bestLen := -1
	for _, h := range hs {
		n := 0
		for _, p := range h.prefix {
			n += len(p) + 1
		}
		if match(h.prefix) && n >= bestLen {
			best, bestLen = h.fn, n
		}
	}
	return best
}

func argvHasPrefix(argv, prefix []string) bool {
	if len(prefix) > len(argv) {
		return false
	}
	for i, p := range prefix {
		if argv[i] != p {
			return false
		}
	}
	return true
}
