package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/store"
)

// ---- wizard steps ----

// step answers a wizard step after installAgent: it decodes the body into
// Req and runs it; the answer carries no data.
func step[Req any](run func(ctx context.Context, userID int64, req *Req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := httpx.Decode(w, r, &req); err != nil {
			fail(w, err)
			return
		}
		if err := run(r.Context(), user(r), &req); err != nil {
			fail(w, err)
			return
		}
		httpx.OK(w, nil)
	}
}

type installAgentReq struct {
	ProcessID           *ID               `json:"processId"`
	ClusterID           *ID               `json:"clusterId"`
	Hosts               []string          `json:"hosts"`
	User                string            `json:"user"`
	SSHPort             *ID               `json:"sshPort"`
	Port                *ID               `json:"port"`
	SSHKey              string            `json:"sshKey"`
	Passphrase          string            `json:"passphrase"`
	HostKeyFingerprints map[string]string `json:"hostKeyFingerprints"`
	StrictHostKeys      bool              `json:"strictHostKeys"`
	PackageURL          string            `json:"packageUrl"`
	InstallDir          string            `json:"installDir"`
}

func (a *api) installAgent(w http.ResponseWriter, r *http.Request) {
	var req installAgentReq
	if err := httpx.Decode(w, r, &req); err != nil {
		fail(w, err)
		return
	}
	cluster, err := requireID("clusterId", req.ClusterID)
	if err != nil {
		fail(w, err)
		return
	}
	port := req.SSHPort
	if port == nil {
		port = req.Port
	} else if req.Port != nil && *req.Port != *req.SSHPort {
		fail(w, httpx.BadRequest("sshPort %d and port %d differ: send one of them", *req.SSHPort, *req.Port))
		return
	}
	if port == nil {
		fail(w, httpx.BadRequest("sshPort (or port) is required: the SSH port of the hosts"))
		return
	}
	var pid int64
	if req.ProcessID != nil {
		if pid, err = requireID("processId", req.ProcessID); err != nil {
			fail(w, err)
			return
		}
	}
	id, err := a.e.InstallAgent(r.Context(), user(r), process.InstallAgentRequest{
		ProcessID: pid, ClusterID: cluster, Hosts: req.Hosts, User: req.User, SSHPort: int(*port),
		SSHKey: req.SSHKey, Passphrase: req.Passphrase, HostKeyFingerprints: req.HostKeyFingerprints,
		StrictHostKeys: req.StrictHostKeys, PackageURL: req.PackageURL, InstallDir: req.InstallDir,
	})
	if err != nil {
		fail(w, err)
		return
	}
	if pid == 0 {
		noteProcess(r.Context(), id)
	}
	httpx.OK(w, id)
}

type installServiceReq struct {
	ProcessID    *ID `json:"processId"`
	InstallInfos []struct {
		Host       string `json:"host"`
		Role       string `json:"role"`
		FENodeType string `json:"feNodeType"`
		Master     bool   `json:"master"`
	} `json:"installInfos"`
	PackageSha256 string `json:"packageSha256"`
	// AllowUnverifiedPackage installs a package without a checksum given
	// or published beside it.
	AllowUnverifiedPackage bool `json:"allowUnverifiedPackage"`
	AutoFix                bool `json:"autoFix"`
	// Params go to the role plugins (javaHome, minOpenFiles, startTimeout...).
	Params map[string]string `json:"params"`
}

func (a *api) installService(ctx context.Context, userID int64, req *installServiceReq) error {
	pid, err := requireID("processId", req.ProcessID)
	if err != nil {
		return err
	}
	in := process.InstallServiceRequest{ProcessID: pid, PackageSha256: req.PackageSha256, AllowUnverifiedPackage: req.AllowUnverifiedPackage,
		AutoFix: req.AutoFix, Params: req.Params}
	for _, i := range req.InstallInfos {
		in.InstallInfos = append(in.InstallInfos, process.InstallInfo{Host: i.Host, Role: i.Role, FENodeType: i.FENodeType, Master: i.Master})
	}
	return a.e.InstallService(ctx, userID, in)
}

