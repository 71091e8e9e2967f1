// Package sdk is the public, versioned contract between Doris Manager and its
// role plugins: the Doris roles (FE, BE, BROKER) and any third party's own.
//
// A plugin implements Role and calls Serve from its main. The manager calls the
// Role for one task at a time and hands it a Host: a narrow, task-scoped view of
// exactly one machine (run a command, read and write files, download a package)
// plus SQL and HTTP probes against the nodes of the cluster. A plugin never
// sees the manager's credentials or environment.
//
// # Writing a role
//
// The rules a plugin must follow; the manager enforces the first group when it
// accepts a plugin file (Info.Validate), sdktest.Conformance checks the rest.
//
//   - Info is the role's catalogue entry. Role: upper-case letters and digits,
//     starting with a letter, at most RoleNameMaxLen (16) bytes; AGENT and
//     BACKEND are taken. Version: semantic, no leading v. APIMajor: this
//     package's APIMajor. Home: the folder under the operator's installDir
//     (lower case, at most HomeMaxLen bytes; default the role name in lower
//     case). Params: every parameter the role reads, typed; the manager refuses
//     others. PidFile: relative to the home. Capabilities: exactly the optional
//     interfaces the role implements (CapMembership: Member, CapUpgrade:
//     Upgrader, CapReconfigure: Reconfigurer).
//   - The task types of a role X are INSTALL_X (Precheck, then Install),
//     DEPLOY_X_CONFIG (Configure), START_X (Start) and, with CapMembership,
//     ADD_X (Register). Their order in a cluster follows Info.Order.
//   - Every method may be called again with the same Request (a retry, or a
//     manager that restarted mid-task) and must then succeed or fail the same
//     way without harm: check before you change.
//   - Every method returns promptly when ctx is done. A task has a deadline
//     (30 minutes by default); long waits take a timeout parameter.
//   - A failure the operator should act on is a *Failure whose Summary says
//     what is wrong and what to change, with evidence (a log tail) in Detail;
//     Retryable marks failures a retry may cure. Other errors are reported
//     as they are.
//   - Everything happens through Host: argv, never a shell line with user
//     data pasted in (pass data as separate arguments); files through
//     WriteFile/ReadFile; packages through Download (cached, checksummed,
//     unpacked keeping the archive's top folder).
//   - Long-running processes start with Command.Detach: Exec returns when the
//     process exits, or after Command.Timeout (default 10 s) with
//     ExecResult.Running and ExecResult.Pid. Record the pid in Info.PidFile.
//   - Facts report what the manager should remember about a node: the Fact*
//     keys (booleans as "true"/"false"), ports as PortFact(name). The manager
//     hands them back in Node.Facts and Node.Ports in later calls for the node.
//   - Host.Logf writes to the task's log, which the operator reads in
//     /api/process/task/log. Lines the plugin logs through hclog (on stderr)
//     reach the manager's log and the logs of the tasks whose calls are in
//     flight (only that task's, when the line has a "task_id" key holding
//     Request.TaskID). Text a crashing plugin leaves on stderr (a panic) is
//     shown in the failed task.
//
// sdktest holds a FakeHost for unit tests and Conformance, which runs these
// checks directly, over gRPC in process and, with WithBinary, on the built
// binary through the real plugin handshake. The repository's
// examples/exporter is a complete third-party role.
package sdk

import (
	"context"
	"errors"
	"fmt"
)

// API version of this contract. The major changes only with incompatible
// changes; the manager refuses plugins whose major differs from its own.
const (
	APIMajor = 2
	APIMinor = 0
)

// Capabilities a plugin announces in Info.Capabilities. The manager calls an
// optional method only when the plugin announces its capability.
const (
	// CapMembership: the role has cluster membership; the manager calls
	// Register after the role's nodes started (a BUILD_CLUSTER task
	// ADD_<ROLE>) and Unregister before it removes a node. The plugin
	// implements Member.
	CapMembership = "membership"
	// CapAutoFix: Precheck can fix what it finds when Request.AutoFix.
	CapAutoFix = "autofix"
	// CapUpgrade: the plugin implements Upgrader.
	CapUpgrade = "upgrade"
	// CapReconfigure: the plugin implements Reconfigurer.
	CapReconfigure = "reconfigure"
)

