package store

import "time"

// The models below are the whole persistent state of the manager. Column
// types are kept portable so SQLite and PostgreSQL behave the same.

// Cluster is a Doris cluster under management.
type Cluster struct {
	ID   int64  `gorm:"primaryKey"`
	Name string `gorm:"size:128;uniqueIndex"`
	// DestroyedAt is set by the destroy operation once every role and
	// agent of the cluster is gone; a destroyed cluster takes no operation.
	DestroyedAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// User owns API tokens; the owner of a token is the "user" of currentProcess.
type User struct {
	ID        int64  `gorm:"primaryKey"`
	Name      string `gorm:"size:64;uniqueIndex"`
	CreatedAt time.Time
}

// APIToken authenticates REST calls. Only a SHA-256 of the token is stored.
// Role is what the token may do (admin, operator, viewer); the clusters it
// may do it on are its user's Grants. Tokens from before roles existed
// were made admin tokens when the column was added.
type APIToken struct {
	ID         int64      `gorm:"primaryKey"`
	UserID     int64      `gorm:"index"`
	Hash       string     `gorm:"size:64;uniqueIndex"` // hex SHA-256 of the bearer token
	Role       string     `gorm:"size:16"`
	ExpiresAt  *time.Time // nil: never
	RevokedAt  *time.Time
	LastUsedAt *time.Time // updated at most once a minute
	CreatedAt  time.Time
}

// Grant lets a user's operator and viewer tokens act on (or read) one
// cluster. Admin tokens need none.
type Grant struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    int64 `gorm:"uniqueIndex:idx_grant_user_cluster"`
	ClusterID int64 `gorm:"uniqueIndex:idx_grant_user_cluster;index"`
	CreatedAt time.Time
}

// AuditEntry records one state-changing API call or one refused call:
// who, from where, what, on which target, and how it ended. It never
// holds a request body, only ids and host names taken from it.
type AuditEntry struct {
	ID        int64     `gorm:"primaryKey"`
	At        time.Time `gorm:"index"`
	UserID    int64     // 0: no valid token
	UserName  string    `gorm:"size:64;index"`
	TokenID   int64
	Role      string `gorm:"size:16"`
	Remote    string `gorm:"size:64"`  // client address, or "local" for the CLI
	Method    string `gorm:"size:16"`  // HTTP method, or CLI
	Route     string `gorm:"size:255"` // route pattern (/api/process/task/retry/{taskId}) or CLI command
	ClusterID int64  `gorm:"index"`
	ProcessID int64
	TaskID    int64
	Hosts     string `gorm:"size:1024"` // hosts named in the request, comma-separated
	Status    int    // HTTP status of the answer
	Reason    string `gorm:"size:512"` // the refusal or error message, or what was made
	// CreatedProcessID is the process the call started, if any.
	CreatedProcessID int64
}

