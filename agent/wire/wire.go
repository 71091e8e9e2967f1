// Package wire holds the JSON bodies exchanged between the agent and the
// manager, in both directions. It has no dependencies so both sides share it.
package wire

import (
	"fmt"
	"path"
	"strings"
	"unicode"
)

// Paths of the manager's agent API (agent -> manager).
const (
	RegisterPath  = "/agent-api/v1/register"
	HeartbeatPath = "/agent-api/v1/heartbeat"
	RenewPath     = "/agent-api/v1/renew"
)

// Roles carried as URI SANs in the certificates of the manager's CA: the
// agent's port accepts only a client certificate with ManagerURI, the
// manager's agent endpoint only one with AgentURI.
const (
	ManagerURI = "dorismanager:manager"
	AgentURI   = "dorismanager:agent"
)

// Paths of the agent's API (manager -> agent).
const (
	HealthPath    = "/api/v1/health"
	HardwarePath  = "/api/v1/hardware"
	ExecPath      = "/api/v1/exec"
	WriteFilePath = "/api/v1/files/write"
	ReadFilePath  = "/api/v1/files/read"
	DownloadPath  = "/api/v1/download"
	DesiredPath   = "/api/v1/roles/desired"
	UninstallPath = "/api/v1/uninstall"
)

// PackagesPath is the manager's package relay on its agent endpoint:
// GET PackagesPath+<sha256>?task=<task id> answers the package of that
// task (Range supported), to the agent of the task's host only.
const PackagesPath = "/agent-api/v1/packages/"

// DefaultPort is where an agent listens unless told otherwise.
const DefaultPort = 9602

// Config is the agent's config file (JSON, mode 0600).
type Config struct {
	ServerURL string `json:"serverURL"` // https://: the manager's agent endpoint
	// ServerURLs are the agent endpoints of every manager sharing the
	// database (ServerURL first); the agent goes to the next one when
	// the one it uses does not answer. Empty in configs from before
	// several managers: ServerURL alone.
	ServerURLs []string `json:"serverURLs,omitempty"`
	// CertFile holds the agent's certificate and private key (PEM, 0600),
	// rewritten by renewal; CAFile the manager CA's trust bundle (PEM),
	// rewritten when the manager hands out a new one.
	CertFile string `json:"certFile"`
	CAFile   string `json:"caFile"`
	// RenewFraction of the certificate's lifetime after which the agent
	// renews it (default 2/3).
	RenewFraction float64 `json:"renewFraction,omitempty"`
	// Listen is host:port; default <host>:9602. Only ":port" (no host)
	// listens on every interface.
	Listen           string `json:"listen"`
	Host             string `json:"host"` // the host name the manager knows this host by
	DataDir          string `json:"dataDir"`
	ClusterID        int64  `json:"clusterId"`
	HeartbeatSeconds int    `json:"heartbeatSeconds"`
	// InstallDir is the operator's base dir of the roles (its disk is
	// in the hardware report). Which pid files to report the manager
	// says in its answers (Beat.PidFiles).
	InstallDir string `json:"installDir,omitempty"`
	// MaxDownloadBytes caps a download (default 8 GiB).
	MaxDownloadBytes int64 `json:"maxDownloadBytes,omitempty"`
	// Limits of the agent's HTTP API; 0 takes the default (agent.DefaultHTTP).
	ReadHeaderTimeoutSeconds float64 `json:"readHeaderTimeoutSeconds,omitempty"` // request headers
	ReadTimeoutSeconds       float64 `json:"readTimeoutSeconds,omitempty"`       // whole request, body included
	WriteTimeoutSeconds      float64 `json:"writeTimeoutSeconds,omitempty"`      // each write of a response
	IdleTimeoutSeconds       float64 `json:"idleTimeoutSeconds,omitempty"`       // kept-alive connection without a request
	MaxConns                 int     `json:"maxConns,omitempty"`                 // connections served at once
}

// Hardware is the agent's hardware report.
type Hardware struct {
	CPU              string `json:"cpu"`
	Cores            int    `json:"cores"`
	TotalMemoryBytes int64  `json:"totalMemoryBytes"`
	TotalMemory      string `json:"totalMemory"`
	Disks            []Disk `json:"disks"`
}

// Disk is one mounted file system.
type Disk struct {
	Mount      string `json:"mount"`
	TotalBytes int64  `json:"totalBytes"`
	FreeBytes  int64  `json:"freeBytes"`
}

// Process is the state of one role process on the host, read from a pid
// file the manager named (Beat.PidFiles).
type Process struct {
	Role    string `json:"role"` // FE, BE, BROKER, or a third-party role
	Pid     int    `json:"pid"`
	Running bool   `json:"running"`
	// Desired is the state the manager last asked for (DesiredRunning or
	// DesiredStopped), "" when it never did.
	Desired string `json:"desired,omitempty"`
}

// Desired states of a role on a host (DesiredRole.State).
const (
	DesiredRunning = "running" // started when the agent starts (after a reboot)
	DesiredStopped = "stopped" // left alone
	DesiredAbsent  = "absent"  // forgotten: the role was removed
)

