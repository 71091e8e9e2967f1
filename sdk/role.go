// Package sdk is the public, versioned contract between Doris Manager and its
// role plugins (FE, BE, BROKER, or a third party's own role).
//
// A plugin implements Role and calls Serve from its main. The manager calls the
// Role for one task at a time and hands it a Host: a narrow, task-scoped view of
// exactly one machine (run a command, read and write files, download a package)
// plus SQL and HTTP probes against the cluster. A plugin never sees the
// manager's credentials or environment.
package sdk

import (
	"context"
	"errors"
	"fmt"
)

// API version of this contract. The major changes only with incompatible
// changes; the manager refuses plugins whose major differs from its own.
const (
	APIMajor = 1
	APIMinor = 0
)

// Role names known to the manager. Third-party roles may use other names.
const (
	RoleFE     = "FE"
	RoleBE     = "BE"
	RoleBroker = "BROKER"
)

// FE node types.
const (
	FEFollower = "FOLLOWER"
	FEObserver = "OBSERVER"
)

// Info describes a plugin binary.
type Info struct {
	Name         string   `json:"name"`    // e.g. "doris-role-fe"
	Role         string   `json:"role"`    // FE, BE, BROKER
	Version      string   `json:"version"` // semver without a leading v, e.g. "1.2.0"
	APIMajor     int      `json:"apiMajor"`
	APIMinor     int      `json:"apiMinor"`
	Capabilities []string `json:"capabilities,omitempty"` // e.g. "autofix", "tar.xz"
}

// Node is one role instance on one host.
type Node struct {
	Host       string `json:"host"`       // address the manager and other nodes use
	Role       string `json:"role"`       // FE, BE, BROKER
	InstallDir string `json:"installDir"` // base dir chosen by the operator, e.g. /usr/local/doris
	FENodeType string `json:"feNodeType,omitempty"`
	// Ports are the effective ports by Doris conf key (http_port, query_port,
	// edit_log_port, heartbeat_service_port, webserver_port, broker_ipc_port...).
	// Filled from what Configure reported in its Facts.
	Ports map[string]int `json:"ports,omitempty"`
	// Master marks the FE the operator (or the install order) designated as
	// the first master. Register still asks the cluster who the master is.
	Master bool `json:"master,omitempty"`
	// Skipped nodes took part in an earlier step whose task was skipped.
	Skipped bool `json:"skipped,omitempty"`
}

// Cluster is the manager's view of the cluster at the time of the call.
type Cluster struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Nodes []Node `json:"nodes"` // every role instance known to the manager, this one included
}

// Request is the input of every Role call.
type Request struct {
	TaskID  int64   `json:"taskId"`
	Node    Node    `json:"node"`
	Cluster Cluster `json:"cluster"`

	PackageURL    string `json:"packageUrl,omitempty"`
	PackageSHA256 string `json:"packageSha256,omitempty"`
	// Conf is the role's config file text (Configure).
	Conf    string `json:"conf,omitempty"`
	AutoFix bool   `json:"autoFix,omitempty"`
	// Targets lists the nodes a cluster-wide call (Register, Unregister)
	// acts on; empty means just Node.
	Targets []Node `json:"targets,omitempty"`
	// Params carries further step inputs as strings.
	Params map[string]string `json:"params,omitempty"`
}

// Result is what a successful call reports.
type Result struct {
	Summary string `json:"summary"` // one line for the task's response
	Detail  string `json:"detail,omitempty"`
	// Facts are remembered by the manager for later calls and for roleList,
	// e.g. "port.http_port": "8030", "registered": "YES", "master": "10.0.0.2".
	Facts map[string]string `json:"facts,omitempty"`
}

// Failure is the error a plugin returns when a step fails for a reason the
// operator should read: Summary says what is wrong and what to change, Detail
// carries evidence such as the tail of a log.
type Failure struct {
	Summary   string
	Detail    string
	Retryable bool
}

func (f *Failure) Error() string {
	if f.Detail == "" {
		return f.Summary
	}
	return f.Summary + ": " + f.Detail
}

// Failf builds a non-retryable Failure.
func Failf(format string, args ...any) *Failure {
	return &Failure{Summary: fmt.Sprintf(format, args...)}
}

// AsFailure turns any error into a Failure, keeping one that already is.
func AsFailure(err error) *Failure {
	if err == nil {
		return nil
	}
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Summary: err.Error()}
}

// Role is what a role plugin implements. Every method must be safe to call
// again with the same request (the manager retries), and must return promptly
// when ctx is done.
type Role interface {
	Info(ctx context.Context) (Info, error)
	// Precheck verifies the host can run the role (swap, vm.max_map_count,
	// open files, free ports, disk, Java...). With Request.AutoFix it applies
	// the fixes that are safe to apply.
	Precheck(ctx context.Context, h Host, req Request) (Result, error)
	// Install downloads Request.PackageURL on the host and installs the
	// role's folder under Node.InstallDir.
	Install(ctx context.Context, h Host, req Request) (Result, error)
	// Configure validates and writes Request.Conf, creates the directories
	// it names, and reports the effective ports as Facts "port.<key>".
	Configure(ctx context.Context, h Host, req Request) (Result, error)
	// Start starts the role and waits until it is healthy.
	Start(ctx context.Context, h Host, req Request) (Result, error)
	Stop(ctx context.Context, h Host, req Request) (Result, error)
	// Status reports Facts "running" and "healthy" ("true"/"false").
	Status(ctx context.Context, h Host, req Request) (Result, error)
	// Register joins Request.Targets (or Node) to the cluster and waits
	// until the cluster reports them alive.
	Register(ctx context.Context, h Host, req Request) (Result, error)
	Unregister(ctx context.Context, h Host, req Request) (Result, error)
}
