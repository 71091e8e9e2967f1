package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// InstallAgentRequest starts a process (step 0). With ProcessID set it
// re-issues step 0 of that unfinished process: the credentials are replaced
// and its FAILURE INSTALL_AGENT tasks run again (new hosts get new tasks).
type InstallAgentRequest struct {
	ProcessID           int64
	ClusterID           int64
	Hosts               []string
	User                string
	SSHPort             int
	SSHKey              string
	Passphrase          string
	HostKeyFingerprints map[string]string
	// StrictHostKeys wants a fingerprint for every host in
	// HostKeyFingerprints: no host key is trusted on first use.
	StrictHostKeys bool
	PackageURL     string
	InstallDir     string
}

func (r *InstallAgentRequest) validate() error {
	if r.ClusterID <= 0 {
		return invalid("clusterId is required: a positive cluster id (an unknown id creates that cluster)")
	}
	if err := checkHosts("hosts", r.Hosts); err != nil {
		return err
	}
	if err := checkUser("user", r.User); err != nil {
		return err
	}
	if err := checkPort("sshPort", r.SSHPort); err != nil {
		return err
	}
	if err := checkSSHKey(r.SSHKey, r.Passphrase); err != nil {
		return err
	}
	if err := checkPackageURL("packageUrl", r.PackageURL); err != nil {
		return err
	}
	if err := checkInstallDir("installDir", r.InstallDir); err != nil {
		return err
	}
	inHosts := map[string]bool{}
	for _, h := range r.Hosts {
		inHosts[h] = true
	}
	for h, fp := range r.HostKeyFingerprints {
		if !inHosts[h] {
			return invalid("hostKeyFingerprints: host %q is not in hosts", h)
		}
		if !fingerprint.MatchString(fp) {
			return invalid("hostKeyFingerprints[%s]: %q is not a fingerprint like ssh-keygen -l prints (SHA256:...)", h, fp)
		}
	}
	if r.StrictHostKeys {
		var missing []string
		for _, h := range r.Hosts {
			if r.HostKeyFingerprints[h] == "" {
				missing = append(missing, h)
			}
		}
		if len(missing) > 0 {
			return invalid("strictHostKeys: hostKeyFingerprints has no fingerprint for %s: give every host's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host), or leave strictHostKeys out to trust each host's key on first use",
				listSome(missing, 5))
		}
	}
	return nil
}

// listSome joins at most max items, saying how many more there are.
func listSome(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}

func (e *Engine) sealCredentials(r *InstallAgentRequest) ([]byte, error) {
	if e.sealer == nil {
		return nil, errors.New("no secret key configured to seal SSH credentials")
	}
	c := Credentials{User: r.User, SSHKey: r.SSHKey, Passphrase: r.Passphrase, HostKeyFingerprints: r.HostKeyFingerprints,
		StrictHostKeys: r.StrictHostKeys}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	sealed, err := e.sealer.Seal(b)
	if err != nil {
		return nil, fmt.Errorf("seal SSH credentials: %w", err)
	}
	return sealed, nil
}

func agentInput(r *InstallAgentRequest, host string) string {
	return task.Encode(task.Agent{ClusterID: r.ClusterID, Host: host, SSHPort: r.SSHPort, User: r.User, InstallDir: r.InstallDir})
}

