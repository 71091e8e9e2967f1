package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// NodeObservation is a node's last answer to its role plugin's Status, as
// the manager that asked recorded it. Every manager's status view reads
// them, so only one manager on the database needs to ask the nodes
// (core/clusterstatus).
type NodeObservation struct {
	ClusterID int64  `gorm:"primaryKey;autoIncrement:false"`
	Host      string `gorm:"primaryKey;size:255"`
	Role      string `gorm:"primaryKey;size:64"`
	// Facts is the JSON object of the answer's facts; empty when the
	// call failed, and Error says why.
	Facts     string `gorm:"type:text"`
	Error     string `gorm:"type:text"`
	AskedAt   time.Time
	CheckedAt time.Time
}

// SaveObservations records one refresh of a cluster: obs are its nodes'
// answers, and the cluster's other observations (nodes that left it) are
// deleted. An observation stored by another manager that is newer than
// the one given stays.
func (s *Store) SaveObservations(ctx context.Context, clusterID int64, obs []NodeObservation) error {
	err := s.q(ctx).Transaction(func(tx *gorm.DB) error {
		keep := make([][]any, 0, len(obs))
		for i := range obs {
			obs[i].ClusterID = clusterID
			obs[i].AskedAt, obs[i].CheckedAt = obs[i].AskedAt.UTC(), obs[i].CheckedAt.UTC()
			keep = append(keep, []any{obs[i].Host, obs[i].Role})
		}
		del := tx.Where("cluster_id = ?", clusterID)
		if len(keep) > 0 {
			del = del.Where("(host, role) NOT IN ?", keep)
		}
		if err := del.Delete(&NodeObservation{}).Error; err != nil {
			return err
		}
		if len(obs) == 0 {
			return nil
		}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "cluster_id"}, {Name: "host"}, {Name: "role"}},
			DoUpdates: clause.AssignmentColumns([]string{"facts", "error", "asked_at", "checked_at"}),
			Where:     clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "node_observations.checked_at < excluded.checked_at"}}},
		}).Create(&obs).Error
	})
	if err != nil {
		return fmt.Errorf("record the status of cluster %d's nodes: %w", clusterID, err)
	}
	return nil
}

// Observations returns every node's last observation.
func (s *Store) Observations(ctx context.Context) ([]NodeObservation, error) {
	var obs []NodeObservation
	if err := s.q(ctx).Find(&obs).Error; err != nil {
		return nil, fmt.Errorf("read the status of the nodes: %w", err)
	}
	return obs, nil
}

// KeepObservations deletes the observations of every cluster but those
// given (clusters destroyed, or left without roles).
func (s *Store) KeepObservations(ctx context.Context, clusterIDs []int64) error {
	q := s.q(ctx)
	if len(clusterIDs) > 0 {
		q = q.Where("cluster_id NOT IN ?", clusterIDs)
	} else {
		q = q.Where("1 = 1")
	}
	if err := q.Delete(&NodeObservation{}).Error; err != nil {
		return fmt.Errorf("forget the status of nodes of clusters gone: %w", err)
	}
	return nil
}
