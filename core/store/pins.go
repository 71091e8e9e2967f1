package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// ---- plugin pins ----

// ListPins returns every plugin pin by cluster and role.
func (s *Store) ListPins(ctx context.Context) ([]PluginPin, error) {
	var pins []PluginPin
	if err := s.q(ctx).Order("cluster_id, role").Find(&pins).Error; err != nil {
		return nil, fmt.Errorf("list plugin pins: %w", err)
	}
	return pins, nil
}

// GetPin returns the pin of a cluster's role or ErrNotFound.
func (s *Store) GetPin(ctx context.Context, clusterID int64, role string) (PluginPin, error) {
	var p PluginPin
	err := s.q(ctx).Where("cluster_id = ? AND role = ?", clusterID, role).Take(&p).Error
	return p, translate(err)
}

// PinsOfVersion returns the pins of role that resolve to version.
func (s *Store) PinsOfVersion(ctx context.Context, role, version string) ([]PluginPin, error) {
	var pins []PluginPin
	if err := s.q(ctx).Where("role = ? AND version = ?", role, version).Order("cluster_id").Find(&pins).Error; err != nil {
		return nil, fmt.Errorf("read pins of %s %s: %w", role, version, err)
	}
	return pins, nil
}

// SetPin records (or replaces) the pin of p's cluster and role.
func (s *Store) SetPin(ctx context.Context, p PluginPin) error {
	p.ID, p.UpdatedAt = 0, time.Now().UTC()
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "cluster_id"}, {Name: "role"}},
		DoUpdates: clause.AssignmentColumns([]string{"version", "version_constraint", "sha256", "updated_at"}),
	}).Create(&p).Error
	if err != nil {
		return fmt.Errorf("pin %s %s for cluster %d: %w", p.Role, p.Version, p.ClusterID, err)
	}
	return nil
}

// PinIfAbsent records p unless its cluster already has a pin for the role,
// and returns the pin that holds afterwards (p, or the one another caller
// recorded first).
func (s *Store) PinIfAbsent(ctx context.Context, p PluginPin) (PluginPin, error) {
	p.ID, p.UpdatedAt = 0, time.Now().UTC()
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "cluster_id"}, {Name: "role"}},
		DoNothing: true,
	}).Create(&p).Error
	if err != nil {
		return PluginPin{}, fmt.Errorf("pin %s %s for cluster %d: %w", p.Role, p.Version, p.ClusterID, err)
	}
	return s.GetPin(ctx, p.ClusterID, p.Role)
}

// FillPinSHA256 records the binary's hash in a pin made before pins had
// one (its SHA256 empty), if the pin is still at version; it returns the
// pin that holds afterwards.
func (s *Store) FillPinSHA256(ctx context.Context, clusterID int64, role, version, sha string) (PluginPin, error) {
	err := s.q(ctx).Model(&PluginPin{}).
		Where("cluster_id = ? AND role = ? AND version = ? AND sha256 = ''", clusterID, role, version).
		Update("sha256", sha).Error
	if err != nil {
		return PluginPin{}, fmt.Errorf("record the binary of %s %s for cluster %d: %w", role, version, clusterID, err)
	}
	return s.GetPin(ctx, clusterID, role)
}

// DeletePin removes the pin of a cluster's role; ErrNotFound when there is
// none.
func (s *Store) DeletePin(ctx context.Context, clusterID int64, role string) error {
	res := s.q(ctx).Where("cluster_id = ? AND role = ?", clusterID, role).Delete(&PluginPin{})
	if res.Error != nil {
		return fmt.Errorf("unpin %s for cluster %d: %w", role, clusterID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// RunningTasks counts the RUNNING tasks of a cluster's processes.
func (s *Store) RunningTasks(ctx context.Context, clusterID int64) (int64, error) {
	var n int64
	err := s.q(ctx).Model(&Task{}).
		Joins("JOIN processes ON processes.id = tasks.process_id").
		Where("processes.cluster_id = ? AND tasks.status = ?", clusterID, StatusRunning).
		Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count running tasks of cluster %d: %w", clusterID, err)
	}
	return n, nil
}