// InstallAgent creates a process at INSTALL_AGENT with one task per host
// and returns its id (or re-issues step 0, see InstallAgentRequest).
func (e *Engine) InstallAgent(ctx context.Context, userID int64, r InstallAgentRequest) (int64, error) {
	if err := r.validate(); err != nil {
		return 0, err
	}
	if err := e.guard(ctx, r.ClusterID); err != nil {
		return 0, err
	}
	if r.ProcessID != 0 {
		return r.ProcessID, e.reinstallAgent(ctx, userID, r)
	}
	if p, err := e.st.OpenProcessOfUser(ctx, userID); err == nil {
		return 0, conflict("you already have unfinished process %d (cluster %d, at %s): continue it, pass its processId to re-run installAgent, or call installComplete/%d",
			p.ID, p.ClusterID, p.ProcessType, p.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	if p, err := e.st.OpenProcessOfCluster(ctx, r.ClusterID); err == nil {
		return 0, conflict("cluster %d already has unfinished process %d of another user", r.ClusterID, p.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	sealed, err := e.sealCredentials(&r)
	if err != nil {
		return 0, err
	}
	pkgURL, err := SealPackageURL(e.sealer, "packageUrl", r.PackageURL)
	if err != nil {
		return 0, err
	}
	var id int64
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		if _, _, err := tx.EnsureCluster(ctx, r.ClusterID); err != nil {
			if store.IsDuplicate(err) {
				return conflict("cluster %d does not exist and cannot be created: %v (create clusters with POST /api/cluster)", r.ClusterID, err)
			}
			return fmt.Errorf("create cluster %d: %w", r.ClusterID, err)
		}
		p := store.Process{ClusterID: r.ClusterID, UserID: userID, ProcessType: StepTypes[0], Step: 0,
			Status: StatusRunning, PackageURL: pkgURL, InstallDir: r.InstallDir, Credentials: sealed}
		if err := tx.CreateProcess(ctx, &p); err != nil {
			if store.IsDuplicate(err) {
				return conflict("you or cluster %d already have an unfinished process (created at the same time)", r.ClusterID)
			}
			return fmt.Errorf("create process: %w", err)
		}
		id = p.ID
		tasks := make([]store.Task, 0, len(r.Hosts))
		for _, h := range r.Hosts {
			tasks = append(tasks, newTask(p, StepInstallAgent, h, TaskInstallAgent, "", 0, agentInput(&r, h)))
		}
		return tx.CreateTasks(ctx, tasks)
	})
	if err != nil {
		return 0, err
	}
	e.log.Info("process created", "process", id, "cluster", r.ClusterID, "hosts", len(r.Hosts))
	e.notify()
	return id, nil
}

func (e *Engine) reinstallAgent(ctx context.Context, userID int64, r InstallAgentRequest) error {
	p, err := e.loadOwned(ctx, userID, r.ProcessID)
	if err != nil {
		return err
	}
	if p.Step != StepInstallAgent {
		return conflict("process %d is at %s: installAgent can only be re-run while it is at INSTALL_AGENT", p.ID, p.ProcessType)
	}
	if p.ClusterID != r.ClusterID {
		return invalid("clusterId %d differs from process %d's cluster %d", r.ClusterID, p.ID, p.ClusterID)
	}
	tasks, err := e.st.TasksOfStep(ctx, p.ID, StepInstallAgent)
	if err != nil {
		return err
	}
	sealed, err := e.sealCredentials(&r)
	if err != nil {
		return err
	}
	pkgURL, err := SealPackageURL(e.sealer, "packageUrl", r.PackageURL)
	if err != nil {
		return err
	}
	byHost := map[string]store.Task{}
	for _, t := range tasks {
		byHost[t.Host] = t
	}
	if err := wouldRunSome(p, r.Hosts, tasks); err != nil {
		return err
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		ok, err := tx.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{"credentials": sealed,
			"package_url": pkgURL, "install_dir": r.InstallDir})
		if err != nil {
			return err
		}
		if !ok {
			return changedMeanwhile(ctx, tx, p.ID, "")
		}
		var fresh []store.Task
		for _, h := range r.Hosts {
			if _, ok := byHost[h]; !ok {
				fresh = append(fresh, newTask(p, StepInstallAgent, h, TaskInstallAgent, "", 0, agentInput(&r, h)))
			}
		}
		if err := tx.CreateTasks(ctx, fresh); err != nil {
			return err
		}
		for _, t := range tasks {
			if t.Status != store.StatusFailure || t.Skip {
				continue
			}
			in, err := task.AgentOf(t)
			if err != nil {
				return err
			}
			in.User, in.SSHPort, in.InstallDir = r.User, r.SSHPort, r.InstallDir
			if _, err := tx.UpdateTaskIf(ctx, t.ID, []string{store.StatusFailure}, resubmit(t, task.Encode(in))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.forgetCredentials(ctx, p.ID) // the replaced ones
	e.notify()
	return nil
}

// wouldRunSome refuses a re-sent installAgent that would make no agent
// be installed: no new host, no FAILURE task to run again, none waiting
// to use the new credentials. Its credentials would reach no host.
func wouldRunSome(p store.Process, hosts []string, tasks []store.Task) error {
	known := map[string]bool{}
	var states []string
	for _, t := range tasks {
		known[t.Host] = true
		switch {
		case t.Skip:
			states = append(states, fmt.Sprintf("%s skipped (task %d)", t.Host, t.ID))
		case t.Status == store.StatusFailure || t.Status == store.StatusSubmitted:
			return nil
		default:
			states = append(states, fmt.Sprintf("%s %s", t.Host, t.Status))
		}
	}
	for _, h := range hosts {
		if !known[h] {
			return nil
		}
	}
	return conflict("installAgent for process %d would install no agent: no host is new and none has an INSTALL_AGENT task to run (%s): unskip a skipped task first (POST /api/process/task/unskip/{taskId}), wait for running ones, or name a new host",
		p.ID, listSome(states, 8))
}

// resubmit is the update that makes a FAILURE task run again.
func resubmit(t store.Task, input string) map[string]any {
	return map[string]any{"status": store.StatusSubmitted, "finish": false, "attempt": t.Attempt + 1,
		"response": "", "result": "", "executor_id": "", "start_time": nil, "end_time": nil, "input": input}
}

func newTask(p store.Process, step int, host, taskType, role string, seq int, input string) store.Task {
	return store.Task{ProcessID: p.ID, Step: step, Host: host, ProcessType: StepTypes[step], TaskType: taskType,
		TaskRole: role, Status: store.StatusSubmitted, Seq: seq, Input: input}
}

// advance moves process processID from step next-1 to next: it checks the
// state, lets build make the new tasks from the previous step's tasks, and
// commits the step change, the tasks and extra writes in one transaction.
// With redo, a process already at next may send that step again once none
// of its tasks is waiting or running: its tasks are replaced by new ones
// (DEPLOY_CONFIG after back, or after a deploy failed, with a fixed conf).
func (e *Engine) advance(ctx context.Context, userID, processID int64, next int, redo bool,
	build func(p store.Process, prev []store.Task) ([]store.Task, func(tx *store.Store) error, error)) error {
	p, err := e.loadOwned(ctx, userID, processID)
	if err != nil {
		return err
	}
	if err := e.guard(ctx, p.ClusterID); err != nil {
		return err
	}
	again := redo && p.Step == next
	if p.Step != next-1 && !again {
		want := StepTypes[next-1]
		if redo {
			want += " or " + StepTypes[next]
		}
		return conflict("process %d is at %s (step %d): %s needs it at %s", p.ID, p.ProcessType, p.Step,
			StepTypes[next], want)
	}
	if again {
		cur, err := e.st.TasksOfStep(ctx, p.ID, next)
		if err != nil {
			return err
		}
		for _, t := range cur {
			if !t.Skip && (t.Status == store.StatusRunning || t.Status == store.StatusSubmitted) {
				return conflict("%s of process %d is still in progress (task %d %s on %s is %s): wait for it to end, then send %s again",
					StepTypes[next], p.ID, t.ID, t.TaskType, t.Host, t.Status, StepTypes[next])
			}
		}
	}
	prev, err := e.st.TasksOfStep(ctx, p.ID, next-1)
	if err != nil {
		return err
	}
	if !stepDone(next-1, prev) {
		return conflict("%s of process %d is not done (every task must be SUCCESS or skipped): %s",
			p.ProcessType, p.ID, describePending(prev))
	}
	tasks, extra, err := build(p, prev)
	if err != nil {
		return err
	}
	if len(tasks) == 0 && next != StepBuildCluster { // BuildCluster decides itself
		return createsNothing(p, next, prev)
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		// The version check makes concurrent calls for one step race safely:
		// one wins, the others see a changed version.
		ok, err := tx.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{"step": next, "process_type": StepTypes[next]})
		if err != nil {
			return err
		}
		if !ok {
			return changedMeanwhile(ctx, tx, p.ID, "maybe the same step was sent twice")
		}
		if again {
			if err := tx.DeleteTasksOfStep(ctx, p.ID, next); err != nil {
				return fmt.Errorf("replace the %s tasks: %w", StepTypes[next], err)
			}
		}
		if err := tx.CreateTasks(ctx, tasks); err != nil {
			return fmt.Errorf("create %s tasks: %w", StepTypes[next], err)
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.log.Info("process advanced", "process", p.ID, "step", StepTypes[next], "tasks", len(tasks))
	e.notify()
	return nil
}

// createsNothing is the refusal of a step call every host and role of
// which was skipped in the step before: it would create no task and move
// the process to a step with nothing in it.
func createsNothing(p store.Process, next int, prev []store.Task) error {
	var skipped []string
	for _, t := range prev {
		if t.Skip {
			skipped = append(skipped, fmt.Sprintf("task %d %s on %s", t.ID, t.TaskType, t.Host))
		}
	}
	return conflict("%s would create no task for process %d: every host and role it names was skipped in %s (%s); name what succeeded there, or end the process with installComplete",
		StepTypes[next], p.ID, StepTypes[next-1], listSome(skipped, 5))
}

// InstallInfo is one role to install on one host.
type InstallInfo struct {
	Host       string
	Role       string
	FENodeType string // FE only; FOLLOWER when empty
	Master     bool   // marks the FE FOLLOWER that becomes the master
}

// InstallServiceRequest is step 1.
type InstallServiceRequest struct {
	ProcessID     int64
	InstallInfos  []InstallInfo
	PackageSha256 string // the package's SHA-256; without it the published one is looked up
	// AllowUnverifiedPackage lets the package be installed unchecked when
	// no checksum is given or published.
	AllowUnverifiedPackage bool
	AutoFix                bool // let the role fix host prerequisites it can fix
	// Params are checked against the Info.Params of the roles listed, and
	// each role gets those it declares (with its defaults) in every later
	// task (for example javaHome, minOpenFiles, startTimeout).
	Params map[string]string
}

// InstallService moves a process to INSTALL_SERVICE: one task per host and
// role, for any role the cluster's catalogue has. The rules of the master
// FE (exactly one FOLLOWER is the master: the one marked, else the
// cluster's from an earlier process, else the first follower listed) apply
// when FEs are listed or the cluster has no FE yet.
func (e *Engine) InstallService(ctx context.Context, userID int64, r InstallServiceRequest) error {
	if len(r.InstallInfos) == 0 {
		return invalid("installInfos: list at least one {host, role}")
	}
	if len(r.InstallInfos) > MaxHosts {
		return invalid("installInfos: at most %d entries", MaxHosts)
	}
	if r.PackageSha256 != "" && !sha256Hex.MatchString(r.PackageSha256) {
		return invalid("packageSha256 must be 64 hex digits")
	}
	if err := checkParams(r.Params); err != nil {
		return err
	}
	cat, err := e.stepCatalogue(ctx, userID, r.ProcessID)
	if err != nil {
		return err
	}
	infos := make([]InstallInfo, len(r.InstallInfos))
	seen := map[string]bool{}
	var listed []string // roles, in order of first appearance
	masterHost := ""
	firstFollower := ""
	feListed := false
	for i, in := range r.InstallInfos {
		f := fmt.Sprintf("installInfos[%d]", i)
		if err := checkHost(f+".host", in.Host); err != nil {
			return err
		}
		role, err := cat.role(f+".role", in.Role)
		if err != nil {
			return err
		}
		nt, err := normFENodeType(f+".feNodeType", in.FENodeType)
		if err != nil {
			return err
		}
		if role != RoleFE {
			nt = ""
			if in.Master {
				return invalid("%s.master: only an FE can be the master", f)
			}
		}
		if seen[hostRole(in.Host, role)] {
			return invalid("%s: %s on %s is listed twice", f, role, in.Host)
		}
		seen[hostRole(in.Host, role)] = true
		if !slices.Contains(listed, role) {
			listed = append(listed, role)
		}
		if in.Master {
			if nt != FEFollower {
				return invalid("%s.master: the master FE must be a FOLLOWER", f)
			}
			if masterHost != "" {
				return invalid("%s.master: only one FE can be the master (%s is already marked)", f, masterHost)
			}
			masterHost = in.Host
		}
		if role == RoleFE {
			feListed = true
			if nt == FEFollower && firstFollower == "" {
				firstFollower = in.Host
			}
		}
		infos[i] = InstallInfo{Host: in.Host, Role: role, FENodeType: nt}
	}
	params, err := cat.params(r.Params, listed)
	if err != nil {
		return err
	}
	return e.advance(ctx, userID, r.ProcessID, StepInstallService, false, func(p store.Process, prev []store.Task) ([]store.Task, func(*store.Store) error, error) {
		agents := map[string]store.Task{}
		for _, t := range prev {
			agents[t.Host] = t
		}
		for i, in := range infos {
			t, ok := agents[in.Host]
			switch {
			case !ok:
				return nil, nil, invalid("installInfos[%d].host: %s has no agent: it was not among installAgent's hosts", i, in.Host)
			case t.Skip:
				return nil, nil, invalid("installInfos[%d].host: %s has no agent: its INSTALL_AGENT task was skipped", i, in.Host)
			}
		}
		existing, err := e.st.ListRoles(ctx, p.ClusterID)
		if err != nil {
			return nil, nil, err
		}
		mh := masterHost
		hasFE := false
		for _, ro := range existing {
			if ro.Role != RoleFE {
				continue
			}
			hasFE = true
			if mh == "" && ro.Master && !seen[hostRole(ro.Host, RoleFE)] {
				mh = ro.Host // the cluster's master from an earlier process stays
			}
		}
		_, feInstallable := cat[RoleFE]
		if feListed || (!hasFE && feInstallable) {
			if mh == "" {
				mh = firstFollower
			}
			if mh == "" {
				return nil, nil, invalid("installInfos: list at least one FE with feNodeType FOLLOWER: the first becomes the master")
			}
		}
		// Last of the checks, as it goes over the network (outside any
		// transaction: advance commits after build).
		sums, err := e.packageSums(ctx, p, r)
		if err != nil {
			return nil, nil, err
		}
		var tasks []store.Task
		var roles []store.AgentRole
		for _, in := range infos {
			master := in.Role == RoleFE && in.Host == mh
			tasks = append(tasks, newTask(p, StepInstallService, in.Host, InstallTask(in.Role), in.Role, 0, task.Encode(task.Role{
				ClusterID: p.ClusterID, Host: in.Host, Role: in.Role, Labels: Labels(in.FENodeType, master),
				PackageURL: p.PackageURL, PackageSHA256: sums.SHA256, PackageSHA512: sums.SHA512,
				PackageSumFrom: sums.From, PackageUnverified: sums.Unverified, AutoFix: r.AutoFix, Params: params[in.Role],
			})))
			roles = append(roles, store.AgentRole{ClusterID: p.ClusterID, Host: in.Host, Role: in.Role,
				FENodeType: in.FENodeType, Master: master, InstallDir: Home(p.InstallDir, cat[in.Role])})
		}
		extra := func(tx *store.Store) error {
			if masterHost != "" { // a newly marked master replaces an older one
				if err := tx.UnmarkMasters(ctx, p.ClusterID, RoleFE, masterHost); err != nil {
					return err
				}
			}
			for i := range roles {
				if err := tx.UpsertRole(ctx, &roles[i]); err != nil {
					return fmt.Errorf("record role %s on %s: %w", roles[i].Role, roles[i].Host, err)
				}
			}
			return nil
		}
		return tasks, extra, nil
	})
}

// packageSums is r's packageSha256, else the checksum published beside
// the process's package (PackageChecksums), looked up with the package
// URL's password opened.
func (e *Engine) packageSums(ctx context.Context, p store.Process, r InstallServiceRequest) (PackageSums, error) {
	url, err := secret.OpenURLPassword(e.sealer, p.PackageURL)
	if err != nil {
		return PackageSums{}, fmt.Errorf("package URL of process %d: %w", p.ID, err)
	}
	return PackageChecksums(ctx, e.sums, e.log.With("process", p.ID), url, r.PackageSha256, r.AllowUnverifiedPackage)
}

// DeployConfig is one role's config for some hosts.
type DeployConfig struct {
	Hosts []string
	Role  string
	Conf  string
}

// DeployConfigRequest is step 2.
type DeployConfigRequest struct {
	ProcessID     int64
	DeployConfigs []DeployConfig
}

// DeployConfig moves a process to DEPLOY_CONFIG. Every installed (host,
// role) must get a config; hosts whose install was skipped are left out.
// At DEPLOY_CONFIG (after back, or when a deploy failed) it can be sent
// again with fixed confs: the step's tasks are replaced.
func (e *Engine) DeployConfig(ctx context.Context, userID int64, r DeployConfigRequest) error {
	if len(r.DeployConfigs) == 0 {
		return invalid("deployConfigs: list at least one {hosts, role, conf}")
	}
	cat, err := e.stepCatalogue(ctx, userID, r.ProcessID)
	if err != nil {
		return err
	}
	type item struct{ host, role, conf string }
	var items []item
	seen := map[string]bool{}
	for i, dc := range r.DeployConfigs {
		f := fmt.Sprintf("deployConfigs[%d]", i)
		if err := checkHosts(f+".hosts", dc.Hosts); err != nil {
			return err
		}
		role, err := cat.role(f+".role", dc.Role)
		if err != nil {
			return err
		}
		if strings.TrimSpace(dc.Conf) == "" {
			return invalid("%s.conf is required: the content of the %s config file", f, role)
		}
		if len(dc.Conf) > MaxConf {
			return invalid("%s.conf is %d bytes: at most %d (256 KiB)", f, len(dc.Conf), MaxConf)
		}
		for _, h := range dc.Hosts {
			if seen[hostRole(h, role)] {
				return invalid("%s: %s on %s gets a config twice", f, role, h)
			}
			seen[hostRole(h, role)] = true
			items = append(items, item{h, role, dc.Conf})
		}
	}
	return e.advance(ctx, userID, r.ProcessID, StepDeployConfig, true, func(p store.Process, prev []store.Task) ([]store.Task, func(*store.Store) error, error) {
		installed := map[string]store.Task{}
		for _, t := range prev {
			installed[hostRole(t.Host, t.TaskRole)] = t
		}
		var tasks []store.Task
		for _, it := range items {
			t, ok := installed[hostRole(it.host, it.role)]
			if !ok {
				return nil, nil, invalid("deployConfigs: %s was not installed on %s in installService", it.role, it.host)
			}
			if t.Skip {
				continue
			}
			in, err := task.RoleOf(t)
			if err != nil {
				return nil, nil, err
			}
			in.PackageURL, in.PackageSHA256, in.PackageSHA512, in.PackageSumFrom, in.PackageUnverified = "", "", "", "", ""
			in.AutoFix, in.Conf = false, it.conf
			tasks = append(tasks, newTask(p, StepDeployConfig, it.host, DeployTask(it.role), it.role, 0, task.Encode(in)))
		}
		var missing []string
		for _, t := range prev {
			if !t.Skip && !seen[hostRole(t.Host, t.TaskRole)] {
				missing = append(missing, t.TaskRole+" on "+t.Host)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return nil, nil, invalid("deployConfigs: no config for %s: every installed role needs one", strings.Join(missing, ", "))
		}
		return tasks, nil, nil
	})
}

// HostRole names one role on one host.
type HostRole struct {
	Host string
	Role string
}

// StartServiceRequest is step 3.
type StartServiceRequest struct {
	ProcessID   int64
	DorisStarts []HostRole
}

// StartService moves a process to START_SERVICE. Each role is its own
// lane; the nodes of a role whose Info.Order is OneAtATime get Seq 0, 1,
// 2 ... (for FE the master first), so they start one after another,
// while the other roles' nodes all get Seq 0 and start at once.
func (e *Engine) StartService(ctx context.Context, userID int64, r StartServiceRequest) error {
	if len(r.DorisStarts) == 0 {
		return invalid("dorisStarts: list at least one {host, role}")
	}
	cat, err := e.stepCatalogue(ctx, userID, r.ProcessID)
	if err != nil {
		return err
	}
	starts := make([]HostRole, len(r.DorisStarts))
	seen := map[string]bool{}
	for i, s := range r.DorisStarts {
		f := fmt.Sprintf("dorisStarts[%d]", i)
		if err := checkHost(f+".host", s.Host); err != nil {
			return err
		}
		role, err := cat.role(f+".role", s.Role)
		if err != nil {
			return err
		}
		if seen[hostRole(s.Host, role)] {
			return invalid("%s: %s on %s is listed twice", f, role, s.Host)
		}
		seen[hostRole(s.Host, role)] = true
		starts[i] = HostRole{s.Host, role}
	}
	return e.advance(ctx, userID, r.ProcessID, StepStartService, false, func(p store.Process, prev []store.Task) ([]store.Task, func(*store.Store) error, error) {
		configured := map[string]store.Task{}
		for _, t := range prev {
			configured[hostRole(t.Host, t.TaskRole)] = t
		}
		var rest []store.Task
		oneByOne := map[string][]store.Task{} // OneAtATime roles' tasks, in request order
		var order []string
		anyFE, masterFE := false, false
		for _, s := range starts {
			t, ok := configured[hostRole(s.Host, s.Role)]
			if !ok {
				return nil, nil, invalid("dorisStarts: %s on %s got no config in deployConfig", s.Role, s.Host)
			}
			if t.Skip {
				continue
			}
			in, err := task.RoleOf(t)
			if err != nil {
				return nil, nil, err
			}
			in.Conf = ""
			nt := newTask(p, StepStartService, s.Host, StartTask(s.Role), s.Role, 0, task.Encode(in))
			if s.Role == RoleFE {
				anyFE = true
				masterFE = masterFE || isMaster(in)
			}
			if !cat.oneAtATime(s.Role) {
				rest = append(rest, nt)
				continue
			}
			if _, ok := oneByOne[s.Role]; !ok {
				order = append(order, s.Role)
			}
			oneByOne[s.Role] = append(oneByOne[s.Role], nt)
		}
		// A master configured in this process starts with its FEs; FEs
		// added to a cluster whose master came from an earlier process
		// (scale-out) join that running master.
		if mh := masterHostOf(prev); anyFE && !masterFE && mh != "" {
			return nil, nil, invalid("dorisStarts: the master FE must be started with the other FEs; it is %s", mh)
		}
		// Each one-by-one role's first node, then everything that starts
		// at once, then the rest of the one-by-one nodes.
		var firsts, later []store.Task
		for _, role := range order {
			ts := oneByOne[role]
			if role == RoleFE {
				sort.SliceStable(ts, func(i, j int) bool { return masterTask(ts[i]) && !masterTask(ts[j]) })
			}
			for i := range ts {
				ts[i].Seq = i
			}
			firsts = append(firsts, ts[0])
			later = append(later, ts[1:]...)
		}
		return append(append(firsts, rest...), later...), nil, nil
	})
}

// masterHostOf names the master FE among a step's tasks, "" when the
// master is not one of them (it came from an earlier process).
func masterHostOf(tasks []store.Task) string {
	for _, t := range tasks {
		if t.TaskRole == RoleFE && masterTask(t) {
			return t.Host
		}
	}
	return ""
}

func masterTask(t store.Task) bool {
	in, err := task.RoleOf(t)
	return err == nil && isMaster(in)
}

// BuildClusterRequest is step 4.
type BuildClusterRequest struct {
	ProcessID int64
	FEHosts   []string
	BEHosts   []string
	// AdminPassword, if set, is the password SECURE_CLUSTER sets for the
	// cluster's admin account instead of a generated one.
	AdminPassword string
}

// BuildCluster moves a process to BUILD_CLUSTER: an ADD_ task for each
// node that joins the cluster: the FEs of feHosts (the master first), the
// BEs of beHosts, and every started node of the other roles with cluster
// membership; roles without it get none. Order and lanes come from the
// roles' Info.Order (catalogue.addSeqs): ADD_FE one at a time, then
// ADD_BACKEND and ADD_BROKER. feHosts may be empty only when the process
// started no FE; a process whose roles have no membership gets an empty
// step, which is done at once.
//
// When the cluster has an FE and the step adds nodes (or AdminPassword is
// given), a SECURE_CLUSTER task comes last in lane "": it sets the admin
// password (AdminPassword, kept sealed until then, or a generated one)
// once every ADD_ task of the lane is done.
func (e *Engine) BuildCluster(ctx context.Context, userID int64, r BuildClusterRequest) error {
	if r.AdminPassword != "" {
		if err := CheckAdminPassword("adminPassword", r.AdminPassword); err != nil {
			return err
		}
	}
	if len(r.FEHosts) > 0 {
		if err := checkHosts("feHosts", r.FEHosts); err != nil {
			return err
		}
	}
	if len(r.BEHosts) > 0 {
		if err := checkHosts("beHosts", r.BEHosts); err != nil {
			return err
		}
	}
	cat, err := e.stepCatalogue(ctx, userID, r.ProcessID)
	if err != nil {
		return err
	}
	return e.advance(ctx, userID, r.ProcessID, StepBuildCluster, false, func(p store.Process, prev []store.Task) ([]store.Task, func(*store.Store) error, error) {
		started := map[string]store.Task{}
		startedFE := false
		for _, t := range prev {
			started[hostRole(t.Host, t.TaskRole)] = t
			startedFE = startedFE || t.TaskRole == RoleFE
		}
		if startedFE && len(r.FEHosts) == 0 {
			return nil, nil, invalid("feHosts: list at least one host: the FEs started in startService")
		}
		pick := func(field, role string, hosts []string) ([]store.Task, error) {
			if len(hosts) > 0 && !cat.member(role) {
				return nil, invalid("%s: %s has no cluster membership (its plugin does not announce %q): leave %s empty", field, role, sdk.CapMembership, field)
			}
			var out []store.Task
			for i, h := range hosts {
				t, ok := started[hostRole(h, role)]
				if !ok {
					return nil, invalid("%s[%d]: %s was not started on %s in startService", field, i, role, h)
				}
				if !t.Skip {
					out = append(out, t)
				}
			}
			return out, nil
		}
		byRole := map[string][]store.Task{}
		var err error
		if byRole[RoleFE], err = pick("feHosts", RoleFE, r.FEHosts); err != nil {
			return nil, nil, err
		}
		if byRole[RoleBE], err = pick("beHosts", RoleBE, r.BEHosts); err != nil {
			return nil, nil, err
		}
		// The master first, then the other FEs in request order.
		fes := byRole[RoleFE]
		sort.SliceStable(fes, func(i, j int) bool { return masterTask(fes[i]) && !masterTask(fes[j]) })
		for _, t := range prev {
			if t.TaskRole != RoleFE && t.TaskRole != RoleBE && !t.Skip && cat.member(t.TaskRole) {
				byRole[t.TaskRole] = append(byRole[t.TaskRole], t)
			}
		}
		counts := map[string]int{}
		for role, ts := range byRole {
			if len(ts) > 0 {
				counts[role] = len(ts)
			}
		}
		lane, first, err := cat.addSeqs(counts)
		if err != nil {
			return nil, nil, err
		}
		roles := sortedKeys(counts)
		sort.SliceStable(roles, func(i, j int) bool { return rank(roles[i]) < rank(roles[j]) })
		sort.SliceStable(roles, func(i, j int) bool { return first[roles[i]] < first[roles[j]] })
		var tasks []store.Task
		for _, role := range roles {
			for i, t := range byRole[role] {
				seq := first[role]
				if cat.oneAtATime(role) {
					seq += i
				}
				tasks = append(tasks, newTask(p, StepBuildCluster, t.Host, AddTask(role), lane[role], seq, t.Input))
			}
		}
		if len(tasks) == 0 && len(r.FEHosts)+len(r.BEHosts) > 0 {
			return nil, nil, createsNothing(p, StepBuildCluster, prev)
		}
		hasFE := len(byRole[RoleFE]) > 0
		if !hasFE {
			if hasFE, err = e.clusterHasFE(ctx, p); err != nil {
				return nil, nil, err
			}
		}
		if r.AdminPassword != "" && !hasFE {
			return nil, nil, invalid("adminPassword: cluster %d has no FE whose admin account could get it", p.ClusterID)
		}
		if !hasFE || (len(tasks) == 0 && r.AdminPassword == "") {
			return tasks, nil, nil
		}
		seq := 0
		for _, t := range tasks {
			if t.TaskRole == "" {
				seq = max(seq, t.Seq+1)
			}
		}
		tasks = append(tasks, newTask(p, StepBuildCluster, "", TaskSecureCluster, "", seq, task.Encode(task.Cluster{ClusterID: p.ClusterID})))
		if r.AdminPassword == "" {
			return tasks, nil, nil
		}
		sealed, err := e.sealAdminPassword(r.AdminPassword)
		if err != nil {
			return nil, nil, err
		}
		return tasks, func(tx *store.Store) error { return tx.SetAdminPending(ctx, p.ClusterID, sealed, false) }, nil
	})
}

// clusterHasFE reports whether the cluster has an FE from an earlier
// process (this process's own FEs are in its ADD_FE tasks).
func (e *Engine) clusterHasFE(ctx context.Context, p store.Process) (bool, error) {
	roles, err := e.st.ListRoles(ctx, p.ClusterID)
	if err != nil {
		return false, err
	}
	installed, err := e.st.TasksOfStep(ctx, p.ID, StepInstallService)
	if err != nil {
		return false, err
	}
	mine := map[string]bool{}
	for _, t := range installed {
		mine[hostRole(t.Host, t.TaskRole)] = true
	}
	for _, ro := range roles {
		if ro.Role == RoleFE && !mine[hostRole(ro.Host, RoleFE)] {
			return true, nil
		}
	}
	return false, nil
}

func (e *Engine) sealAdminPassword(pw string) ([]byte, error) {
	if e.sealer == nil {
		return nil, errors.New("no secret key configured to seal the admin password")
	}
	sealed, err := e.sealer.Seal([]byte(pw))
	if err != nil {
		return nil, fmt.Errorf("seal the admin password: %w", err)
	}
	return sealed, nil
}

// rank orders the API document's roles as buildCluster lists them (FE,
// BE), before the others.
func rank(role string) int {
	switch role {
	case RoleFE:
		return 0
	case RoleBE:
		return 1
	}
	return 2
}