// Process is one run of the install wizard, or one day-2 operation
// (Kind KindOperation: stop, start, restart, scale-in, upgrade, config,
// destroy), whose tasks run on the same runner.
type Process struct {
	ID        int64 `gorm:"primaryKey"`
	ClusterID int64 `gorm:"index"`
	UserID    int64 `gorm:"index"`
	// Kind is KindWizard ("") or KindOperation. At most one unfinished
	// wizard process per user and per cluster, and at most one unfinished
	// operation per cluster (partial unique indexes).
	Kind        string `gorm:"size:16;default:''"`
	ProcessType string `gorm:"size:32"` // INSTALL_AGENT ... BUILD_CLUSTER, or the operation (UPGRADE...)
	Step        int    // 0..4, the number of ProcessType
	Finish      bool
	Status      string `gorm:"size:16"` // ProcessRunning, ProcessSuccess, ProcessCanceled
	PackageURL  string `gorm:"size:2048"`
	InstallDir  string `gorm:"size:1024"`
	// Credentials holds the SSH credentials sealed with the data dir's key
	// (AES-256-GCM) while the process is unfinished; wiped at installComplete.
	Credentials []byte
	// Version increments on every state change (optimistic concurrency).
	Version int64
	// PackageUpstreamBytes counts the bytes the manager's package relay
	// pulled from package URLs for this process's tasks (AddUpstreamBytes).
	PackageUpstreamBytes int64 `gorm:"not null;default:0"`
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// Kinds of Process.
const (
	KindWizard    = ""
	KindOperation = "OPERATION"
)

// Task is one action on one host (or on the cluster) within a step.
type Task struct {
	ID          int64  `gorm:"primaryKey"`
	ProcessID   int64  `gorm:"index"`
	Step        int    `gorm:"index"`
	Host        string `gorm:"size:255"`
	ProcessType string `gorm:"size:32"`
	TaskType    string `gorm:"size:32"`       // INSTALL_AGENT, INSTALL_FE, DEPLOY_BE_CONFIG, START_BROKER, ADD_BACKEND...
	TaskRole    string `gorm:"size:16"`       // FE, BE, BROKER or "" for agent and cluster tasks
	Status      string `gorm:"size:16;index"` // SUBMITTED, RUNNING, SUCCESS, FAILURE
	Finish      bool
	Skip        bool
	// Seq orders tasks inside a step and role: a task runs only after every
	// task of the same step and TaskRole with a smaller Seq is SUCCESS or
	// skipped. Roles are separate lanes, so FE followers wait for the master
	// FE but not for a slow (or failed) BE.
	Seq     int
	Attempt int // incremented by retry
	// ExecutorID is the manager (runner.Config.ManagerID) that holds the
	// task's lease while it is RUNNING. LeaseUntil is when that lease
	// ends unless renewed (NULL: expired, as in rows from before leases);
	// LeaseEpoch counts the task's claims, so an owner's writes apply only
	// to the claim it made (store/leases.go).
	ExecutorID string `gorm:"size:64"`
	LeaseUntil *time.Time
	LeaseEpoch int64  `gorm:"not null;default:0"`
	Input      string `gorm:"type:text"` // JSON inputs of the action
	Result     string `gorm:"type:text"` // JSON facts reported by the action
	Response   string `gorm:"type:text"` // human-readable outcome or error
	LogPath    string `gorm:"size:1024"` // the task log on the host, when any
	StartTime  *time.Time
	EndTime    *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TaskLog keeps the last 1 MiB of a task's log.
type TaskLog struct {
	TaskID    int64 `gorm:"primaryKey;autoIncrement:false"`
	Content   []byte
	UpdatedAt time.Time
}

// Agent is the doris-agent on one host of a cluster.
type Agent struct {
	ID        int64  `gorm:"primaryKey"`
	ClusterID int64  `gorm:"uniqueIndex:idx_agent_cluster_host"`
	Host      string `gorm:"size:255;uniqueIndex:idx_agent_cluster_host"`
	Port      int
	AgentUUID string `gorm:"size:64;index"` // identity the agent keeps across restarts
	// Status is not stored: AfterFind computes it from LastReportedTime
	// and HeartbeatSeconds (AgentRunning or AgentStop, store/agents.go).
	Status string `gorm:"-"`
	// CertSerial is the serial (hex) of the agent's current certificate:
	// the only one the manager accepts from it, besides PrevCertSerial
	// right after a renewal, until the agent is seen using the new one.
	// A reinstall issues a new certificate and clears PrevCertSerial,
	// which revokes every older one. CertIssuer is the CA that signed it
	// (pki.CAID), CertNotAfter its expiry.
	CertSerial     string `gorm:"size:40;index"`
	PrevCertSerial string `gorm:"size:40;index"`
	CertIssuer     string `gorm:"size:64"`
	CertNotAfter   *time.Time
	InstallDir     string `gorm:"size:1024"`
	Hardware       string `gorm:"type:text"` // JSON of the agent's hardware report
	Processes      string `gorm:"type:text"` // JSON of the last heartbeat's role processes
	RegisterTime   *time.Time
	// LastReportedTime is the last registration or heartbeat (heartbeats
	// are written in batches, so it may lag by the registry's flush
	// interval). HeartbeatSeconds is the interval the agent was told at
	// registration (0 in rows from before it was kept: DefaultHeartbeat).
	LastReportedTime *time.Time
	HeartbeatSeconds int `gorm:"not null;default:0"`
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// HostKey records the SSH host key of a host:port for one cluster: the
// first seen (trust on first use) or the one pinned. Each cluster has its
// own: one cluster's keys never vouch for another's hosts.
type HostKey struct {
	ID          int64  `gorm:"primaryKey"`
	ClusterID   int64  `gorm:"not null;default:0;uniqueIndex:idx_hostkey_cluster_host_port"`
	Host        string `gorm:"size:255;uniqueIndex:idx_hostkey_cluster_host_port"`
	Port        int    `gorm:"uniqueIndex:idx_hostkey_cluster_host_port"`
	KeyType     string `gorm:"size:64"`  // empty after a change until the new key is seen
	Fingerprint string `gorm:"size:128"` // SHA256:... as ssh-keygen prints it
	PublicKey   []byte // empty after a change until the new key is seen
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// AgentRole is one role installed on one host of a cluster.
type AgentRole struct {
	ID        int64  `gorm:"primaryKey"`
	ClusterID int64  `gorm:"uniqueIndex:idx_role_cluster_host_role"`
	Host      string `gorm:"size:255;uniqueIndex:idx_role_cluster_host_role"`
	Role      string `gorm:"size:16;uniqueIndex:idx_role_cluster_host_role"`
	// FENodeType and Master are the API document's placement of an FE;
	// role plugins see them as node labels.
	FENodeType string `gorm:"size:16"`
	Master     bool   // designated first master FE
	// InstallDir is the role's home, always one folder below the
	// operator's installDir, e.g. /usr/local/doris/fe.
	InstallDir string `gorm:"size:1024"`
	Ports      string `gorm:"type:text"` // JSON map of effective ports from Configure
	// Facts is the JSON map of every fact the role's plugin reported for
	// this node, handed back to it in later calls.
	Facts     string `gorm:"type:text"`
	Register  bool   // as last reported by the cluster itself
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PluginPin fixes the plugin version a cluster uses for a role. Version is
// always the resolved version; Constraint is what the operator asked for
// ("~1.2", ">=1.2 <2", "1.2.3"), empty for a pin made at first use. SHA256
// is the hex SHA-256 of the binary pinned: another binary under the same
// version is refused for the cluster. It is empty only in pins recorded
// before the column existed, until their next use fills it.
type PluginPin struct {
	ID         int64  `gorm:"primaryKey"`
	ClusterID  int64  `gorm:"uniqueIndex:idx_pin_cluster_role"`
	Role       string `gorm:"size:16;uniqueIndex:idx_pin_cluster_role"`
	Version    string `gorm:"size:64"`
	Constraint string `gorm:"column:version_constraint;size:128"`
	SHA256     string `gorm:"column:sha256;size:64;not null;default:''"`
	UpdatedAt  time.Time
}

// AdminAccount is the database admin account the manager uses for a
// cluster's SQL (core/clusteradmin). Passwords are sealed (core/secret) and
// never leave the manager but through the one reveal. A cluster without a
// row is spoken to as a fresh Doris cluster: root with an empty password.
type AdminAccount struct {
	ClusterID int64  `gorm:"primaryKey;autoIncrement:false"`
	User      string `gorm:"column:admin_user;size:64"` // "user" is reserved in PostgreSQL
	// Password is the sealed password known to work; nil for an empty one.
	Password []byte
	// Generated: the manager made Password; Revealed: it was shown once.
	Generated bool
	Revealed  bool
	// Pending is a sealed password chosen for the cluster but not yet known
	// to be set on it: recorded before it is set, so a manager stopped in
	// between still knows it. PendingGenerated says the manager made it.
	Pending          []byte
	PendingGenerated bool
	UpdatedAt        time.Time
}

// AllModels lists every model for migration.
func AllModels() []any {
	return []any{&Cluster{}, &User{}, &APIToken{}, &Grant{}, &AuditEntry{}, &Process{}, &Task{}, &TaskLog{},
		&Agent{}, &HostKey{}, &AgentRole{}, &PluginPin{}, &AdminAccount{}, &Manager{}, &NodeObservation{}, &ConsoleSession{}}
}
