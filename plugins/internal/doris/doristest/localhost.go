package doristest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // Query speaks MySQL to the FEs

	"github.com/dorismanager/dorismanager/agent/unpack"
	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
)

// LocalHost is an sdk.Host on this machine, for tests that run role plugins
// against real processes (the Doris simulator): Exec runs the argv, files
// are real files, Download fetches over HTTP and unpacks, Query speaks
// MySQL as root with an empty password, HTTPGet/HTTPPost are plain HTTP.
// Command.NoFile is not applied (the test process's limits are inherited).
type LocalHost struct {
	t testing.TB
	// KernelOK makes the host probe report vm.max_map_count 2000000 and
	// swap off, as on a host prepared for Doris BEs, whatever this
	// machine says; start_be.sh's own checks are the simulator's knobs.
	KernelOK bool

	mu    sync.Mutex
	logs  []string
	dbs   map[string]*sql.DB
	cache map[string]string // URL+sha256 -> an unpacked copy, as an agent caches
}

var _ sdk.Host = (*LocalHost)(nil)

// NewLocalHost returns a LocalHost whose connections close with the test.
func NewLocalHost(t testing.TB) *LocalHost {
	h := &LocalHost{t: t, dbs: map[string]*sql.DB{}, cache: map[string]string{}, KernelOK: true}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, db := range h.dbs {
			db.Close()
		}
	})
	return h
}

// Logs returns every Logf line so far.
func (h *LocalHost) Logs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logs...)
}