// Info describes a role plugin binary: it is the role's entry in the
// manager's role catalogue. Info.Validate states the rules it must follow;
// the manager refuses a plugin whose Info breaks one.
type Info struct {
	// Name of the plugin, e.g. "doris-role-fe"; printable, at most 64 bytes.
	Name string `json:"name"`
	// Role is the role's name as operators write it in the API (installInfos
	// role, task types INSTALL_<ROLE>): upper-case ASCII letters and digits,
	// starting with a letter, at most 16 bytes (RoleNameMaxLen).
	Role string `json:"role"`
	// Version is the plugin's semantic version without a leading v, e.g.
	// "1.2.0". Clusters are pinned to one version of each role.
	Version  string `json:"version"`
	APIMajor int    `json:"apiMajor"`
	APIMinor int    `json:"apiMinor"`
	// Home is the name of the role's folder under the operator's installDir
	// (Node.Home = installDir/Home); empty means the role name in lower case.
	// Lower-case letters, digits, '.', '_' and '-', at most 64 bytes.
	Home         string   `json:"home,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"` // Cap* constants; others are ignored
	// Params are the parameters installService may pass for this role in its
	// "params" object. The manager refuses unknown names and values that do
	// not parse as the declared type, fills in defaults, and hands them to
	// every call in Request.Params.
	Params []Param `json:"params,omitempty"`
	// Order is how the role's nodes are sequenced in a cluster.
	Order Order `json:"order"`
	// PidFile is where, relative to the role home, the role's process id is
	// after Start (e.g. "bin/fe.pid"). The host's agent watches it and
	// reports whether the role runs; empty means the agent cannot tell.
	PidFile     string `json:"pidFile,omitempty"`
	Description string `json:"description,omitempty"`
}

