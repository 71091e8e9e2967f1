package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Task statuses.
const (
	StatusSubmitted = "SUBMITTED"
	StatusRunning   = "RUNNING"
	StatusSuccess   = "SUCCESS"
	StatusFailure   = "FAILURE"
)

// MaxTaskLog is how much of a task's log is kept (the newest part).
const MaxTaskLog = 1 << 20

// ---- clusters ----

// CreateCluster adds a cluster; a taken name is ErrDuplicate.
func (s *Store) CreateCluster(ctx context.Context, name string) (Cluster, error) {
	c := Cluster{Name: name}
	if err := s.q(ctx).Create(&c).Error; err != nil {
		return Cluster{}, translate(err)
	}
	return c, nil
}

// GetCluster returns one cluster or ErrNotFound.
func (s *Store) GetCluster(ctx context.Context, id int64) (Cluster, error) {
	var c Cluster
	err := s.q(ctx).Where("id = ?", id).Take(&c).Error
	return c, translate(err)
}

// ListClusters returns every cluster by id.
func (s *Store) ListClusters(ctx context.Context) ([]Cluster, error) {
	var cs []Cluster
	err := s.q(ctx).Order("id").Find(&cs).Error
	return cs, err
}

// EnsureCluster returns cluster id, creating it (named "cluster-<id>") when
// it does not exist yet.
func (s *Store) EnsureCluster(ctx context.Context, id int64) (Cluster, bool, error) {
	c, err := s.GetCluster(ctx, id)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Cluster{}, false, err
	}
	c = Cluster{ID: id, Name: fmt.Sprintf("cluster-%d", id)}
	// A concurrent creator of the same id wins quietly; we read theirs.
	res := s.q(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoNothing: true}).Create(&c)
	if res.Error != nil {
		return Cluster{}, false, fmt.Errorf("create cluster %d named %q: %w", id, c.Name, translate(res.Error))
	}
	if res.RowsAffected == 0 {
		c, err = s.GetCluster(ctx, id)
		return c, false, err
	}
	if s.postgres {
		// An explicit id does not advance the serial sequence; move it past
		// the largest id so later CreateCluster calls do not collide.
		err := s.q(ctx).Exec(`SELECT setval(pg_get_serial_sequence('clusters', 'id'), GREATEST((SELECT MAX(id) FROM clusters), 1))`).Error
		if err != nil {
			return Cluster{}, false, fmt.Errorf("advance cluster id sequence: %w", err)
		}
	}
	return c, true, nil
}

// ---- users and tokens ----

// EnsureUser returns the user named name, creating it if needed.
func (s *Store) EnsureUser(ctx context.Context, name string) (User, error) {
	var u User
	err := s.q(ctx).Where("name = ?", name).Take(&u).Error
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return User{}, err
	}
	u = User{Name: name}
	if err := s.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&u).Error; err != nil {
		return User{}, translate(err)
	}
	if u.ID != 0 {
		return u, nil
	}
	// Lost a race with another creator: read theirs.
	err = s.q(ctx).Where("name = ?", name).Take(&u).Error
	return u, translate(err)
}

// GetUser returns one user or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.q(ctx).Where("id = ?", id).Take(&u).Error
	return u, translate(err)
}

// ---- processes ----

// CreateProcess inserts p; a second unfinished process for the same user
// or cluster is ErrDuplicate.
func (s *Store) CreateProcess(ctx context.Context, p *Process) error {
	return translate(s.q(ctx).Create(p).Error)
}

// GetProcess returns one process or ErrNotFound.
func (s *Store) GetProcess(ctx context.Context, id int64) (Process, error) {
	var p Process
	err := s.q(ctx).Where("id = ?", id).Take(&p).Error
	return p, translate(err)
}

// AddUpstreamBytes adds n to the bytes pulled from package URLs for a
// process. It is no state change: the version stays.
func (s *Store) AddUpstreamBytes(ctx context.Context, processID, n int64) error {
	return s.q(ctx).Model(&Process{}).Where("id = ?", processID).
		UpdateColumn("package_upstream_bytes", gorm.Expr("package_upstream_bytes + ?", n)).Error
}