// cleanEnv is this process's environment without what would leak into the
// roles' scripts from the test run.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "JAVA_HOME", "DORIS_HOME", "BROKER_HOME", "LOG_DIR", "PID_DIR":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Exec implements sdk.Host.
func (h *LocalHost) Exec(ctx context.Context, c sdk.Command) (sdk.ExecResult, error) {
	if len(c.Argv) == 0 {
		return sdk.ExecResult{}, errors.New("exec: empty argv")
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = cleanEnv()
	for k, v := range c.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = c.Dir
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A daemon the script left behind may hold the output open.
	cmd.WaitDelay = 2 * time.Second
	if c.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	err := cmd.Run()
	res := sdk.ExecResult{Output: out.String(), LogPath: "/dev/null"}
	if cmd.Process != nil {
		res.Pid = cmd.Process.Pid
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
	case err != nil:
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if h.KernelOK && len(c.Argv) > 2 && (c.Argv[2] == doris.ProbeScript || c.Argv[2] == doris.ProcProbeScript || c.Argv[2] == doris.StartProbeScript) {
		res.Output = preparedKernel(res.Output)
	}
	return res, nil
}

func preparedKernel(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "swap="):
			continue
		case strings.HasPrefix(l, "max_map_count="):
			l = "max_map_count=2000000"
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// WriteFile implements sdk.Host.
func (h *LocalHost) WriteFile(ctx context.Context, path string, data []byte, mode uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, fs.FileMode(mode)); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadFile implements sdk.Host.
func (h *LocalHost) ReadFile(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, sdk.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	if int64(len(b)) > maxBytes {
		b = b[int64(len(b))-maxBytes:]
	}
	return b, nil
}

// Download implements sdk.Host: it fetches d.URL, checks the checksum and
// unpacks into d.Dest (replaced), or saves the file there. An archive
// unpacked before is copied from the first unpack (cp -a).
func (h *LocalHost) Download(ctx context.Context, d sdk.Download) (sdk.DownloadResult, error) {
	key := d.URL + " " + strings.ToLower(d.SHA256)
	h.mu.Lock()
	cached, ok := h.cache[key]
	h.mu.Unlock()
	if ok && d.Unpack {
		if err := os.RemoveAll(d.Dest); err != nil {
			return sdk.DownloadResult{}, err
		}
		if err := os.MkdirAll(filepath.Dir(d.Dest), 0o755); err != nil {
			return sdk.DownloadResult{}, err
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", "--", cached, d.Dest).CombinedOutput(); err != nil {
			return sdk.DownloadResult{}, fmt.Errorf("copy cached unpack: %v %s", err, out)
		}
		return sdk.DownloadResult{Path: d.Dest, SHA256: d.SHA256, Cached: true}, nil
	}
	res, err := h.download(ctx, d)
	if err == nil && d.Unpack {
		copyDir := filepath.Join(h.t.TempDir(), "unpacked")
		if out, err := exec.CommandContext(ctx, "cp", "-a", "--", d.Dest, copyDir).CombinedOutput(); err != nil {
			return res, fmt.Errorf("keep unpacked copy: %v %s", err, out)
		}
		h.mu.Lock()
		h.cache[key] = copyDir
		h.mu.Unlock()
	}
	return res, err
}

func (h *LocalHost) download(ctx context.Context, d sdk.Download) (sdk.DownloadResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL, nil)
	if err != nil {
		return sdk.DownloadResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sdk.DownloadResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sdk.DownloadResult{}, &sdk.Failure{Summary: fmt.Sprintf("GET %s: HTTP %d", d.URL, resp.StatusCode)}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return sdk.DownloadResult{}, err
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	if d.SHA256 != "" && !strings.EqualFold(d.SHA256, got) {
		return sdk.DownloadResult{}, &sdk.Failure{Summary: fmt.Sprintf("%s: sha256 %s, want %s", d.URL, got, d.SHA256)}
	}
	res := sdk.DownloadResult{Path: d.Dest, SHA256: got, Bytes: int64(len(body))}
	if !d.Unpack {
		return res, h.WriteFile(ctx, d.Dest, body, 0o644)
	}
	if err := os.MkdirAll(filepath.Dir(d.Dest), 0o755); err != nil {
		return res, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(d.Dest), ".unpack-")
	if err != nil {
		return res, err
	}
	if err := unpack.Extract(ctx, bytes.NewReader(body), tmp, unpack.LimitsFor(int64(len(body)))); err != nil {
		os.RemoveAll(tmp)
		return res, err
	}
	os.RemoveAll(d.Dest)
	return res, os.Rename(tmp, d.Dest)
}

func (h *LocalHost) db(addr string) (*sql.DB, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if db, ok := h.dbs[addr]; ok {
		return db, nil
	}
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/?timeout=5s&readTimeout=30s&writeTimeout=30s", addr))
	if err != nil {
		return nil, err
	}
	h.dbs[addr] = db
	return db, nil
}

// Query implements sdk.Host.
func (h *LocalHost) Query(ctx context.Context, addr, q string) (sdk.Rows, error) {
	db, err := h.db(addr)
	if err != nil {
		return sdk.Rows{}, err
	}
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return sdk.Rows{}, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return sdk.Rows{}, err
	}
	out := sdk.Rows{Columns: cols}
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return sdk.Rows{}, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out.Values = append(out.Values, row)
	}
	return out, rs.Err()
}

func (h *LocalHost) http(ctx context.Context, method, url, contentType string, body []byte) (sdk.HTTPResponse, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return sdk.HTTPResponse{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return sdk.HTTPResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return sdk.HTTPResponse{Status: resp.StatusCode, Body: b}, err
}

// HTTPGet implements sdk.Host.
func (h *LocalHost) HTTPGet(ctx context.Context, url string) (sdk.HTTPResponse, error) {
	return h.http(ctx, http.MethodGet, url, "", nil)
}

// HTTPPost implements sdk.Host.
func (h *LocalHost) HTTPPost(ctx context.Context, url, contentType string, body []byte) (sdk.HTTPResponse, error) {
	return h.http(ctx, http.MethodPost, url, contentType, body)
}

// Logf implements sdk.Host.
func (h *LocalHost) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.mu.Lock()
	h.logs = append(h.logs, msg)
	h.mu.Unlock()
	h.t.Logf("host: %s", msg)
}
