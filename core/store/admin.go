package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ---- cluster admin accounts ----

// GetAdminAccount returns the admin account recorded for a cluster, or
// ErrNotFound.
func (s *Store) GetAdminAccount(ctx context.Context, clusterID int64) (AdminAccount, error) {
	var a AdminAccount
	err := s.q(ctx).Where("cluster_id = ?", clusterID).Take(&a).Error
	return a, translate(err)
}

// SetAdminPending records a sealed password chosen for the cluster's admin
// account before it is set on the cluster. A cluster without a row gets
// one with no user (the default account's) and an empty current password;
// an existing row keeps its user and current password.
func (s *Store) SetAdminPending(ctx context.Context, clusterID int64, sealed []byte, generated bool) error {
	a := AdminAccount{ClusterID: clusterID, Pending: sealed, PendingGenerated: generated, UpdatedAt: time.Now().UTC()}
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "cluster_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"pending", "pending_generated", "updated_at"}),
	}).Create(&a).Error
	if err != nil {
		return fmt.Errorf("record the pending admin password of cluster %d: %w", clusterID, err)
	}
	return nil
}

// PromoteAdminPending makes the pending password the current one (it was
// set on the cluster and a login with it worked); a generated one is not
// revealed yet. ErrNotFound when nothing is pending.
func (s *Store) PromoteAdminPending(ctx context.Context, clusterID int64) error {
	res := s.q(ctx).Model(&AdminAccount{}).Where("cluster_id = ? AND pending IS NOT NULL", clusterID).Updates(map[string]any{
		"password": gorm.Expr("pending"), "generated": gorm.Expr("pending_generated"), "revealed": false,
		"pending": nil, "pending_generated": false, "updated_at": time.Now().UTC(),
	})
	if res.Error != nil {
		return fmt.Errorf("record the admin password of cluster %d: %w", clusterID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SetAdminAccount records an operator's account for a cluster (verified
// by a login before), replacing the current one and anything pending.
func (s *Store) SetAdminAccount(ctx context.Context, clusterID int64, user string, sealed []byte) error {
	a := AdminAccount{ClusterID: clusterID, User: user, Password: sealed, UpdatedAt: time.Now().UTC()}
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "cluster_id"}},
		DoUpdates: clause.Assignments(map[string]any{"admin_user": user, "password": sealed, "generated": false, "revealed": false,
			"pending": nil, "pending_generated": false, "updated_at": a.UpdatedAt}),
	}).Create(&a).Error
	if err != nil {
		return fmt.Errorf("record the admin account of cluster %d: %w", clusterID, err)
	}
	return nil
}

// MarkAdminRevealed marks a cluster's generated password as shown; only
// the first caller gets true, so it is shown once.
func (s *Store) MarkAdminRevealed(ctx context.Context, clusterID int64) (bool, error) {
	res := s.q(ctx).Model(&AdminAccount{}).Where("cluster_id = ? AND generated AND NOT revealed AND password IS NOT NULL", clusterID).
		Updates(map[string]any{"revealed": true, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("mark the admin password of cluster %d revealed: %w", clusterID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// DeleteAdminAccount forgets a cluster's admin account (a destroyed
// cluster keeps no password).
func (s *Store) DeleteAdminAccount(ctx context.Context, clusterID int64) error {
	if err := s.q(ctx).Where("cluster_id = ?", clusterID).Delete(&AdminAccount{}).Error; err != nil {
		return fmt.Errorf("forget the admin account of cluster %d: %w", clusterID, err)
	}
	return nil
}