type deployConfigReq struct {
	ProcessID     *ID `json:"processId"`
	DeployConfigs []struct {
		Hosts []string `json:"hosts"`
		Role  string   `json:"role"`
		Conf  string   `json:"conf"`
	} `json:"deployConfigs"`
}

func (a *api) deployConfig(ctx context.Context, userID int64, req *deployConfigReq) error {
	pid, err := requireID("processId", req.ProcessID)
	if err != nil {
		return err
	}
	in := process.DeployConfigRequest{ProcessID: pid}
	for _, d := range req.DeployConfigs {
		in.DeployConfigs = append(in.DeployConfigs, process.DeployConfig{Hosts: d.Hosts, Role: d.Role, Conf: d.Conf})
	}
	return a.e.DeployConfig(ctx, userID, in)
}

type startServiceReq struct {
	ProcessID   *ID `json:"processId"`
	DorisStarts []struct {
		Host string `json:"host"`
		Role string `json:"role"`
	} `json:"dorisStarts"`
}

func (a *api) startService(ctx context.Context, userID int64, req *startServiceReq) error {
	pid, err := requireID("processId", req.ProcessID)
	if err != nil {
		return err
	}
	in := process.StartServiceRequest{ProcessID: pid}
	for _, s := range req.DorisStarts {
		in.DorisStarts = append(in.DorisStarts, process.HostRole{Host: s.Host, Role: s.Role})
	}
	return a.e.StartService(ctx, userID, in)
}

type buildClusterReq struct {
	ProcessID     *ID       `json:"processId"`
	FEHosts       *[]string `json:"feHosts"`
	BEHosts       *[]string `json:"beHosts"`
	AdminPassword string    `json:"adminPassword"`
}

func (a *api) buildCluster(ctx context.Context, userID int64, req *buildClusterReq) error {
	pid, err := requireID("processId", req.ProcessID)
	if err != nil {
		return err
	}
	if req.FEHosts == nil {
		return httpx.BadRequest("feHosts is required: the FE hosts to join the cluster")
	}
	if req.BEHosts == nil {
		return httpx.BadRequest("beHosts is required: the BE hosts to join the cluster (may be [])")
	}
	return a.e.BuildCluster(ctx, userID, process.BuildClusterRequest{ProcessID: pid, FEHosts: *req.FEHosts, BEHosts: *req.BEHosts,
		AdminPassword: req.AdminPassword})
}

// onID answers a POST that acts on the process or task named in the path
// (back, retry, skip, unskip). A body is not needed; one that is sent may
// only repeat that id.
func (a *api) onID(param string, act func(ctx context.Context, userID, id int64) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, param)
		if err == nil {
			err = idBody(w, r, param, id, nil)
		}
		if err != nil {
			fail(w, err)
			return
		}
		if err := act(r.Context(), user(r), id); err != nil {
			fail(w, err)
			return
		}
		httpx.OK(w, nil)
	}
}

// idBody reads the optional body of a call whose path names its process
// or task: {"processId": N} or {"taskId": N}, which must be the path's,
// and for installComplete the API document's "hosts" (accepted, not used:
// the process knows its hosts). Any other field is refused.
func idBody(w http.ResponseWriter, r *http.Request, param string, id int64, hosts *[]string) error {
	var body map[string]json.RawMessage
	if ok, err := httpx.DecodeOptional(w, r, &body); err != nil || !ok {
		return err
	}
	for name, raw := range body {
		switch {
		case name == param:
			var v ID
			if err := json.Unmarshal(raw, &v); err != nil {
				return httpx.BadRequest("%s in the body: ids are numbers or numeric strings", param)
			}
			if int64(v) != id {
				return httpx.BadRequest("%s %d in the body differs from %d in the path", param, v, id)
			}
		case name == "hosts" && hosts != nil:
			if err := json.Unmarshal(raw, hosts); err != nil {
				return httpx.BadRequest("field %q must be a list of host names", name)
			}
		default:
			return httpx.BadRequest("unknown field %q in request body: this call takes no body but %s", name, accepted(param, hosts != nil))
		}
	}
	return nil
}

