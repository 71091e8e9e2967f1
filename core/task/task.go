// Package task is the typed input of the wizard's tasks (store.Task.Input,
// JSON): core/process writes it, the actions that run the tasks
// (core/roleexec, core/agentaction) read it. It is the one declaration of
// each input; no other package re-declares or reads it as a map.
package task

import (
	"encoding/json"
	"fmt"

	"github.com/dorismanager/dorismanager/core/store"
)

// Role is the input of a role task: INSTALL_<ROLE>, DEPLOY_<ROLE>_CONFIG,
// START_<ROLE> and the BUILD_CLUSTER task of the role. Later steps carry
// the install task's input forward, without the fields only that step
// needed. Where the role lives (its home) and what the plugin reported are
// in the role's record (store.AgentRole), not here.
type Role struct {
	ClusterID int64  `json:"clusterId"`
	Host      string `json:"host"`
	Role      string `json:"role"`
	// Labels is the placement the operator gave at installService (the
	// API document's FE fields: feNodeType, master).
	Labels map[string]string `json:"labels,omitempty"`
	// PackageURL, its checksums and AutoFix are for INSTALL_ only. The
	// checksums are the operator's packageSha256, or the one published
	// beside the package (PackageSumFrom names that file, without a
	// password). With none, the operator allowed an unverified package
	// and PackageUnverified says why there is no checksum.
	PackageURL        string `json:"packageUrl,omitempty"`
	PackageSHA256     string `json:"packageSha256,omitempty"`
	PackageSHA512     string `json:"packageSha512,omitempty"`
	PackageSumFrom    string `json:"packageSumFrom,omitempty"`
	PackageUnverified string `json:"packageUnverified,omitempty"`
	AutoFix           bool   `json:"autoFix,omitempty"`
	// Params are installService's params that this role declares, with
	// the role's defaults applied.
	Params map[string]string `json:"params,omitempty"`
	// Conf is the role's config file text (DEPLOY_ only).
	Conf string `json:"conf,omitempty"`
}

// Agent is the input of INSTALL_AGENT. The SSH credentials are not here:
// they are sealed in store.Process.Credentials.
type Agent struct {
	ClusterID  int64  `json:"clusterId"`
	Host       string `json:"host"`
	SSHPort    int    `json:"sshPort"`
	User       string `json:"user"`
	InstallDir string `json:"installDir"`
}

// Cluster is the input of a task on the whole cluster (SECURE_CLUSTER).
type Cluster struct {
	ClusterID int64 `json:"clusterId"`
}

// Encode is the Task.Input text of a Role, an Agent or a Cluster.
func Encode[T Role | Agent | Cluster](in T) string {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err) // plain strings, numbers and string maps always marshal
	}
	return string(b)
}

// RoleOf reads the input of a role task.
func RoleOf(t store.Task) (Role, error) {
	var in Role
	if err := json.Unmarshal([]byte(t.Input), &in); err != nil {
		return in, fmt.Errorf("task %d has unreadable input: %w", t.ID, err)
	}
	if in.Role == "" {
		in.Role = t.TaskRole
	}
	return in, nil
}

// AgentOf reads the input of an INSTALL_AGENT task.
func AgentOf(t store.Task) (Agent, error) {
	var in Agent
	if err := json.Unmarshal([]byte(t.Input), &in); err != nil {
		return in, fmt.Errorf("task %d has unreadable input: %w", t.ID, err)
	}
	return in, nil
}

// ClusterOf reads the input of a cluster task.
func ClusterOf(t store.Task) (Cluster, error) {
	var in Cluster
	if err := json.Unmarshal([]byte(t.Input), &in); err != nil {
		return in, fmt.Errorf("task %d has unreadable input: %w", t.ID, err)
	}
	if in.ClusterID <= 0 {
		return in, fmt.Errorf("task %d names no cluster", t.ID)
	}
	return in, nil
}
