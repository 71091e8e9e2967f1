// Package process is the install wizard: it validates each step's request,
// moves a process from step to step and records the step's tasks (which the
// runner then executes), and handles retry, skip, back and completion.
package process

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/core/pkgsum"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/hashicorp/go-hclog"
)

// Steps of the wizard, in order.
const (
	StepInstallAgent   = 0
	StepInstallService = 1
	StepDeployConfig   = 2
	StepStartService   = 3
	StepBuildCluster   = 4
)

// StepTypes names each step (Process.ProcessType and Task.ProcessType).
var StepTypes = [...]string{"INSTALL_AGENT", "INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"}

// Process statuses (kept in core/store).
const (
	StatusRunning  = store.ProcessRunning
	StatusSuccess  = store.ProcessSuccess
	StatusCanceled = store.ProcessCanceled
)

// Credentials are the SSH credentials of a process, stored sealed in
// Process.Credentials until installComplete wipes them.
type Credentials struct {
	User                string            `json:"user"`
	SSHKey              string            `json:"sshKey"`
	Passphrase          string            `json:"passphrase,omitempty"`
	HostKeyFingerprints map[string]string `json:"hostKeyFingerprints,omitempty"`
	StrictHostKeys      bool              `json:"strictHostKeys,omitempty"`
}

// Checksums finds the checksum published beside a package
// (core/pkgsum.Fetcher).
type Checksums interface {
	Lookup(ctx context.Context, packageURL string) (pkgsum.Sum, error)
}

// Sealer encrypts credentials and package URL passwords before they are
// stored, and opens a sealed package URL where the engine uses it
// (core/secret.Box).
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Stopper stops what the START_SERVICE tasks of a process started, so that
// back can return to DEPLOY_CONFIG. It gets every task of the step that ran
// (SUCCESS or FAILURE) and must be safe to call again for the same tasks.
type Stopper interface {
	StopStarted(ctx context.Context, tasks []store.Task) error
}

// Kind classifies an Error for the HTTP layer.
type Kind int

// Kinds of Error.
const (
	KindInvalid   Kind = iota + 1 // bad request (400)
	KindNotFound                  // unknown id (404)
	KindConflict                  // wrong state or lost a race (409)
	KindForbidden                 // someone else's process (403)
)

