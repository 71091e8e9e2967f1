package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ReinstallAgent re-runs installAgent on an unfinished process (the
// "processId" field): new credentials, and its failed tasks run again.
func (c *Client) ReinstallAgent(ctx context.Context, pid int64, p Plan, installDir, packageURL string) error {
	_, err := c.OK(ctx, http.MethodPost, "/api/server/installAgent", map[string]any{
		"processId": fmt.Sprint(pid), "clusterId": fmt.Sprint(p.ClusterID), "packageUrl": packageURL,
		"installDir": installDir, "hosts": p.Hosts, "user": "root", "sshPort": 22, "sshKey": string(p.SSHKey),
	})
	return err
}

// RetryTask runs a FAILURE task again.
func (c *Client) RetryTask(ctx context.Context, taskID int64) error {
	_, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/task/retry/%d", taskID), nil)
	return err
}

// Skip marks a FAILURE task as skipped.
func (c *Client) Skip(ctx context.Context, taskID int64) error {
	_, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/task/skip/%d", taskID), nil)
	return err
}

// Back returns a process from START_SERVICE to DEPLOY_CONFIG.
func (c *Client) Back(ctx context.Context, pid int64) error {
	_, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/back/%d", pid), nil)
	return err
}

// WaitFor polls currentTasks until done says the tasks are where the
// caller wants them, and returns them.
func (c *Client) WaitFor(ctx context.Context, pid int64, done func([]Task) bool) ([]Task, error) {
	since := time.Now()
	for {
		ts, err := c.CurrentTasks(ctx, pid)
		if err != nil {
			return nil, err
		}
		if done(ts) {
			return ts, nil
		}
		select {
		case <-ctx.Done():
			return ts, waitedErr(ctx, fmt.Sprintf("waiting for the tasks of process %d to reach the state the test wants", pid), since, ts)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Steps are the wizard's steps after INSTALL_AGENT, in order.
var Steps = []string{"INSTALL_SERVICE", "DEPLOY_CONFIG", "START_SERVICE", "BUILD_CLUSTER"}

// WalkFrom runs the wizard for plan p from step from (one of Steps) to
// installComplete on process pid, which must have finished the step
// before. It returns the final tasks of every step it ran.
func (c *Client) WalkFrom(ctx context.Context, s *Sandbox, pid int64, p Plan, from string) (map[string][]Task, error) {
	calls := map[string]func() error{
		"INSTALL_SERVICE": func() error {
			return c.InstallService(ctx, pid, p, map[string]any{"packageSha256": s.PackageSHA256})
		},
		"DEPLOY_CONFIG": func() error { return c.DeployConfig(ctx, pid, p) },
		"START_SERVICE": func() error { return c.StartService(ctx, pid, p) },
		"BUILD_CLUSTER": func() error { return c.BuildCluster(ctx, pid, p) },
	}
	out := map[string][]Task{}
	started := false
	for _, step := range Steps {
		if step == from {
			started = true
		}
		if !started {
			continue
		}
		if err := calls[step](); err != nil {
			return out, fmt.Errorf("%s: %w", step, err)
		}
		ts, err := c.WaitStep(ctx, pid, nil)
		out[step] = ts
		if err != nil {
			return out, fmt.Errorf("%s: %w", step, err)
		}
		if f := Failed(ts); len(f) > 0 {
			return out, fmt.Errorf("%s failed:%s", step, Describe(f))
		}
	}
	if !started {
		return out, fmt.Errorf("unknown step %q", from)
	}
	_, err := c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"processId": pid, "hosts": p.Hosts})
	return out, err
}

// CheckAlive asks the cluster, over the MySQL protocol at the first FE of
// p on queryPort (as root with the revealed password), whether exactly
// p's FEs (one master), BEs and brokers are there and alive. The error
// lists everything that is not.
func (s *Sandbox) CheckAlive(ctx context.Context, p Plan, queryPort int) error {
	if len(p.FEs) == 0 {
		return errors.New("the plan has no FE to ask")
	}
	db, err := s.MySQL(ctx, p.ClusterID, net.JoinHostPort(p.FEs[0].Host, strconv.Itoa(queryPort)))
	if err != nil {
		return err
	}
	defer db.Close()
	var problems []string
	check := func(q string, want []string, master bool) error {
		rows, err := queryRows(ctx, db, q)
		if err != nil {
			return err
		}
		got := map[string]bool{}
		masters := 0
		for _, r := range rows {
			host := r["Host"]
			if host == "" {
				host = r["IP"]
			}
			got[host] = true
			if r["Alive"] != "true" {
				problems = append(problems, fmt.Sprintf("%s: %s is not alive", q, host))
			}
			if r["IsMaster"] == "true" {
				masters++
			}
		}
		for _, h := range want {
			if !got[h] {
				problems = append(problems, fmt.Sprintf("%s: %s is missing", q, h))
			}
		}
		if len(rows) != len(want) {
			problems = append(problems, fmt.Sprintf("%s: %d rows, want %d", q, len(rows), len(want)))
		}
		if master && masters != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d masters, want 1", q, masters))
		}
		return nil
	}
	var fes []string
	for _, fe := range p.FEs {
		fes = append(fes, fe.Host)
	}
	if err := check("SHOW FRONTENDS", fes, true); err != nil {
		return err
	}
	if err := check("SHOW BACKENDS", p.BEs, false); err != nil {
		return err
	}
	if err := check("SHOW BROKER", p.Brokers, false); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func queryRows(ctx context.Context, db *sql.DB, q string) ([]map[string]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
