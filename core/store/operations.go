package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Queries of day-2 operations (core/ops) and the cluster status cache.

// OpenOperationOfCluster returns the cluster's unfinished operation or ErrNotFound.
func (s *Store) OpenOperationOfCluster(ctx context.Context, clusterID int64) (Process, error) {
	var p Process
	err := s.q(ctx).Where("cluster_id = ? AND finish = ? AND kind = ?", clusterID, false, KindOperation).Order("id").Take(&p).Error
	return p, translate(err)
}

// TasksOfProcess returns every task of a process ordered by step, Seq and id.
func (s *Store) TasksOfProcess(ctx context.Context, processID int64) ([]Task, error) {
	var ts []Task
	err := s.q(ctx).Where("process_id = ?", processID).Order("step, seq, id").Find(&ts).Error
	return ts, err
}

// ActiveWizardTask returns a task of an unfinished wizard process of the
// cluster that runs or waits to run (RUNNING, or SUBMITTED and not
// skipped), or ErrNotFound when the wizard is idle there.
func (s *Store) ActiveWizardTask(ctx context.Context, clusterID int64) (Task, error) {
	var t Task
	err := s.q(ctx).Model(&Task{}).
		Joins("JOIN processes ON processes.id = tasks.process_id").
		Where("processes.cluster_id = ? AND processes.finish = ? AND processes.kind = ?", clusterID, false, KindWizard).
		Where("tasks.step = processes.step AND tasks.skip = ? AND tasks.status IN ?", false, []string{StatusRunning, StatusSubmitted}).
		Order("tasks.id").Take(&t).Error
	return t, translate(err)
}

// FinishProcess marks an unfinished process finished with status; it
// reports whether it changed anything.
func (s *Store) FinishProcess(ctx context.Context, id int64, status string) (bool, error) {
	res := s.q(ctx).Model(&Process{}).Where("id = ? AND finish = ?", id, false).
		Updates(map[string]any{"finish": true, "status": status, "version": gorm.Expr("version + 1"), "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("finish process %d: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// GetRole returns the role of (cluster, host, role) or ErrNotFound.
func (s *Store) GetRole(ctx context.Context, clusterID int64, host, role string) (AgentRole, error) {
	var r AgentRole
	err := s.q(ctx).Where("cluster_id = ? AND host = ? AND role = ?", clusterID, host, role).Take(&r).Error
	return r, translate(err)
}

// DeleteRole forgets a role of a host (scale-in, destroy); deleting one
// that is gone already is not an error.
func (s *Store) DeleteRole(ctx context.Context, clusterID int64, host, role string) error {
	err := s.q(ctx).Where("cluster_id = ? AND host = ? AND role = ?", clusterID, host, role).Delete(&AgentRole{}).Error
	if err != nil {
		return fmt.Errorf("forget %s on %s: %w", role, host, err)
	}
	return nil
}

// UpdateRolePorts replaces the recorded effective ports (JSON) of a role.
func (s *Store) UpdateRolePorts(ctx context.Context, clusterID int64, host, role, ports string) error {
	err := s.q(ctx).Model(&AgentRole{}).Where("cluster_id = ? AND host = ? AND role = ?", clusterID, host, role).
		Update("ports", ports).Error
	if err != nil {
		return fmt.Errorf("record ports of %s on %s: %w", role, host, err)
	}
	return nil
}

// DeleteAgent forgets the agent of a host, which revokes its certificate
// (the manager accepts only serials recorded for an agent).
func (s *Store) DeleteAgent(ctx context.Context, clusterID int64, host string) error {
	if err := s.q(ctx).Where("cluster_id = ? AND host = ?", clusterID, host).Delete(&Agent{}).Error; err != nil {
		return fmt.Errorf("forget the agent of %s: %w", host, err)
	}
	return nil
}

// MarkClusterDestroyed records that a cluster was destroyed (once).
func (s *Store) MarkClusterDestroyed(ctx context.Context, id int64) error {
	now := time.Now().UTC()
	err := s.q(ctx).Model(&Cluster{}).Where("id = ? AND destroyed_at IS NULL", id).
		Updates(map[string]any{"destroyed_at": now, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("mark cluster %d destroyed: %w", id, err)
	}
	return nil
}

// ClustersWithRoles returns the ids of the clusters that are not destroyed
// and have at least one role.
func (s *Store) ClustersWithRoles(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := s.q(ctx).Model(&AgentRole{}).Distinct("agent_roles.cluster_id").
		Joins("JOIN clusters ON clusters.id = agent_roles.cluster_id").
		Where("clusters.destroyed_at IS NULL").Order("agent_roles.cluster_id").Pluck("agent_roles.cluster_id", &ids).Error
	return ids, err
}

// LatestWizardTask returns the newest task of the given type on host in a
// wizard process of the cluster, or ErrNotFound. Operations read the
// parameters installService gave a role from its INSTALL_<ROLE> task.
func (s *Store) LatestWizardTask(ctx context.Context, clusterID int64, host, taskType string) (Task, error) {
	var t Task
	err := s.q(ctx).Model(&Task{}).
		Joins("JOIN processes ON processes.id = tasks.process_id").
		Where("processes.cluster_id = ? AND processes.kind = ? AND tasks.host = ? AND tasks.task_type = ?", clusterID, KindWizard, host, taskType).
		Order("tasks.id DESC").Take(&t).Error
	return t, translate(err)
}