// DesiredRole is the body of DesiredPath: the state a role should be in
// on the agent's host, which the agent keeps in data/desired.json and
// restores when it starts.
type DesiredRole struct {
	Role  string `json:"role"`
	State string `json:"state"`
	// Order ranks the roles the agent starts when it starts: lower first,
	// each started and its pid alive before a higher one (the FE master 0).
	Order int `json:"order"`
	// Start is the command that last started the role (its plugin's
	// detached start command); nil keeps the recorded one.
	Start *StartCommand `json:"start,omitempty"`
	// PidFile is the absolute path of the role's pid file; "" keeps the
	// recorded one.
	PidFile string `json:"pidFile,omitempty"`
}

// StartCommand is a recorded detached start command.
type StartCommand struct {
	Argv   []string          `json:"argv"`
	Env    map[string]string `json:"env,omitempty"`
	Dir    string            `json:"dir,omitempty"`
	NoFile uint64            `json:"noFile,omitempty"`
}

// Uninstall is the body of UninstallPath: the agent answers, then removes
// its systemd unit (when named), its own folder (the parent of dataDir)
// and installDir if that is left empty, and exits.
type Uninstall struct {
	// SystemdUnit is the unit an install on a host with systemd created;
	// removed when its file exists. Only doris-agent-<hex>.service names
	// are accepted.
	SystemdUnit string `json:"systemdUnit,omitempty"`
}

// PidFile is a role's pid file on the host that the agent reports in
// Process entries: Path is absolute and clean.
type PidFile struct {
	Role string `json:"role"`
	Path string `json:"path"`
}