// Error is a refusal whose message says what to fix.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
}
func notFound(format string, args ...any) error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, args...)}
}
func conflict(format string, args ...any) error {
	return &Error{Kind: KindConflict, Msg: fmt.Sprintf(format, args...)}
}
func forbidden(format string, args ...any) error {
	return &Error{Kind: KindForbidden, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of err, or 0 for unexpected errors.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Config wires an Engine.
type Config struct {
	Store *store.Store
	// Catalogue says which roles can be installed and how (their plugins'
	// Info); without it no role can be.
	Catalogue Catalogue
	Sealer    Sealer  // required for installAgent (and a package URL with a password)
	Stopper   Stopper // used by back; nil refuses back once something was started
	// Checksums looks up the checksum published beside the package when
	// installService gives none; nil looks nothing up (installService
	// then needs packageSha256 or allowUnverifiedPackage).
	Checksums Checksums
	Notify    func() // called after new or re-submitted tasks are committed
	Logger    hclog.Logger
	// Guard, if set, refuses a step on a cluster busy with something else
	// (a day-2 operation); its error is returned as is.
	Guard func(ctx context.Context, clusterID int64) error
}

// Engine runs the wizard. It keeps no state of its own: the store is the
// truth, so several engines may share one database.
type Engine struct {
	st      *store.Store
	cat     Catalogue
	sums    Checksums
	sealer  Sealer
	stopper Stopper
	notify  func()
	log     hclog.Logger
	guard   func(ctx context.Context, clusterID int64) error
}

// New returns an Engine.
func New(cfg Config) *Engine {
	e := &Engine{st: cfg.Store, cat: cfg.Catalogue, sums: cfg.Checksums, sealer: cfg.Sealer, stopper: cfg.Stopper, notify: cfg.Notify, log: cfg.Logger, guard: cfg.Guard}
	if e.guard == nil {
		e.guard = func(context.Context, int64) error { return nil }
	}
	if e.notify == nil {
		e.notify = func() {}
	}
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	return e
}

// View is a process as currentProcess shows it.
type View struct {
	store.Process
	// ProcessStep is Step, plus one once every task of the step is SUCCESS
	// or skipped, so a wizard UI knows it may move on.
	ProcessStep int
}

// loadOwned loads a process the user may change: it exists, is theirs and
// is not finished.
func (e *Engine) loadOwned(ctx context.Context, userID, processID int64) (store.Process, error) {
	if processID <= 0 {
		return store.Process{}, invalid("processId is required: the id installAgent returned")
	}
	p, err := e.st.GetProcess(ctx, processID)
	if errors.Is(err, store.ErrNotFound) {
		return p, notFound("process %d does not exist", processID)
	}
	if err != nil {
		return p, fmt.Errorf("load process %d: %w", processID, err)
	}
	if p.UserID != userID {
		return p, forbidden("process %d belongs to another user", processID)
	}
	if p.Finish {
		return p, conflict("process %d is complete and read-only: start a new one with installAgent", processID)
	}
	return p, nil
}

// stepCatalogue checks that the process is the user's and unfinished
// (loadOwned) and returns the role catalogue of its cluster, which the
// role steps validate their input against.
func (e *Engine) stepCatalogue(ctx context.Context, userID, processID int64) (catalogue, error) {
	p, err := e.loadOwned(ctx, userID, processID)
	if err != nil {
		return nil, err
	}
	return e.catalogue(ctx, p.ClusterID)
}

// changedMeanwhile is the conflict for a lost race on a process's version:
// it says where the other request left the process, so the caller knows
// whether its own request is moot (the step was sent twice) or must be
// sent again.
func changedMeanwhile(ctx context.Context, st *store.Store, id int64, hint string) error {
	if hint != "" {
		hint = " (" + hint + ")"
	}
	p, err := st.GetProcess(ctx, id)
	if err != nil {
		return conflict("process %d was changed by another request meanwhile%s: reload it", id, hint)
	}
	state := "at " + p.ProcessType
	if p.Finish {
		state = "complete (" + strings.ToLower(p.Status) + ")"
	}
	return conflict("process %d was changed by another request meanwhile%s and is now %s: reload it", id, hint, state)
}

// stepDone reports whether every task of a step is SUCCESS or skipped
// and there is one; BUILD_CLUSTER may have none (no role with cluster
// membership was started), and is done then.
func stepDone(step int, tasks []store.Task) bool {
	for _, t := range tasks {
		if !done(t) {
			return false
		}
	}
	return len(tasks) > 0 || step == StepBuildCluster
}

func done(t store.Task) bool { return t.Skip || t.Status == store.StatusSuccess }

// describePending lists tasks that are not done, for error messages.
func describePending(tasks []store.Task) string {
	var parts []string
	for _, t := range tasks {
		if done(t) {
			continue
		}
		if len(parts) == 5 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("task %d %s on %s is %s", t.ID, t.TaskType, t.Host, t.Status))
	}
	return strings.Join(parts, "; ")
}

func hostRole(host, role string) string { return host + "\x00" + role }

func isMaster(in task.Role) bool { return in.Labels[LabelMaster] == "true" }

// StepEnded tells, for a task that just ended, whether it ended its wizard
// step: every task of the step is SUCCESS or skipped. Then it returns the
// process's cluster and the step; a task of an operation (core/ops
// settles those) or of a step with work left gives ok false.
func StepEnded(ctx context.Context, st *store.Store, taskID int64) (clusterID int64, step int, ok bool, err error) {
	t, err := st.GetTask(ctx, taskID)
	if err != nil {
		return 0, 0, false, fmt.Errorf("task %d: %w", taskID, err)
	}
	p, err := st.GetProcess(ctx, t.ProcessID)
	if err != nil {
		return 0, 0, false, fmt.Errorf("process %d of task %d: %w", t.ProcessID, taskID, err)
	}
	if p.Kind != store.KindWizard {
		return 0, 0, false, nil
	}
	all, err := st.TasksOfStep(ctx, p.ID, t.Step)
	if err != nil {
		return 0, 0, false, fmt.Errorf("tasks of process %d step %d: %w", p.ID, t.Step, err)
	}
	if !stepDone(t.Step, all) {
		return 0, 0, false, nil
	}
	return p.ClusterID, t.Step, true, nil
}