// OpenProcessOfUser returns the user's unfinished wizard process or ErrNotFound.
func (s *Store) OpenProcessOfUser(ctx context.Context, userID int64) (Process, error) {
	var p Process
	err := s.q(ctx).Where("user_id = ? AND finish = ? AND kind = ?", userID, false, KindWizard).Order("id").Take(&p).Error
	return p, translate(err)
}

// OpenProcessOfCluster returns the cluster's unfinished wizard process or ErrNotFound.
func (s *Store) OpenProcessOfCluster(ctx context.Context, clusterID int64) (Process, error) {
	var p Process
	err := s.q(ctx).Where("cluster_id = ? AND finish = ? AND kind = ?", clusterID, false, KindWizard).Order("id").Take(&p).Error
	return p, translate(err)
}

// ProcessesOfCluster returns every process of a cluster (wizard runs and
// operations), the newest first.
func (s *Store) ProcessesOfCluster(ctx context.Context, clusterID int64) ([]Process, error) {
	var ps []Process
	err := s.q(ctx).Where("cluster_id = ?", clusterID).Order("id DESC").Find(&ps).Error
	return ps, err
}

// StepKey names one step of one process.
type StepKey struct {
	ProcessID int64
	Step      int
}

// Progress counts a step's tasks and those of them that are done (SUCCESS
// or skipped).
type Progress struct {
	Total int
	Done  int
}

// StepProgress counts the tasks of every step of the given processes in
// one query; a step without tasks is absent.
func (s *Store) StepProgress(ctx context.Context, processIDs []int64) (map[StepKey]Progress, error) {
	out := map[StepKey]Progress{}
	if len(processIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		ProcessID int64
		Step      int
		Total     int
		Done      int
	}
	err := s.q(ctx).Model(&Task{}).
		Select("process_id, step, COUNT(*) AS total, SUM(CASE WHEN skip = ? OR status = ? THEN 1 ELSE 0 END) AS done", true, StatusSuccess).
		Where("process_id IN ?", processIDs).Group("process_id, step").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[StepKey{r.ProcessID, r.Step}] = Progress{Total: r.Total, Done: r.Done}
	}
	return out, nil
}

