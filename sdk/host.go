package sdk

import (
	"context"
	"errors"
	"time"
)

// ErrNotExist is returned (wrapped) by Host.ReadFile for a missing file.
var ErrNotExist = errors.New("file does not exist")

// Host is served by the manager to a plugin for exactly one host and one
// task. Everything a plugin does to a machine goes through it, so it lands in
// that task's log and obeys that task's deadline.
type Host interface {
	// Exec runs an argv on the host (never through a shell unless the argv
	// itself names one, with user data passed as separate arguments). Its
	// output streams into the task's log; ExecResult carries its tail.
	// A non-zero exit is not an error: check ExecResult.ExitCode.
	Exec(ctx context.Context, cmd Command) (ExecResult, error)
	// WriteFile writes a file atomically (temp file + rename), creating
	// parent directories.
	WriteFile(ctx context.Context, path string, data []byte, mode uint32) error
	// ReadFile reads at most maxBytes from the end of a file (0: up to 1 MiB).
	// A missing file gives an error wrapping ErrNotExist.
	ReadFile(ctx context.Context, path string, maxBytes int64) ([]byte, error)
	// Download fetches an http(s) URL on the host, checks its SHA-512 and
	// SHA-256 when given, and unpacks .tar.gz/.tgz/.tar.xz archives into
	// Dest when Unpack. Downloads are cached on the host by URL and
	// checksums. Redirects are followed only to https or on the URL's own
	// scheme and host. For the task's package (Request.PackageURL) the
	// manager adds the checksums it has when the plugin gives none.
	Download(ctx context.Context, d Download) (DownloadResult, error)
	// Query runs one SQL statement over the MySQL protocol against addr
	// ("host:port", a node of the task's cluster) as the cluster's admin
	// account, for roles whose cluster speaks MySQL. The manager keeps the
	// credentials; the plugin never sees them.
	Query(ctx context.Context, fe string, sql string) (Rows, error)
	// HTTPGet fetches an http URL of a node of the task's cluster (health
	// probes), from the manager. Bodies are cut at 1 MiB.
	HTTPGet(ctx context.Context, url string) (HTTPResponse, error)
	// HTTPPost posts body to an http URL of a node of the task's cluster
	// (a role's admin endpoints), from the manager.
	HTTPPost(ctx context.Context, url, contentType string, body []byte) (HTTPResponse, error)
	// Logf writes a line into the task's log.
	Logf(format string, args ...any)
}

// Command is one process to run on a host.
type Command struct {
	Argv []string          `json:"argv"`
	Env  map[string]string `json:"env,omitempty"`
	Dir  string            `json:"dir,omitempty"`
	// NoFile is the open-files limit (soft and hard, capped at the host's
	// hard limit); 0 means the agent's default of 65536.
	NoFile uint64 `json:"noFile,omitempty"`
	// Timeout bounds the run; 0 means the task's remaining time.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Detach starts the process in its own session so that it outlives the
	// agent and the task. Exec then returns when the process exits (a start
	// script that daemonizes and returns) or, for a process that keeps
	// running, after Timeout (default 10 s when 0) with ExecResult.Running.
	Detach bool   `json:"detach,omitempty"`
	Stdin  []byte `json:"stdin,omitempty"`
}

// ExecResult is the outcome of Exec.
type ExecResult struct {
	ExitCode int    `json:"exitCode"`
	Output   string `json:"output"`  // tail of combined stdout+stderr (at most 64 KiB)
	LogPath  string `json:"logPath"` // the task's log file on the host
	// Pid is the process's id (the started process, for Detach).
	Pid int `json:"pid,omitempty"`
	// Running: a detached process still ran when Exec returned.
	Running bool `json:"running,omitempty"`
}

// Download describes a package to fetch on the host.
type Download struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256,omitempty"`
	SHA512 string `json:"sha512,omitempty"`
	// Dest is the file path to save to, or with Unpack the directory to
	// unpack into (created; replaced atomically when complete). Unpack keeps
	// the archive's paths as they are: an archive whose entries sit under a
	// top folder "pkg-1.0/" lands in Dest/pkg-1.0/. Entries that would leave
	// Dest (absolute paths, "..", links out) fail the download.
	Dest   string `json:"dest"`
	Unpack bool   `json:"unpack,omitempty"`
}

// DownloadResult reports what was fetched.
type DownloadResult struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512,omitempty"`
	Bytes  int64  `json:"bytes"`
	Cached bool   `json:"cached"` // already present with the same URL and checksum
}

// Rows is a SQL result set, every value as text (NULL as "").
type Rows struct {
	Columns []string   `json:"columns"`
	Values  [][]string `json:"values"`
}

// Col returns the value of the named column in row i, or "".
func (r Rows) Col(i int, name string) string {
	for j, c := range r.Columns {
		if c == name && i < len(r.Values) && j < len(r.Values[i]) {
			return r.Values[i][j]
		}
	}
	return ""
}

// HTTPResponse is the outcome of HTTPGet.
type HTTPResponse struct {
	Status int    `json:"status"`
	Body   []byte `json:"body"`
}