// Param is one parameter a role accepts.
type Param struct {
	// Name: a letter, then letters, digits or '_'; at most 64 bytes.
	Name string `json:"name"`
	// Type is one of ParamString, ParamInt, ParamBool, ParamDuration.
	Type string `json:"type"`
	// Default is used when the operator gives no value; it must parse as Type.
	Default     string `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
}

// Parameter types. Values always travel as strings: ints in decimal, bools
// as "true"/"false", durations in Go's syntax ("90s", "5m"; whole seconds
// such as "600" are accepted and passed on as "600s").
const (
	ParamString   = "string"
	ParamInt      = "int"
	ParamBool     = "bool"
	ParamDuration = "duration"
)

// Order sequences a role's tasks.
type Order struct {
	// After names roles whose nodes must all have joined the cluster
	// (their ADD_ tasks done) before this role's ADD_ tasks run, e.g. Doris
	// BEs join after the FEs.
	After []string `json:"after,omitempty"`
	// OneAtATime: the role's nodes start and register one after another
	// instead of all at once (Doris FEs join the master one by one).
	OneAtATime bool `json:"oneAtATime,omitempty"`
}

// Limits of the names in Info.
const (
	RoleNameMaxLen   = 16
	HomeMaxLen       = 64
	ParamNameMaxLen  = 64
	PluginNameMaxLen = 64
)

// Node is one role instance on one host.
type Node struct {
	Host string `json:"host"` // address the manager and other nodes use
	Role string `json:"role"`
	// InstallDir is the base folder the operator chose, e.g. /usr/local/doris.
	InstallDir string `json:"installDir"`
	// Home is the role's folder: InstallDir joined with Info.Home.
	Home string `json:"home,omitempty"`
	// Labels are the placement the operator gave the node, by name. The
	// manager fills those it knows from the API (a Doris FE: "feNodeType",
	// "master"); they are the role's to interpret.
	Labels map[string]string `json:"labels,omitempty"`
	// Ports are the node's ports by name, from the facts "port.<name>" the
	// role reported (PortFact).
	Ports map[string]int `json:"ports,omitempty"`
	// Facts are every fact the role reported for this node in earlier calls,
	// the latest value of each key.
	Facts Facts `json:"facts,omitempty"`
	// Skipped nodes took part in an earlier step whose task was skipped.
	Skipped bool `json:"skipped,omitempty"`
}

// Label returns a label's value, or "".
func (n Node) Label(name string) string { return n.Labels[name] }

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

	// PackageURL is the package to install, PackageSHA256 and
	// PackageSHA512 its checksums as the manager knows them (given by the
	// operator, or published beside the package); pass them on to
	// Host.Download. Both empty: the operator allowed an unverified package.
	PackageURL    string `json:"packageUrl,omitempty"`
	PackageSHA256 string `json:"packageSha256,omitempty"`
	PackageSHA512 string `json:"packageSha512,omitempty"`
	// Conf is the role's whole config file text (Configure, Reconfigure).
	Conf    string `json:"conf,omitempty"`
	AutoFix bool   `json:"autoFix,omitempty"`
	// Targets lists the nodes a cluster-wide call (Register, Unregister)
	// acts on; empty means just Node.
	Targets []Node `json:"targets,omitempty"`
	// Params are the role's parameters (Info.Params), defaults filled in.
	Params map[string]string `json:"params,omitempty"`
	// Force lets Unregister drop a node without draining it first.
	Force bool `json:"force,omitempty"`
	// Purge makes Remove delete the role's data too.
	Purge bool `json:"purge,omitempty"`
	// DryRun makes Reconfigure report its changes without making them.
	DryRun bool `json:"dryRun,omitempty"`
}

// Result is what a successful call reports.
type Result struct {
	Summary string `json:"summary"` // one line for the task's response
	Detail  string `json:"detail,omitempty"`
	// Facts are remembered by the manager for this node, handed back in
	// Node.Facts of later calls and shown in roleList; see the Fact* keys.
	Facts Facts `json:"facts,omitempty"`
	// Changes is what Reconfigure changed (or, with DryRun, would change).
	Changes []Change `json:"changes,omitempty"`
}

// Change is one config key that differs between the deployed file and the
// requested one.
type Change struct {
	Key string `json:"key"`
	Old string `json:"old"` // "" when the key is added
	New string `json:"new"` // "" when the key is removed
	// Impact is ImpactLive (applied to the running process) or
	// ImpactRestart (takes effect at the next start).
	Impact string `json:"impact"`
}

// Impacts of a Change.
const (
	ImpactLive    = "live"
	ImpactRestart = "restart"
)

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

// Role is what every role plugin implements. Every method must be safe to
// call again with the same request (the manager retries a task whose
// manager died), must return promptly when ctx is done, and reports a
// failure the operator should read as a *Failure.
//
// Everything a method does to the machine goes through the Host it is given:
// the task's log shows each command, and the call obeys the task's deadline
// (default 30 minutes per task). Write progress with Host.Logf; lines logged
// through the plugin's hclog logger reach the manager's log, and the task's
// log only when they carry a "task_id" key.
type Role interface {
	Info(ctx context.Context) (Info, error)
	// Precheck verifies the host can run the role (ports free, disk, limits,
	// runtime). With Request.AutoFix and CapAutoFix it applies the fixes
	// that are safe to apply.
	Precheck(ctx context.Context, h Host, req Request) (Result, error)
	// Install downloads Request.PackageURL on the host and installs it as
	// Node.Home.
	Install(ctx context.Context, h Host, req Request) (Result, error)
	// Configure validates and writes Request.Conf, creates the directories
	// it names, and reports the effective ports as facts (PortFact).
	Configure(ctx context.Context, h Host, req Request) (Result, error)
	// Start starts the role detached (Command.Detach) and waits until it is
	// healthy; it leaves the pid in Info.PidFile.
	Start(ctx context.Context, h Host, req Request) (Result, error)
	// Stop stops the role and waits until it is gone. Stopping a stopped
	// role succeeds.
	Stop(ctx context.Context, h Host, req Request) (Result, error)
	// Status reports FactRunning and FactHealthy, and what else it knows
	// (FactAlive, FactVersion, FactDecommissioning...). It changes nothing.
	Status(ctx context.Context, h Host, req Request) (Result, error)
	// Remove deletes what Install and Configure created (the role home);
	// with Request.Purge also the role's data. The role is stopped first by
	// the manager. Removing a removed role succeeds.
	Remove(ctx context.Context, h Host, req Request) (Result, error)
}

// Member is implemented by roles with CapMembership.
type Member interface {
	// Register joins Request.Targets (or Node) to the cluster and waits
	// until the cluster reports them alive; FactRegistered.
	Register(ctx context.Context, h Host, req Request) (Result, error)
	// Unregister takes Request.Targets (or Node) out of the cluster,
	// draining first where the role holds data, and refuses when the
	// cluster would lose data or quorum; Request.Force drops without
	// draining.
	Unregister(ctx context.Context, h Host, req Request) (Result, error)
}

// Upgrader is implemented by roles with CapUpgrade.
type Upgrader interface {
	// Upgrade replaces the node's software by Request.PackageURL, keeping
	// its conf and data: unpack beside the running version, stop, switch,
	// start, wait healthy, report FactVersion. A Failure's Detail says how
	// to roll the node back.
	Upgrade(ctx context.Context, h Host, req Request) (Result, error)
}

// Reconfigurer is implemented by roles with CapReconfigure.
type Reconfigurer interface {
	// Reconfigure compares Request.Conf (the whole new file) with the
	// deployed one and reports Result.Changes. With Request.DryRun it
	// changes nothing. Otherwise it applies live the keys the running
	// process can change, writes the file, and sets FactRestartNeeded when
	// a key needs a restart (the manager then restarts the node).
	Reconfigure(ctx context.Context, h Host, req Request) (Result, error)
}

// Remote is a role plugin as the manager holds it (*RoleClient): every
// method, the optional ones answering a Failure when the plugin does not
// implement them.
type Remote interface {
	Role
	Member
	Upgrader
	Reconfigurer
}