// Check reports what is wrong with a pid file entry (nil when nothing).
// The manager checks what it sends, the agent what it receives.
func (p PidFile) Check() error {
	switch {
	case p.Role == "" || len(p.Role) > MaxText:
		return fmt.Errorf("pid file role %q: want 1 to %d bytes", p.Role, MaxText)
	case strings.ContainsFunc(p.Role, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fmt.Errorf("pid file role %q: control or invalid character", p.Role)
	case len(p.Path) > MaxPath || !strings.HasPrefix(p.Path, "/") || path.Clean(p.Path) != p.Path ||
		strings.ContainsRune(p.Path, 0) || p.Path == "/":
		return fmt.Errorf("pid file of %s %q: want an absolute, clean path of at most %d bytes", p.Role, p.Path, MaxPath)
	}
	return nil
}

// Bounds of what an agent reports in Register and Heartbeat. The manager
// refuses a report beyond them (400 naming the field); the agent keeps
// within them.
const (
	MaxDisks     = 64
	MaxProcesses = 64   // also the most pid files a Beat names
	MaxText      = 256  // cpu, totalMemory, version, agentId, a process's role
	MaxPath      = 4096 // a disk's mount point
	MaxHost      = 253  // a DNS name's longest text form
)

// Register is the body of RegisterPath.
type Register struct {
	AgentID   string    `json:"agentId"` // the agent's own UUID
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	Version   string    `json:"version"`
	Hardware  Hardware  `json:"hardware"`
	Processes []Process `json:"processes"`
}

// Registered is the data of a successful RegisterPath response.
type Registered struct {
	AgentID          int64 `json:"agentId"` // the manager's id of the agent
	HeartbeatSeconds int   `json:"heartbeatSeconds"`
	Beat
}

// Heartbeat is the body of HeartbeatPath.
type Heartbeat struct {
	AgentID   string    `json:"agentId"`
	Processes []Process `json:"processes"`
	// BundleSHA256 is the hex SHA-256 of the agent's CA bundle file, so the
	// manager sends the bundle only when it changed.
	BundleSHA256 string `json:"bundleSha256,omitempty"`
}

// Beat is the data of a successful HeartbeatPath (and RegisterPath) answer.
type Beat struct {
	// CABundle, when set, is the manager's current trust bundle (PEM):
	// the agent stores it and trusts exactly these CAs from then on.
	CABundle string `json:"caBundle,omitempty"`
	// Renew asks the agent to renew its certificate now (the CA rotated).
	Renew bool `json:"renew,omitempty"`
	// PidFiles, when present (even empty), replaces the list of pid
	// files the agent reports in Processes: one per role the manager
	// knows on this host whose plugin names one. Absent (nil) keeps the
	// list the agent has. At most MaxProcesses entries, each passing
	// PidFile.Check.
	PidFiles []PidFile `json:"pidFiles"`
	// Managers, when present, are the agent endpoints of every running
	// manager on the database (https:// URLs, at most MaxManagers): the
	// agent adds the ones it does not know to those it fails over to.
	Managers []string `json:"managers,omitempty"`
}

// MaxManagers bounds the manager URLs an agent keeps.
const MaxManagers = 32

// ManagerURLs returns the config's manager URLs, ServerURL first, without
// duplicates or empty entries.
func (c Config) ManagerURLs() []string {
	return MergeURLs(nil, append([]string{c.ServerURL}, c.ServerURLs...))
}

// MergeURLs appends the URLs of more that have is lacking (ignoring empty
// ones and a trailing slash), up to MaxManagers in all.
func MergeURLs(have, more []string) []string {
	out := append([]string(nil), have...)
	seen := map[string]bool{}
	for _, u := range out {
		seen[strings.TrimRight(u, "/")] = true
	}
	for _, u := range more {
		k := strings.TrimRight(u, "/")
		if k == "" || seen[k] || len(out) >= MaxManagers {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// Renew is the body of RenewPath: a PEM certificate request signed with
// the agent's new key. The subject and names are the manager's choice.
type Renew struct {
	AgentID string `json:"agentId"`
	CSR     string `json:"csr"`
}

// Renewed is the data of a successful RenewPath answer.
type Renewed struct {
	Certificate string `json:"certificate"` // PEM
	CABundle    string `json:"caBundle"`    // PEM
}

// Envelope is every JSON (non-streaming) response, as core/httpx writes it.
type Envelope[T any] struct {
	Msg  string `json:"msg"`
	Code int    `json:"code"`
	Data T      `json:"data"`
}

// Error codes (Envelope.Msg prefixes are free text; Reason is stable).
const (
	ReasonNotExist = "not_exist"
)

// ErrorData is the data of an error envelope from the agent.
type ErrorData struct {
	Reason string `json:"reason,omitempty"`
}

// Health is the data of HealthPath.
type Health struct {
	AgentID string `json:"agentId"`
	Version string `json:"version"`
	Host    string `json:"host"`
}

// Exec is the body of ExecPath.
type Exec struct {
	RequestID      string            `json:"requestId"`
	TaskID         string            `json:"taskId"` // names the log file task-<taskId>.log
	Argv           []string          `json:"argv"`
	Env            map[string]string `json:"env,omitempty"`
	Dir            string            `json:"dir,omitempty"`
	NoFile         uint64            `json:"noFile,omitempty"`
	TimeoutSeconds float64           `json:"timeoutSeconds,omitempty"`
	Detach         bool              `json:"detach,omitempty"`
	Stdin          []byte            `json:"stdin,omitempty"`
	// Probe marks a read-only check (a status probe every few seconds): it
	// runs without its result recorded or a task log written, and cannot
	// be detached.
	Probe bool `json:"probe,omitempty"`
}

// ExecResult is the recorded outcome of an Exec.
type ExecResult struct {
	ExitCode int    `json:"exitCode"`
	Output   string `json:"output"` // tail, at most 64 KiB
	LogPath  string `json:"logPath"`
	Pid      int    `json:"pid"`
	TimedOut bool   `json:"timedOut,omitempty"`
	// Running is set for a detached process still running when Exec returned.
	Running bool   `json:"running,omitempty"`
	Error   string `json:"error,omitempty"` // could not start, etc.
}

// Line is one NDJSON line of a streamed response (exec, download).
// Exactly one of Output, Result, Error is set; the last line carries
// Result or Error.
type Line struct {
	Output   string          `json:"output,omitempty"`
	Exec     *ExecResult     `json:"exec,omitempty"`
	Download *DownloadResult `json:"download,omitempty"`
	Error    string          `json:"error,omitempty"`
	Replayed bool            `json:"replayed,omitempty"` // recorded result of an earlier identical request
}

// WriteFile is the body of WriteFilePath.
type WriteFile struct {
	RequestID string `json:"requestId"`
	Path      string `json:"path"`
	Data      []byte `json:"data"`
	Mode      uint32 `json:"mode"`
}

// ReadFile is the body of ReadFilePath.
type ReadFile struct {
	Path     string `json:"path"`
	MaxBytes int64  `json:"maxBytes"`
}

// FileData is the data of ReadFilePath.
type FileData struct {
	Data      []byte `json:"data"`
	Size      int64  `json:"size"`
	Truncated bool   `json:"truncated"`
}

// Download is the body of DownloadPath. SHA256 and SHA512 (hex, either,
// both or none) are checked against what was downloaded.
type Download struct {
	RequestID      string  `json:"requestId"`
	TaskID         string  `json:"taskId"`
	URL            string  `json:"url"`
	SHA256         string  `json:"sha256,omitempty"`
	SHA512         string  `json:"sha512,omitempty"`
	Dest           string  `json:"dest"`
	Unpack         bool    `json:"unpack,omitempty"`
	MaxBytes       int64   `json:"maxBytes,omitempty"`
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// ViaManager fetches the package from the manager's relay
	// (PackagesPath, with the agent's certificate) instead of URL; URL
	// still names it (cache, messages) and SHA256 is required.
	ViaManager bool `json:"viaManager,omitempty"`
}

// DownloadResult is the recorded outcome of a Download.
type DownloadResult struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512,omitempty"` // empty for a download cached by an older agent
	Bytes  int64  `json:"bytes"`
	Cached bool   `json:"cached"`
	Error  string `json:"error,omitempty"`
}