// UpdateProcessIf applies updates to process id only if its Version is
// still version and it is unfinished, and increments Version. It reports
// whether the row was updated (false: someone else changed it first).
func (s *Store) UpdateProcessIf(ctx context.Context, id, version int64, updates map[string]any) (bool, error) {
	u := map[string]any{"version": gorm.Expr("version + 1"), "updated_at": time.Now().UTC()}
	for k, v := range updates {
		u[k] = v
	}
	res := s.q(ctx).Model(&Process{}).Where("id = ? AND version = ? AND finish = ?", id, version, false).Updates(u)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ---- tasks ----

// CreateTasks inserts tasks (ids are filled in).
func (s *Store) CreateTasks(ctx context.Context, tasks []Task) error {
	if len(tasks) == 0 {
		return nil
	}
	return translate(s.q(ctx).Create(&tasks).Error)
}

// GetTask returns one task or ErrNotFound.
func (s *Store) GetTask(ctx context.Context, id int64) (Task, error) {
	var t Task
	err := s.q(ctx).Where("id = ?", id).Take(&t).Error
	return t, translate(err)
}

// TasksOfStep returns a step's tasks ordered by Seq then id.
func (s *Store) TasksOfStep(ctx context.Context, processID int64, step int) ([]Task, error) {
	var ts []Task
	err := s.q(ctx).Where("process_id = ? AND step = ?", processID, step).Order("seq, id").Find(&ts).Error
	return ts, err
}

// TasksWithStatus returns every task with the given status.
func (s *Store) TasksWithStatus(ctx context.Context, status string) ([]Task, error) {
	var ts []Task
	err := s.q(ctx).Where("status = ?", status).Order("id").Find(&ts).Error
	return ts, err
}

// UpdateTaskIf applies updates to task id only if its status is one of
// fromStatus; it reports whether the row changed.
func (s *Store) UpdateTaskIf(ctx context.Context, id int64, fromStatus []string, updates map[string]any) (bool, error) {
	u := map[string]any{"updated_at": time.Now().UTC()}
	for k, v := range updates {
		u[k] = v
	}
	res := s.q(ctx).Model(&Task{}).Where("id = ? AND status IN ?", id, fromStatus).Updates(u)
	if res.Error != nil {
		return false, res.Error
	}
	return res.RowsAffected == 1, nil
}

// DeleteTasksOfStep removes a step's tasks and their logs.
func (s *Store) DeleteTasksOfStep(ctx context.Context, processID int64, step int) error {
	sub := s.q(ctx).Model(&Task{}).Select("id").Where("process_id = ? AND step = ?", processID, step)
	if err := s.q(ctx).Where("task_id IN (?)", sub).Delete(&TaskLog{}).Error; err != nil {
		return err
	}
	return s.q(ctx).Where("process_id = ? AND step = ?", processID, step).Delete(&Task{}).Error
}

// ClaimTasks marks up to limit runnable tasks RUNNING under a lease of
// owner for the given duration (store/leases.go) and returns them. A task
// is runnable when it is SUBMITTED, not skipped, and every task of its
// step with a smaller Seq is SUCCESS or skipped. The claim is a
// conditional UPDATE, so several managers on one database never claim the
// same task.
func (s *Store) ClaimTasks(ctx context.Context, owner string, lease time.Duration, limit int) ([]Task, error) {
	if limit <= 0 {
		return nil, nil
	}
	var ids []int64
	err := s.q(ctx).Raw(`SELECT t.id FROM tasks t
WHERE t.status = ? AND t.skip = ?
  AND NOT EXISTS (SELECT 1 FROM tasks o
    WHERE o.process_id = t.process_id AND o.step = t.step AND o.task_role = t.task_role
      AND o.seq < t.seq AND o.skip = ? AND o.status <> ?)
ORDER BY t.id LIMIT ?`, StatusSubmitted, false, false, StatusSuccess, limit*2).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("find runnable tasks: %w", err)
	}
	var claimed []Task
	for _, id := range ids {
		if len(claimed) == limit {
			break
		}
		now := time.Now().UTC()
		res := s.q(ctx).Model(&Task{}).Where("id = ? AND status = ? AND skip = ?", id, StatusSubmitted, false).
			UpdateColumns(map[string]any{"status": StatusRunning, "executor_id": owner, "lease_until": s.leaseEnd(lease),
				"lease_epoch": gorm.Expr("lease_epoch + 1"), "start_time": now, "end_time": nil, "finish": false,
				"response": "", "updated_at": now})
		if res.Error != nil {
			return claimed, fmt.Errorf("claim task %d: %w", id, res.Error)
		}
		if res.RowsAffected != 1 {
			continue // another manager was first
		}
		t, err := s.GetTask(ctx, id)
		if err != nil {
			return claimed, fmt.Errorf("load claimed task %d: %w", id, err)
		}
		claimed = append(claimed, t)
	}
	return claimed, nil
}

// MarkBlocked notes on the tasks waiting behind a failed one (same process,
// step and role, larger Seq) that they will not run until it is retried or
// skipped, so a client polling currentTasks sees why they do not move.
func (s *Store) MarkBlocked(ctx context.Context, failed Task) error {
	msg := fmt.Sprintf("waiting for task %d (%s on %s), which failed: retry or skip it", failed.ID, failed.TaskType, failed.Host)
	err := s.q(ctx).Model(&Task{}).
		Where("process_id = ? AND step = ? AND task_role = ? AND seq > ? AND status = ? AND skip = ?",
			failed.ProcessID, failed.Step, failed.TaskRole, failed.Seq, StatusSubmitted, false).
		Update("response", msg).Error
	if err != nil {
		return fmt.Errorf("mark tasks blocked by task %d: %w", failed.ID, err)
	}
	return nil
}

