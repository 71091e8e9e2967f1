package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Day-2 operations through the REST API, as a client calls them.

// NodeRef names one role on one host in an operation's body.
type NodeRef struct {
	Host string `json:"host"`
	Role string `json:"role"`
}

// Operation POSTs /api/cluster/{clusterId}/{op} (stop, start, restart,
// scaleIn, upgrade, config, destroy) and returns the new process's id.
func (c *Client) Operation(ctx context.Context, clusterID int64, op string, body any) (int64, error) {
	r, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/cluster/%d/%s", clusterID, op), body)
	if err != nil {
		return 0, err
	}
	var d struct {
		ProcessID int64 `json:"processId"`
	}
	if err := r.Decode(&d); err != nil || d.ProcessID <= 0 {
		return 0, fmt.Errorf("%s: no processId in %s", op, r.Data)
	}
	return d.ProcessID, nil
}

// WaitOperation polls currentTasks until every task of the operation is
// SUCCESS, or one failed (the tasks after it wait for a retry or skip);
// onChange sees every status change. It returns the tasks.
func (c *Client) WaitOperation(ctx context.Context, pid int64, onChange func(Task)) ([]Task, error) {
	seen := map[int64]string{}
	since := time.Now()
	for {
		ts, err := c.CurrentTasks(ctx, pid)
		if err != nil {
			return nil, err
		}
		done, failed := len(ts) > 0, false
		for _, t := range ts {
			if seen[t.ID] != t.Status {
				seen[t.ID] = t.Status
				if onChange != nil {
					onChange(t)
				}
			}
			switch t.Status {
			case "FAILURE":
				failed = true
			case "SUCCESS":
			default:
				done = false
			}
		}
		running := false
		for _, t := range ts {
			running = running || t.Status == "RUNNING"
		}
		if done || (failed && !running) {
			return ts, nil
		}
		select {
		case <-ctx.Done():
			return ts, waitedErr(ctx, fmt.Sprintf("waiting for operation %d to end", pid), since, ts)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RunOperation starts an operation and waits for it; a failed task is an
// error naming it.
func (c *Client) RunOperation(ctx context.Context, clusterID int64, op string, body any) (int64, []Task, error) {
	pid, err := c.Operation(ctx, clusterID, op, body)
	if err != nil {
		return 0, nil, err
	}
	ts, err := c.WaitOperation(ctx, pid, nil)
	if err != nil {
		return pid, ts, err
	}
	if f := Failed(ts); len(f) > 0 {
		return pid, ts, fmt.Errorf("%s (process %d) failed:%s", op, pid, Describe(f))
	}
	return pid, ts, nil
}

// NodeStatus is one node of GET /api/cluster/{id}/status.
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
	LastChecked *string        `json:"lastChecked"`
	Detail      *string        `json:"detail"`
}

// ClusterStatus is the data of GET /api/cluster/{id}/status.
type ClusterStatus struct {
	ClusterID int64        `json:"clusterId"`
	Name      string       `json:"name"`
	Destroyed bool         `json:"destroyed"`
	Nodes     []NodeStatus `json:"nodes"`
}

// String lists the nodes' states, for failure messages.
func (s ClusterStatus) String() string {
	var b strings.Builder
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "\n  %s %s: %s (%s) version %s checked %s", n.Role, n.Host, n.Status, Str(n.Detail), Str(n.Version), Str(n.LastChecked))
	}
	return b.String()
}

// Node returns the status of role on host.
func (s ClusterStatus) Node(host, role string) (NodeStatus, bool) {
	for _, n := range s.Nodes {
		if n.Host == host && n.Role == role {
			return n, true
		}
	}
	return NodeStatus{}, false
}

// Status calls GET /api/cluster/{id}/status.
func (c *Client) Status(ctx context.Context, clusterID int64) (ClusterStatus, error) {
	var s ClusterStatus
	r, err := c.OK(ctx, http.MethodGet, fmt.Sprintf("/api/cluster/%d/status", clusterID), nil)
	if err != nil {
		return s, err
	}
	return s, r.Decode(&s)
}

// WaitStatus polls the status until ok says yes.
func (c *Client) WaitStatus(ctx context.Context, clusterID int64, what string, ok func(ClusterStatus) bool) (ClusterStatus, error) {
	for {
		s, err := c.Status(ctx, clusterID)
		if err != nil {
			return s, err
		}
		if ok(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("waiting until %s: %w; last status:%s", what, ctx.Err(), s)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// AllUp reports whether every node is UP.
func AllUp(s ClusterStatus) bool {
	for _, n := range s.Nodes {
		if n.Status != "UP" {
			return false
		}
	}
	return len(s.Nodes) > 0
}