func accepted(param string, hosts bool) string {
	if hosts {
		return fmt.Sprintf("%q and %q", param, "hosts")
	}
	return fmt.Sprintf("%q", param)
}

// installComplete ends a process and answers it as it ended (currentProcess's
// shape): status SUCCESS, or CANCELED when it ended before its cluster was built.
func (a *api) installComplete(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "processId")
	if err == nil {
		var hosts []string
		err = idBody(w, r, "processId", id, &hosts)
	}
	if err == nil {
		err = a.e.Complete(r.Context(), user(r), id)
	}
	if err != nil {
		fail(w, err)
		return
	}
	v, err := a.e.Process(r.Context(), id)
	if err != nil {
		fail(w, fmt.Errorf("process %d was completed; reading it back failed: %w", id, err))
		return
	}
	note(r.Context(), "process %d ended %s", id, v.Status)
	httpx.OK(w, processView(v))
}

// ---- reads ----

// ProcessView is a process as the API shows it.
type ProcessView struct {
	ID          int64  `json:"id"`
	ClusterID   int64  `json:"clusterId"`
	ProcessType string `json:"processType"`
	ProcessStep int    `json:"processStep"`
	Finish      string `json:"finish"`
	Status      string `json:"status"`
	// PackageUpstreamBytes: bytes the package relay pulled from package
	// URLs for this process's tasks.
	PackageUpstreamBytes int64       `json:"packageUpstreamBytes"`
	CreateTime           *httpx.Time `json:"createTime"`
	UpdateTime           *httpx.Time `json:"updateTime"`
}

func processView(v *process.View) ProcessView {
	return ProcessView{ID: v.ID, ClusterID: v.ClusterID, ProcessType: v.ProcessType, ProcessStep: v.ProcessStep,
		Finish: yesNo(v.Finish), Status: v.Status, PackageUpstreamBytes: v.PackageUpstreamBytes,
		CreateTime: httpx.NewTime(&v.CreatedAt), UpdateTime: httpx.NewTime(&v.UpdatedAt)}
}

func (a *api) currentProcess(w http.ResponseWriter, r *http.Request) {
	v, err := a.e.Current(r.Context(), user(r))
	if err != nil {
		fail(w, err)
		return
	}
	if v == nil {
		httpx.OK(w, nil)
		return
	}
	httpx.OK(w, processView(v))
}

// listProcesses lists a cluster's processes, wizard runs and day-2
// operations, the newest first, each as currentProcess shows one.
func (a *api) listProcesses(w http.ResponseWriter, r *http.Request) {
	id, err := a.clusterID(r, queryID)
	if err != nil {
		fail(w, err)
		return
	}
	vs, err := a.e.Processes(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]ProcessView, 0, len(vs))
	for i := range vs {
		out = append(out, processView(&vs[i]))
	}
	httpx.OK(w, out)
}

// TaskView is a task as the API shows it.
type TaskView struct {
	ID          int64       `json:"id"`
	ProcessID   int64       `json:"processId"`
	Host        string      `json:"host"`
	ProcessType string      `json:"processType"`
	TaskType    string      `json:"taskType"`
	Status      string      `json:"status"`
	StartTime   *httpx.Time `json:"startTime"`
	EndTime     *httpx.Time `json:"endTime"`
	ExecutorID  *string     `json:"executorId"`
	Result      *string     `json:"result"`
	Finish      string      `json:"finish"`
	TaskRole    *string     `json:"taskRole"`
	Response    *string     `json:"response"`
	Skip        string      `json:"skip"`
}