// EndTask records the end of the run of t (as claimed: owner, epoch and
// attempt) and gives up its lease. It changes nothing (and reports false)
// if the task moved on meanwhile: removed by a step going back, or taken
// over by another manager after the lease expired.
func (s *Store) EndTask(ctx context.Context, t Task, status, response, result, logPath string) (bool, error) {
	now := time.Now().UTC()
	u := map[string]any{"status": status, "response": response, "end_time": now, "updated_at": now, "lease_until": nil,
		"finish": status == StatusSuccess || status == StatusFailure}
	if result != "" {
		u["result"] = result
	}
	if logPath != "" {
		u["log_path"] = logPath
	}
	if status == StatusSubmitted {
		u["end_time"] = nil
		u["start_time"] = nil
		u["executor_id"] = ""
	}
	res := s.q(ctx).Model(&Task{}).Where(held, t.ID, StatusRunning, t.ExecutorID, t.LeaseEpoch).
		Where("attempt = ?", t.Attempt).UpdateColumns(u)
	if res.Error != nil {
		return false, fmt.Errorf("record end of task %d: %w", t.ID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ---- task logs ----

// AppendTaskLog appends p to a task's log, keeping only its last MaxTaskLog bytes.
func (s *Store) AppendTaskLog(ctx context.Context, taskID int64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	return s.Tx(ctx, func(tx *Store) error {
		q := tx.q(ctx)
		if tx.postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var l TaskLog
		err := q.Where("task_id = ?", taskID).Take(&l).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		content := make([]byte, 0, len(l.Content)+len(p))
		content = append(append(content, l.Content...), p...)
		if len(content) > MaxTaskLog {
			content = content[len(content)-MaxTaskLog:]
			// Do not start in the middle of a UTF-8 sequence.
			for i := 0; i < 3 && len(content) > 0 && content[0]&0xC0 == 0x80; i++ {
				content = content[1:]
			}
		}
		l = TaskLog{TaskID: taskID, Content: content, UpdatedAt: time.Now().UTC()}
		return tx.q(ctx).Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "task_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"content", "updated_at"}),
		}).Create(&l).Error
	})
}

// TaskLog returns a task's kept log (empty if none was written).
func (s *Store) TaskLog(ctx context.Context, taskID int64) ([]byte, error) {
	var l TaskLog
	err := s.q(ctx).Where("task_id = ?", taskID).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return l.Content, err
}

// ---- agents and roles ----

// ListAgents returns a cluster's agents by host.
func (s *Store) ListAgents(ctx context.Context, clusterID int64) ([]Agent, error) {
	var as []Agent
	err := s.q(ctx).Where("cluster_id = ?", clusterID).Order("host, id").Find(&as).Error
	return as, err
}

// ListRoles returns a cluster's roles by host and role.
func (s *Store) ListRoles(ctx context.Context, clusterID int64) ([]AgentRole, error) {
	var rs []AgentRole
	err := s.q(ctx).Where("cluster_id = ?", clusterID).Order("host, role, id").Find(&rs).Error
	return rs, err
}

// UpsertRole inserts r or replaces the row of the same cluster, host and role
// (node type, master flag and install dir; Ports and Register are kept).
func (s *Store) UpsertRole(ctx context.Context, r *AgentRole) error {
	return s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "cluster_id"}, {Name: "host"}, {Name: "role"}},
		DoUpdates: clause.AssignmentColumns([]string{"fe_node_type", "master", "install_dir", "updated_at"}),
	}).Create(r).Error
}

// ---- counts for metrics ----

// Count is the number of rows sharing a pair of column values.
type Count struct {
	Type   string
	Status string
	N      int64
}

// StatusSkipped is how TaskCounts reports a skipped task, whatever its
// stored status.
const StatusSkipped = "SKIPPED"

// TaskCounts counts tasks by type and status (skipped ones as StatusSkipped).
func (s *Store) TaskCounts(ctx context.Context) ([]Count, error) {
	var rows []struct {
		TaskType string
		Status   string
		Skip     bool
		N        int64
	}
	err := s.q(ctx).Model(&Task{}).Select("task_type, status, skip, count(*) AS n").
		Group("task_type, status, skip").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	sum := map[[2]string]int64{}
	for _, r := range rows {
		st := r.Status
		if r.Skip {
			st = StatusSkipped
		}
		sum[[2]string{r.TaskType, st}] += r.N
	}
	out := make([]Count, 0, len(sum))
	for k, n := range sum {
		out = append(out, Count{Type: k[0], Status: k[1], N: n})
	}
	return out, nil
}

// AgentCounts counts agents of every cluster by status (Count.Type is
// ""), as AfterFind computes it; only the columns it needs are read.
func (s *Store) AgentCounts(ctx context.Context) ([]Count, error) {
	var rows []Agent
	if err := s.q(ctx).Select("id, last_reported_time, heartbeat_seconds").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("count agents: %w", err)
	}
	n := map[string]int64{}
	for _, a := range rows {
		n[a.Status]++
	}
	out := make([]Count, 0, len(n))
	for st, c := range n {
		out = append(out, Count{Status: st, N: c})
	}
	return out, nil
}
