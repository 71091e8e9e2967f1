package sandbox

import (
	"context"
	"fmt"
	"net/http"
)

// AgentEntry is one entry of agentList.
type AgentEntry struct {
	ID               int64   `json:"id"`
	Host             string  `json:"host"`
	Port             int     `json:"port"`
	Status           string  `json:"status"`
	RegisterTime     *string `json:"registerTime"`
	LastReportedTime *string `json:"lastReportedTime"`
}

// AgentList calls agentList for a cluster.
func (c *Client) AgentList(ctx context.Context, clusterID int64) ([]AgentEntry, error) {
	r, err := c.OK(ctx, http.MethodGet, fmt.Sprintf("/api/server/agentList?clusterId=%d", clusterID), nil)
	if err != nil {
		return nil, err
	}
	var out []AgentEntry
	return out, r.Decode(&out)
}

// RoleEntry is one entry of roleList.
type RoleEntry struct {
	ID         int64   `json:"id"`
	Host       string  `json:"host"`
	ClusterID  int64   `json:"clusterId"`
	Role       string  `json:"role"`
	FENodeType *string `json:"feNodeType"`
	InstallDir string  `json:"installDir"`
	Register   string  `json:"register"`
}

// RoleList calls roleList for a cluster.
func (c *Client) RoleList(ctx context.Context, clusterID int64) ([]RoleEntry, error) {
	r, err := c.OK(ctx, http.MethodGet, fmt.Sprintf("/api/server/roleList?clusterId=%d", clusterID), nil)
	if err != nil {
		return nil, err
	}
	var out []RoleEntry
	return out, r.Decode(&out)
}

// TaskInfo calls task/info.
func (c *Client) TaskInfo(ctx context.Context, id int64) (Task, error) {
	var t Task
	r, err := c.OK(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/info/%d", id), nil)
	if err != nil {
		return t, err
	}
	return t, r.Decode(&t)
}

// TaskLogText calls task/log and returns the log text.
func (c *Client) TaskLogText(ctx context.Context, id int64) (string, error) {
	r, err := c.OK(ctx, http.MethodGet, fmt.Sprintf("/api/process/task/log/%d", id), nil)
	if err != nil {
		return "", err
	}
	var l struct {
		Log string `json:"log"`
	}
	return l.Log, r.Decode(&l)
}
