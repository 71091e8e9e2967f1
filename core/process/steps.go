package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dorismanager/dorismanager/core/store"
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
	PackageURL          string
	InstallDir          string
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
	return nil
}

func (e *Engine) sealCredentials(r *InstallAgentRequest) ([]byte, error) {
	if e.sealer == nil {
		return nil, errors.New("no secret key configured to seal SSH credentials")
	}
	c := Credentials{User: r.User, SSHKey: r.SSHKey, Passphrase: r.Passphrase, HostKeyFingerprints: r.HostKeyFingerprints}
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
	return mustJSON(map[string]any{"clusterId": r.ClusterID, "host": host, "sshPort": r.SSHPort,
		"user": r.User, "installDir": r.InstallDir})
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
	var id int64
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		if _, _, err := tx.EnsureCluster(ctx, r.ClusterID); err != nil {
			if store.IsDuplicate(err) {
				return conflict("cluster %d does not exist and cannot be created: %v (create clusters with POST /api/cluster)", r.ClusterID, err)
			}
			return fmt.Errorf("create cluster %d: %w", r.ClusterID, err)
		}
		p := store.Process{ClusterID: r.ClusterID, UserID: userID, ProcessType: StepTypes[0], Step: 0,
			Status: StatusRunning, PackageURL: r.PackageURL, InstallDir: r.InstallDir, Credentials: sealed}
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
	byHost := map[string]store.Task{}
	for _, t := range tasks {
		byHost[t.Host] = t
	}
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		ok, err := tx.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{"credentials": sealed,
			"package_url": r.PackageURL, "install_dir": r.InstallDir})
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
			in := inputOf(t)
			in["user"], in["sshPort"], in["installDir"] = r.User, r.SSHPort, r.InstallDir
			if _, err := tx.UpdateTaskIf(ctx, t.ID, []string{store.StatusFailure}, resubmit(t, mustJSON(in))); err != nil {
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
	if !stepDone(prev) {
		return conflict("%s of process %d is not done (every task must be SUCCESS or skipped): %s",
			p.ProcessType, p.ID, describePending(prev))
	}
	tasks, extra, err := build(p, prev)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		return invalid("the request leaves no task to run (every host named was skipped earlier)")
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
	PackageSha256 string // optional checksum of the package
	AutoFix       bool   // let the role fix host prerequisites it can fix
	// Params are passed to the role plugins in every later task of these
	// roles (for example javaHome, minOpenFiles, startTimeout).
	Params map[string]string
}

