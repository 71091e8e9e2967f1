package roleexec

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/pkgrelay"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"
)

// agentHost is the sdk.Host a plugin gets for one task: commands, files and
// downloads go to the agent on the task's host; SQL and HTTP probes go from
// the manager, and only to nodes of the task's cluster.
type agentHost struct {
	client  *agentclient.Client
	taskID  string
	taskNum int64
	relay   Relay // nil: hosts download packages themselves
	// prefix makes request ids unique per task attempt; seq numbers the
	// calls of one run, so a run resumed after a manager restart re-sends
	// the same ids and the agent answers them from its records.
	prefix  string
	seq     atomic.Int64
	hostLog atomic.Value // string: the agent's log file of this task
	log     io.Writer
	logMu   *sync.Mutex
	midLine bool             // the log's last line is unfinished (under logMu)
	now     func() time.Time // tests
	allowed map[string]bool  // host names and addresses of the cluster's nodes
	sql     *sqlPool
	http    *http.Client
	pkgURL  string              // the task's package (CheckPackage)
	pkgSums process.PackageSums // its checksums
	// account is the cluster's admin account, asked at every Query.
	account func(ctx context.Context) (Account, error)
}

// CheckPackage makes every download of url check the manager's checksums
// for it where the plugin passes none (a plugin built before SHA-512
// passes no SHA-512), and says in the task log how the package is checked.
func (h *agentHost) CheckPackage(url string, sums process.PackageSums) {
	h.pkgURL, h.pkgSums = url, sums
	h.Logf("%s", sums.Describe(url))
}

// withPackageSums fills the checksums of the task's package into d.
func (h *agentHost) withPackageSums(d sdk.Download) sdk.Download {
	if h.pkgURL == "" || d.URL != h.pkgURL {
		return d
	}
	if d.SHA256 == "" {
		d.SHA256 = h.pkgSums.SHA256
	}
	if d.SHA512 == "" {
		d.SHA512 = h.pkgSums.SHA512
	}
	return d
}

func (h *agentHost) nextID(kind string) string {
	return fmt.Sprintf("%s-%s-%d", h.prefix, kind, h.seq.Add(1))
}

func (h *agentHost) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	res, err := h.client.Exec(ctx, agentclient.ExecRequest{RequestID: h.nextID("exec"), TaskID: h.taskID, Command: cmd}, h.logWriter())
	if res.LogPath != "" {
		h.hostLog.Store(res.LogPath)
	}
	return res, err
}

// HostLogPath is the task's own log file on the host, once an Exec has
// written to it ("" before).
func (h *agentHost) HostLogPath() string {
	p, _ := h.hostLog.Load().(string)
	return p
}

func (h *agentHost) WriteFile(ctx context.Context, path string, data []byte, mode uint32) error {
	return h.client.WriteFile(ctx, agentclient.WriteFileRequest{RequestID: h.nextID("write"), Path: path, Data: data, Mode: mode})
}

func (h *agentHost) ReadFile(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	return h.client.ReadFile(ctx, path, maxBytes)
}

func (h *agentHost) Download(ctx context.Context, d sdk.Download) (sdk.DownloadResult, error) {
	d = h.withPackageSums(d)
	req := agentclient.DownloadRequest{RequestID: h.nextID("download"), TaskID: h.taskID, Download: d}
	if h.relay != nil && h.pkgURL != "" && d.URL == h.pkgURL {
		// The task's package: the manager fetches it once for every host
		// (checked against the same sums), and the agent downloads it from
		// the manager, checking it again. A package that failed the
		// manager's checks fails the task; when the manager cannot fetch or
		// keep it (its network may not reach the mirror the hosts reach),
		// the host fetches it itself.
		e, err := h.relay.Fetch(ctx, d.URL, pkgrelay.Sums{SHA256: d.SHA256, SHA512: d.SHA512}, h.taskNum)
		switch {
		case err == nil:
			how := "the manager has it"
			if e.Fetched {
				how = fmt.Sprintf("the manager fetched it: %d bytes", e.Size)
			}
			h.Logf("package %s via the manager (%s, sha256 %s)", redact.String(d.URL), how, e.SHA256)
			req.Download.SHA256, req.ViaManager = e.SHA256, true
		case errors.Is(err, pkgrelay.ErrBadPackage), ctx.Err() != nil:
			return sdk.DownloadResult{}, err
		default:
			h.Logf("the manager could not relay the package (%v); the host downloads it itself", err)
		}
	}
	return h.client.Download(ctx, req, h.logWriter())
}

func (h *agentHost) Query(ctx context.Context, fe string, query string) (sdk.Rows, error) {
	host, _, err := net.SplitHostPort(fe)
	if err != nil {
		return sdk.Rows{}, fmt.Errorf("FE address %q: want host:query_port", fe)
	}
	if !h.allowed[host] {
		return sdk.Rows{}, fmt.Errorf("FE %s is not a node of this cluster", fe)
	}
	acct := DefaultAccount
	if h.account != nil {
		if acct, err = h.account(ctx); err != nil {
			return sdk.Rows{}, err
		}
	}
	h.Logf("SQL on %s: %s", fe, query)
	return h.sql.query(ctx, fe, acct, query)
}