func taskView(t store.Task) TaskView {
	return TaskView{ID: t.ID, ProcessID: t.ProcessID, Host: t.Host, ProcessType: t.ProcessType, TaskType: t.TaskType,
		Status: t.Status, StartTime: httpx.NewTime(t.StartTime), EndTime: httpx.NewTime(t.EndTime),
		ExecutorID: nullable(t.ExecutorID), Result: nullable(t.Result), Finish: yesNo(t.Finish),
		TaskRole: nullable(t.TaskRole), Response: nullable(t.Response), Skip: yesNo(t.Skip)}
}

func (a *api) currentTasks(w http.ResponseWriter, r *http.Request) {
	pid, err := pathID(r, "processId")
	if err != nil {
		fail(w, err)
		return
	}
	tasks, err := a.e.CurrentTasks(r.Context(), pid)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]TaskView, 0, len(tasks))
	for _, t := range tasks {
		out = append(out, taskView(t))
	}
	httpx.OK(w, out)
}

func (a *api) taskInfo(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "taskId")
	if err != nil {
		fail(w, err)
		return
	}
	t, err := a.e.Task(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	httpx.OK(w, taskView(t))
}

func (a *api) taskLog(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "taskId")
	if err != nil {
		fail(w, err)
		return
	}
	path, log, err := a.e.TaskLog(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	httpx.OK(w, map[string]any{"logPath": nullable(path), "log": strings.ToValidUTF8(string(log), "\uFFFD")})
}

// clusterID reads the clusterId parameter of r with get (pathID or
// queryID) and checks that the cluster exists.
func (a *api) clusterID(r *http.Request, get func(*http.Request, string) (int64, error)) (int64, error) {
	id, err := get(r, "clusterId")
	if err != nil {
		return 0, err
	}
	return id, a.cluster(r, id)
}

// cluster checks that the cluster id exists (404 otherwise).
func (a *api) cluster(r *http.Request, id int64) error {
	if _, err := a.st.GetCluster(r.Context(), id); errors.Is(err, store.ErrNotFound) {
		return httpx.NotFound("cluster %d does not exist", id)
	} else if err != nil {
		return err
	}
	return nil
}

// AgentView is an agent as the API shows it.
type AgentView struct {
	ID               int64       `json:"id"`
	Host             string      `json:"host"`
	Port             int         `json:"port"`
	Status           string      `json:"status"`
	RegisterTime     *httpx.Time `json:"registerTime"`
	LastReportedTime *httpx.Time `json:"lastReportedTime"`
}

func (a *api) agentList(w http.ResponseWriter, r *http.Request) {
	id, err := a.clusterID(r, queryID)
	if err != nil {
		fail(w, err)
		return
	}
	agents, err := a.st.ListAgents(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]AgentView, 0, len(agents))
	for _, ag := range agents {
		out = append(out, AgentView{ID: ag.ID, Host: ag.Host, Port: ag.Port, Status: ag.Status,
			RegisterTime: httpx.NewTime(ag.RegisterTime), LastReportedTime: httpx.NewTime(ag.LastReportedTime)})
	}
	httpx.OK(w, out)
}

// RoleView is an installed role as the API shows it.
type RoleView struct {
	ID         int64   `json:"id"`
	Host       string  `json:"host"`
	ClusterID  int64   `json:"clusterId"`
	Role       string  `json:"role"`
	FENodeType *string `json:"feNodeType"`
	InstallDir string  `json:"installDir"`
	Register   string  `json:"register"`
}

func (a *api) roleList(w http.ResponseWriter, r *http.Request) {
	id, err := a.clusterID(r, queryID)
	if err != nil {
		fail(w, err)
		return
	}
	// register is kept current by the status cache (core/clusterstatus),
	// which asks every node in the background: roleList never waits on a
	// host.
	roles, err := a.st.ListRoles(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	skipped, err := a.e.SkippedInstalls(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]RoleView, 0, len(roles))
	for _, ro := range roles {
		if skipped[store.RoleKey{ClusterID: id, Host: ro.Host, Role: ro.Role}] {
			continue // never installed: its install was given up
		}
		out = append(out, RoleView{ID: ro.ID, Host: ro.Host, ClusterID: ro.ClusterID, Role: ro.Role,
			FENodeType: nullable(ro.FENodeType), InstallDir: ro.InstallDir, Register: yesNo(ro.Register)})
	}
	httpx.OK(w, out)
}

// HardwareView is one host's hardware as its agent reported it.
type HardwareView struct {
	Host        string          `json:"host"`
	CPU         string          `json:"cpu"`
	Cores       int             `json:"cores"`
	TotalMemory string          `json:"totalMemory"`
	Disks       json.RawMessage `json:"disks"`
}

func (a *api) hardware(w http.ResponseWriter, r *http.Request) {
	id, err := a.clusterID(r, pathID)
	if err != nil {
		fail(w, err)
		return
	}
	agents, err := a.st.ListAgents(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]HardwareView, 0, len(agents))
	for _, ag := range agents {
		var hw struct {
			CPU         string          `json:"cpu"`
			Cores       int             `json:"cores"`
			TotalMemory string          `json:"totalMemory"`
			Disks       json.RawMessage `json:"disks"`
		}
		if ag.Hardware != "" {
			if err := json.Unmarshal([]byte(ag.Hardware), &hw); err != nil {
				a.log.Warn("agent hardware report is not valid JSON", "agent", ag.ID, "error", err)
			}
		}
		if len(hw.Disks) == 0 {
			hw.Disks = json.RawMessage("[]")
		}
		out = append(out, HardwareView{Host: ag.Host, CPU: hw.CPU, Cores: hw.Cores, TotalMemory: hw.TotalMemory, Disks: hw.Disks})
	}
	httpx.OK(w, out)
}

// ---- clusters ----

// ClusterView is a cluster as the API shows it.
type ClusterView struct {
	ID         int64       `json:"id"`
	Name       string      `json:"name"`
	CreateTime *httpx.Time `json:"createTime"`
	UpdateTime *httpx.Time `json:"updateTime"`
}

func clusterView(c store.Cluster) ClusterView {
	return ClusterView{ID: c.ID, Name: c.Name, CreateTime: httpx.NewTime(&c.CreatedAt), UpdateTime: httpx.NewTime(&c.UpdatedAt)}
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (a *api) createCluster(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := httpx.Decode(w, r, &req); err != nil {
		fail(w, err)
		return
	}
	if req.Name == "" {
		fail(w, httpx.BadRequest("name is required"))
		return
	}
	if !clusterName.MatchString(req.Name) {
		fail(w, httpx.BadRequest("name %q: up to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(req.Name, 40)))
		return
	}
	// An operator's new cluster is granted to its user in the same
	// transaction; an admin needs no grant.
	var c store.Cluster
	var err error
	if p := caller(r); p.Role == auth.Admin {
		c, err = a.st.CreateCluster(r.Context(), req.Name)
	} else {
		c, err = a.st.CreateClusterFor(r.Context(), req.Name, p.User.ID)
	}
	if store.IsDuplicate(err) {
		fail(w, httpx.Conflict("a cluster named %q exists already", req.Name))
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	noteCluster(r.Context(), c.ID)
	note(r.Context(), "cluster %d %q", c.ID, c.Name)
	httpx.OK(w, clusterView(c))
}

// listClusters shows an admin every cluster, anyone else the granted ones.
func (a *api) listClusters(w http.ResponseWriter, r *http.Request) {
	var cs []store.Cluster
	var err error
	if p := caller(r); p.Role == auth.Admin {
		cs, err = a.st.ListClusters(r.Context())
	} else {
		cs, err = a.st.ListClustersIn(r.Context(), p.GrantedIDs())
	}
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]ClusterView, 0, len(cs))
	for _, c := range cs {
		out = append(out, clusterView(c))
	}
	httpx.OK(w, out)
}