// InstallService moves a process to INSTALL_SERVICE: one task per host and role.
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
	infos := make([]InstallInfo, len(r.InstallInfos))
	seen := map[string]bool{}
	masterHost := ""
	firstFollower := ""
	for i, in := range r.InstallInfos {
		f := fmt.Sprintf("installInfos[%d]", i)
		if err := checkHost(f+".host", in.Host); err != nil {
			return err
		}
		role, err := normRole(f+".role", in.Role)
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
		if in.Master {
			if nt != FEFollower {
				return invalid("%s.master: the master FE must be a FOLLOWER", f)
			}
			if masterHost != "" {
				return invalid("%s.master: only one FE can be the master (%s is already marked)", f, masterHost)
			}
			masterHost = in.Host
		}
		if role == RoleFE && nt == FEFollower && firstFollower == "" {
			firstFollower = in.Host
		}
		infos[i] = InstallInfo{Host: in.Host, Role: role, FENodeType: nt}
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
		mh := masterHost
		if mh == "" {
			roles, err := e.st.ListRoles(ctx, p.ClusterID)
			if err != nil {
				return nil, nil, err
			}
			for _, ro := range roles {
				if ro.Role == RoleFE && ro.Master && !seen[hostRole(ro.Host, RoleFE)] {
					mh = ro.Host // the cluster's master from an earlier process stays
				}
			}
		}
		if mh == "" {
			mh = firstFollower
		}
		if mh == "" {
			return nil, nil, invalid("installInfos: list at least one FE with feNodeType FOLLOWER: the first becomes the master")
		}
		var tasks []store.Task
		var roles []store.AgentRole
		for _, in := range infos {
			dir := p.InstallDir + "/" + RoleDir(in.Role)
			master := in.Role == RoleFE && in.Host == mh
			tasks = append(tasks, newTask(p, StepInstallService, in.Host, InstallTask(in.Role), in.Role, 0, mustJSON(map[string]any{
				"clusterId": p.ClusterID, "host": in.Host, "role": in.Role, "feNodeType": in.FENodeType,
				"master": master, "masterHost": mh, "packageUrl": p.PackageURL, "packageSha256": r.PackageSha256,
				"installDir": dir, "baseDir": p.InstallDir, "autoFix": r.AutoFix, "params": r.Params,
			})))
			roles = append(roles, store.AgentRole{ClusterID: p.ClusterID, Host: in.Host, Role: in.Role,
				FENodeType: in.FENodeType, Master: master, InstallDir: dir})
		}
		extra := func(tx *store.Store) error {
			if masterHost != "" { // a newly marked master replaces an older one
				if err := tx.DB().Model(&store.AgentRole{}).Where("cluster_id = ? AND role = ? AND host <> ?",
					p.ClusterID, RoleFE, masterHost).Update("master", false).Error; err != nil {
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
	type item struct{ host, role, conf string }
	var items []item
	seen := map[string]bool{}
	for i, dc := range r.DeployConfigs {
		f := fmt.Sprintf("deployConfigs[%d]", i)
		if err := checkHosts(f+".hosts", dc.Hosts); err != nil {
			return err
		}
		role, err := normRole(f+".role", dc.Role)
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
			in := carry(t, "packageUrl", "packageSha256", "autoFix")
			in["conf"] = it.conf
			tasks = append(tasks, newTask(p, StepDeployConfig, it.host, DeployTask(it.role), it.role, 0, mustJSON(in)))
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

// StartService moves a process to START_SERVICE. The master FE and every
// BE and broker get Seq 0; each other FE its own Seq 1, 2, ... so FEs start
// one at a time after the master.
func (e *Engine) StartService(ctx context.Context, userID int64, r StartServiceRequest) error {
	if len(r.DorisStarts) == 0 {
		return invalid("dorisStarts: list at least one {host, role}")
	}
	starts := make([]HostRole, len(r.DorisStarts))
	seen := map[string]bool{}
	for i, s := range r.DorisStarts {
		f := fmt.Sprintf("dorisStarts[%d]", i)
		if err := checkHost(f+".host", s.Host); err != nil {
			return err
		}
		role, err := normRole(f+".role", s.Role)
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
		var master *store.Task
		var others []store.Task
		var rest []store.Task
		anyFE := false
		for _, s := range starts {
			t, ok := configured[hostRole(s.Host, s.Role)]
			if !ok {
				return nil, nil, invalid("dorisStarts: %s on %s got no config in deployConfig", s.Role, s.Host)
			}
			if t.Skip {
				continue
			}
			in := carry(t, "conf")
			nt := newTask(p, StepStartService, s.Host, StartTask(s.Role), s.Role, 0, mustJSON(in))
			switch {
			case s.Role == RoleFE && in["master"] == true:
				anyFE = true
				master = &nt
			case s.Role == RoleFE:
				anyFE = true
				others = append(others, nt)
			default:
				rest = append(rest, nt)
			}
		}
		if anyFE && master == nil {
			return nil, nil, invalid("dorisStarts: the master FE must be started with the other FEs; it is %s", masterHostOf(prev))
		}
		var tasks []store.Task
		if master != nil {
			tasks = append(tasks, *master)
		}
		for i := range others {
			others[i].Seq = i + 1
		}
		tasks = append(append(tasks, rest...), others...)
		return tasks, nil, nil
	})
}

func masterHostOf(tasks []store.Task) string {
	for _, t := range tasks {
		if h, ok := inputOf(t)["masterHost"].(string); ok && h != "" {
			return h
		}
	}
	return "unknown"
}

// BuildClusterRequest is step 4.
type BuildClusterRequest struct {
	ProcessID int64
	FEHosts   []string
	BEHosts   []string
}

// BuildCluster moves a process to BUILD_CLUSTER: ADD_FE one at a time (the
// master first), then ADD_BACKEND and ADD_BROKER (every started broker).
func (e *Engine) BuildCluster(ctx context.Context, userID int64, r BuildClusterRequest) error {
	if err := checkHosts("feHosts", r.FEHosts); err != nil {
		return err
	}
	if len(r.BEHosts) > 0 {
		if err := checkHosts("beHosts", r.BEHosts); err != nil {
			return err
		}
	}
	return e.advance(ctx, userID, r.ProcessID, StepBuildCluster, false, func(p store.Process, prev []store.Task) ([]store.Task, func(*store.Store) error, error) {
		started := map[string]store.Task{}
		for _, t := range prev {
			started[hostRole(t.Host, t.TaskRole)] = t
		}
		pick := func(field, role string, hosts []string) ([]store.Task, error) {
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
		fes, err := pick("feHosts", RoleFE, r.FEHosts)
		if err != nil {
			return nil, nil, err
		}
		bes, err := pick("beHosts", RoleBE, r.BEHosts)
		if err != nil {
			return nil, nil, err
		}
		// The master first, then the other FEs in request order.
		sort.SliceStable(fes, func(i, j int) bool { return inputOf(fes[i])["master"] == true && inputOf(fes[j])["master"] != true })
		var tasks []store.Task
		add := func(t store.Task, seq int) {
			in := carry(t)
			tasks = append(tasks, newTask(p, StepBuildCluster, t.Host, AddTask(t.TaskRole), "", seq, mustJSON(in)))
		}
		for i, t := range fes {
			add(t, i)
		}
		for _, t := range bes {
			add(t, len(fes))
		}
		for _, t := range prev {
			if t.TaskRole == RoleBroker && !t.Skip {
				add(t, len(fes))
			}
		}
		return tasks, nil, nil
	})
}