func (h *agentHost) HTTPGet(ctx context.Context, rawURL string) (sdk.HTTPResponse, error) {
	return h.httpDo(ctx, http.MethodGet, rawURL, "", nil)
}

func (h *agentHost) HTTPPost(ctx context.Context, rawURL, contentType string, body []byte) (sdk.HTTPResponse, error) {
	return h.httpDo(ctx, http.MethodPost, rawURL, contentType, body)
}

// httpDo calls a node of the task's cluster, and nothing else: a plugin
// must not turn the manager into a proxy to arbitrary addresses.
func (h *agentHost) httpDo(ctx context.Context, method, rawURL, contentType string, body []byte) (sdk.HTTPResponse, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return sdk.HTTPResponse{}, fmt.Errorf("URL %q: want http(s)://host:port/path", rawURL)
	}
	if !h.allowed[u.Hostname()] {
		return sdk.HTTPResponse{}, fmt.Errorf("URL %s: %s is not a node of this cluster", rawURL, u.Hostname())
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return sdk.HTTPResponse{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return sdk.HTTPResponse{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return sdk.HTTPResponse{}, fmt.Errorf("read %s: %w", rawURL, err)
	}
	return sdk.HTTPResponse{Status: resp.StatusCode, Body: out}, nil
}

func (h *agentHost) Logf(format string, args ...any) {
	w := h.logWriter()
	_, _ = fmt.Fprintf(w, format+"\n", args...)
}

// logWriter serializes writes into the task log (the plugin may call the
// host from several goroutines) and starts every line with the time it
// began, as the INSTALL_AGENT log does, so a slow task shows where its
// time went.
func (h *agentHost) logWriter() io.Writer { return stampWriter{h} }

// rawLogWriter is for output that carries its own times (the plugin's
// hclog lines).
func (h *agentHost) rawLogWriter() io.Writer { return lockedWriter{h.log, h.logMu} }

// StampFormat is the time prefix of task log lines (UTC).
const StampFormat = "15:04:05.000"

type stampWriter struct{ h *agentHost }

func (s stampWriter) Write(p []byte) (int, error) {
	h := s.h
	h.logMu.Lock()
	defer h.logMu.Unlock()
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	buf := make([]byte, 0, len(p)+32)
	for rest := p; len(rest) > 0; {
		if !h.midLine {
			buf = append(now().UTC().AppendFormat(buf, StampFormat), ' ')
			h.midLine = true
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			buf = append(buf, rest...)
			break
		}
		buf = append(buf, rest[:i+1]...)
		rest = rest[i+1:]
		h.midLine = false
	}
	if _, err := h.log.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sqlPool keeps one database/sql pool per FE address and account for the
// life of the manager, so repeated SHOW probes reuse connections. A pool
// whose password no longer is the account's is retired: no new query uses
// it, and it is closed once the queries in flight on it are done, so no
// connection made with old credentials is used again.
type sqlPool struct {
	mu    sync.Mutex
	pools map[poolKey]*pooledDB
	log   mysql.Logger // the driver's messages, into the manager's log
}

type poolKey struct{ addr, user string }

type pooledDB struct {
	db      *sql.DB
	pass    string
	inUse   int
	retired bool
}

func newSQLPool(log hclog.Logger) *sqlPool {
	return &sqlPool{pools: map[poolKey]*pooledDB{}, log: DriverLogger(log)}
}

// acquire returns the pool of (addr, account), opening it if needed, and
// retires the pools of addr with other credentials; release it after use.
func (p *sqlPool) acquire(addr string, a Account) (*pooledDB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := poolKey{addr, a.User}
	if e, ok := p.pools[key]; ok && e.pass == a.Password {
		e.inUse++
		return e, nil
	}
	// The FE's admin account changed (another password, or another user):
	// every older pool to it goes.
	for k, e := range p.pools {
		if k.addr == addr {
			p.retireLocked(k, e)
		}
	}
	db, err := openMySQL(a.User, a.Password, addr, p.log)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	e := &pooledDB{db: db, pass: a.Password, inUse: 1}
	p.pools[key] = e
	return e, nil
}

func (p *sqlPool) release(e *pooledDB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.inUse--
	if e.retired && e.inUse == 0 {
		_ = e.db.Close()
	}
}

func (p *sqlPool) retireLocked(k poolKey, e *pooledDB) {
	delete(p.pools, k)
	e.retired = true
	if e.inUse == 0 {
		_ = e.db.Close()
	}
}

// query runs q on the FE at addr as account a.
func (p *sqlPool) query(ctx context.Context, addr string, a Account, q string) (sdk.Rows, error) {
	e, err := p.acquire(addr, a)
	if err != nil {
		return sdk.Rows{}, err
	}
	defer p.release(e)
	rows, err := e.db.QueryContext(ctx, q)
	if err != nil {
		return sdk.Rows{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return sdk.Rows{}, err
	}
	out := sdk.Rows{Columns: cols}
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return sdk.Rows{}, err
		}
		vals := make([]string, len(cols))
		for i, b := range raw {
			vals[i] = string(b)
		}
		out.Values = append(out.Values, vals)
	}
	return out, rows.Err()
}

func (p *sqlPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.pools {
		p.retireLocked(k, e)
	}
}

// itoa keeps call sites short.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }
