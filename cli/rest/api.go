package rest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is the API's time format.
const TimeLayout = "2006-01-02T15:04:05.000+00:00"

// Time is an API time; null and "" are the zero time.
type Time struct{ time.Time }

// UnmarshalJSON reads the API's layout (and RFC 3339, to be lenient).
func (t *Time) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(TimeLayout, s)
	if err != nil {
		if v, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("time %q: %w", s, err)
		}
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the API's layout, null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// Cluster is an entry of GET /api/cluster.
type Cluster struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	CreateTime Time   `json:"createTime"`
	UpdateTime Time   `json:"updateTime"`
}

// Process is a process as currentProcess (and GET /api/process) show it.
type Process struct {
	ID          int64  `json:"id"`
	ClusterID   int64  `json:"clusterId"`
	ProcessType string `json:"processType"`
	ProcessStep int    `json:"processStep"`
	Finish      string `json:"finish"`
	Status      string `json:"status"`
	CreateTime  Time   `json:"createTime"`
	UpdateTime  Time   `json:"updateTime"`
}

// Task is a task as currentTasks and task/info show it.
type Task struct {
	ID          int64   `json:"id"`
	ProcessID   int64   `json:"processId"`
	Host        string  `json:"host"`
	ProcessType string  `json:"processType"`
	TaskType    string  `json:"taskType"`
	Status      string  `json:"status"`
	StartTime   Time    `json:"startTime"`
	EndTime     Time    `json:"endTime"`
	ExecutorID  *string `json:"executorId"`
	Result      *string `json:"result"`
	Finish      string  `json:"finish"`
	TaskRole    *string `json:"taskRole"`
	Response    *string `json:"response"`
	Skip        string  `json:"skip"`
}

// Task statuses.
const (
	TaskSubmitted = "SUBMITTED"
	TaskRunning   = "RUNNING"
	TaskSuccess   = "SUCCESS"
	TaskFailure   = "FAILURE"
)

// Skipped is true for a task given up on (skip:"YES"; some managers show a
// SKIPPED status instead).
func (t Task) Skipped() bool { return t.Skip == "YES" || t.Status == "SKIPPED" }

// Done is true for a task that holds nothing up: SUCCESS or skipped.
func (t Task) Done() bool { return t.Status == TaskSuccess || t.Skipped() }

// Failed is true for a FAILURE task that was not skipped.
func (t Task) Failed() bool { return t.Status == TaskFailure && !t.Skipped() }

// Role is the task's role ("" for agent and cluster tasks).
func (t Task) Role() string {
	if t.TaskRole == nil {
		return ""
	}
	return *t.TaskRole
}

// Message is the task's response ("" when none).
func (t Task) Message() string {
	if t.Response == nil {
		return ""
	}
	return *t.Response
}

// TaskLog is GET /api/process/task/log/{taskId}.
type TaskLog struct {
	LogPath *string `json:"logPath"`
	Log     string  `json:"log"`
}

// Role is an entry of roleList.
type Role struct {
	ID         int64   `json:"id"`
	Host       string  `json:"host"`
	ClusterID  int64   `json:"clusterId"`
	Role       string  `json:"role"`
	FENodeType *string `json:"feNodeType"`
	InstallDir string  `json:"installDir"`
	Register   string  `json:"register"`
}

// Agent is an entry of agentList.
type Agent struct {
	ID               int64  `json:"id"`
	Host             string `json:"host"`
	Port             int    `json:"port"`
	Status           string `json:"status"`
	RegisterTime     Time   `json:"registerTime"`
	LastReportedTime Time   `json:"lastReportedTime"`
}

// ClusterStatus is GET /api/cluster/{clusterId}/status.
type ClusterStatus struct {
	ClusterID int64        `json:"clusterId"`
	Name      string       `json:"name"`
	Destroyed bool         `json:"destroyed"`
	Nodes     []NodeStatus `json:"nodes"`
}

// NodeStatus is one node of a ClusterStatus.
type NodeStatus struct {
	Host        string         `json:"host"`
	Role        string         `json:"role"`
	FENodeType  *string        `json:"feNodeType"`
	Master      bool           `json:"master"`
	Status      string         `json:"status"`
	Alive       *bool          `json:"alive"`
	Version     *string        `json:"version"`
	Ports       map[string]int `json:"ports"`
	Agent       string         `json:"agent"`
	LastChecked Time           `json:"lastChecked"`
	Detail      *string        `json:"detail"`
}

// ---- wizard requests: only the fields the API knows ----

// InstallAgent is the body of POST /api/server/installAgent.
type InstallAgent struct {
	ProcessID           int64             `json:"processId,omitempty"`
	ClusterID           int64             `json:"clusterId"`
	Hosts               []string          `json:"hosts"`
	User                string            `json:"user"`
	SSHPort             int               `json:"sshPort"`
	SSHKey              string            `json:"sshKey"`
	Passphrase          string            `json:"passphrase,omitempty"`
	HostKeyFingerprints map[string]string `json:"hostKeyFingerprints,omitempty"`
	StrictHostKeys      bool              `json:"strictHostKeys,omitempty"`
	PackageURL          string            `json:"packageUrl"`
	InstallDir          string            `json:"installDir"`
}

// InstallInfo is one role to install.
type InstallInfo struct {
	Host       string `json:"host"`
	Role       string `json:"role"`
	FENodeType string `json:"feNodeType,omitempty"`
	Master     bool   `json:"master,omitempty"`
}

// InstallService is the body of POST /api/agent/installService.
type InstallService struct {
	ProcessID              int64             `json:"processId"`
	InstallInfos           []InstallInfo     `json:"installInfos"`
	PackageSha256          string            `json:"packageSha256,omitempty"`
	AllowUnverifiedPackage bool              `json:"allowUnverifiedPackage,omitempty"`
	AutoFix                bool              `json:"autoFix,omitempty"`
	Params                 map[string]string `json:"params,omitempty"`
}

// DeployConfig is one conf for some hosts of a role.
type DeployConfig struct {
	Hosts []string `json:"hosts"`
	Role  string   `json:"role"`
	Conf  string   `json:"conf"`
}

// DeployConfigs is the body of POST /api/agent/deployConfig.
type DeployConfigs struct {
	ProcessID     int64          `json:"processId"`
	DeployConfigs []DeployConfig `json:"deployConfigs"`
}

// HostRole names one node.
type HostRole struct {
	Host string `json:"host"`
	Role string `json:"role"`
}

// StartService is the body of POST /api/agent/startService.
type StartService struct {
	ProcessID   int64      `json:"processId"`
	DorisStarts []HostRole `json:"dorisStarts"`
}

// BuildCluster is the body of POST /api/agent/buildCluster; both lists are
// sent even when empty.
type BuildCluster struct {
	ProcessID     int64    `json:"processId"`
	FEHosts       []string `json:"feHosts"`
	BEHosts       []string `json:"beHosts"`
	AdminPassword string   `json:"adminPassword,omitempty"`
}

// ---- calls ----

// Clusters lists the clusters the caller may see.
func (c *Client) Clusters(ctx context.Context) ([]Cluster, error) {
	var out []Cluster
	return out, c.Do(ctx, http.MethodGet, "/api/cluster", nil, &out)
}

// CreateCluster creates a cluster by name.
func (c *Client) CreateCluster(ctx context.Context, name string) (Cluster, error) {
	var out Cluster
	return out, c.Do(ctx, http.MethodPost, "/api/cluster", map[string]string{"name": name}, &out)
}

// FindCluster resolves an id or a name; ok is false when none matches.
func (c *Client) FindCluster(ctx context.Context, idOrName string) (Cluster, bool, error) {
	cs, err := c.Clusters(ctx)
	if err != nil {
		return Cluster{}, false, err
	}
	id, numErr := strconv.ParseInt(idOrName, 10, 64)
	for _, cl := range cs {
		if cl.Name == idOrName {
			return cl, true, nil
		}
	}
	if numErr == nil {
		for _, cl := range cs {
			if cl.ID == id {
				return cl, true, nil
			}
		}
	}
	return Cluster{}, false, nil
}

// CurrentProcess is the caller's unfinished wizard process, nil if none.
func (c *Client) CurrentProcess(ctx context.Context) (*Process, error) {
	var p *Process
	return p, c.Do(ctx, http.MethodGet, "/api/process/currentProcess", nil, &p)
}

// Processes lists a cluster's processes, newest first. Managers without
// the route answer an *Error whose NoEndpoint is true.
func (c *Client) Processes(ctx context.Context, clusterID int64) ([]Process, error) {
	var out []Process
	return out, c.Do(ctx, http.MethodGet, "/api/process?clusterId="+url.QueryEscape(strconv.FormatInt(clusterID, 10)), nil, &out)
}

// CurrentTasks lists the tasks of a process's current step.
func (c *Client) CurrentTasks(ctx context.Context, processID int64) ([]Task, error) {
	var out []Task
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/process/%d/currentTasks", processID), nil, &out)
}

// TaskInfo is one task.
func (c *Client) TaskInfo(ctx context.Context, taskID int64) (Task, error) {
	var out Task
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/info/%d", taskID), nil, &out)
}

// TaskLog is a task's kept log (its last MiB).
func (c *Client) TaskLog(ctx context.Context, taskID int64) (TaskLog, error) {
	var out TaskLog
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/log/%d", taskID), nil, &out)
}

// TaskAction is retry, skip or unskip of a task.
func (c *Client) TaskAction(ctx context.Context, action string, taskID int64) error {
	return c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/process/task/%s/%d", action, taskID), nil, nil)
}

// Back returns a process from START_SERVICE to DEPLOY_CONFIG.
func (c *Client) Back(ctx context.Context, processID int64) error {
	return c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/process/back/%d", processID), nil, nil)
}

// InstallAgent starts a process (or re-runs its step 0 with ProcessID).
func (c *Client) InstallAgent(ctx context.Context, req InstallAgent) (int64, error) {
	var id int64
	return id, c.Do(ctx, http.MethodPost, "/api/server/installAgent", req, &id)
}

// InstallService sends step 1.
func (c *Client) InstallService(ctx context.Context, req InstallService) error {
	return c.Do(ctx, http.MethodPost, "/api/agent/installService", req, nil)
}

// DeployConfig sends step 2.
func (c *Client) DeployConfig(ctx context.Context, req DeployConfigs) error {
	return c.Do(ctx, http.MethodPost, "/api/agent/deployConfig", req, nil)
}

// StartService sends step 3.
func (c *Client) StartService(ctx context.Context, req StartService) error {
	return c.Do(ctx, http.MethodPost, "/api/agent/startService", req, nil)
}

// BuildCluster sends step 4.
func (c *Client) BuildCluster(ctx context.Context, req BuildCluster) error {
	if req.FEHosts == nil {
		req.FEHosts = []string{}
	}
	if req.BEHosts == nil {
		req.BEHosts = []string{}
	}
	return c.Do(ctx, http.MethodPost, "/api/agent/buildCluster", req, nil)
}

// InstallComplete ends a process. Newer managers answer the final process
// (nil from older ones).
func (c *Client) InstallComplete(ctx context.Context, processID int64) (*Process, error) {
	var p *Process
	return p, c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", processID), nil, &p)
}

// Roles lists a cluster's installed roles.
func (c *Client) Roles(ctx context.Context, clusterID int64) ([]Role, error) {
	var out []Role
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/server/roleList?clusterId=%d", clusterID), nil, &out)
}

// Agents lists a cluster's agents.
func (c *Client) Agents(ctx context.Context, clusterID int64) ([]Agent, error) {
	var out []Agent
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/server/agentList?clusterId=%d", clusterID), nil, &out)
}

// Status is a cluster's node statuses (from the manager's cache).
func (c *Client) Status(ctx context.Context, clusterID int64) (ClusterStatus, error) {
	var out ClusterStatus
	return out, c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/cluster/%d/status", clusterID), nil, &out)
}

// Operation starts a day-2 operation (stop, start, restart, scaleIn,
// upgrade, config, destroy) and returns its process id.
func (c *Client) Operation(ctx context.Context, clusterID int64, op string, body any) (int64, error) {
	if body == nil {
		body = struct{}{}
	}
	var out struct {
		ProcessID int64 `json:"processId"`
	}
	err := c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/cluster/%d/%s", clusterID, op), body, &out)
	return out.ProcessID, err
}
