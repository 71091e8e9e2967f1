package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm/clause"
)

// Roles of API tokens, as stored in APIToken.Role (core/auth gives them
// their meaning).
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// ---- users ----

// UserByName returns the user named name or ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	var u User
	err := s.q(ctx).Where("name = ?", name).Take(&u).Error
	return u, translate(err)
}

// ---- tokens ----

// CreateToken stores t (its ID and CreatedAt are filled in).
func (s *Store) CreateToken(ctx context.Context, t *APIToken) error {
	t.ID = 0
	if err := s.q(ctx).Create(t).Error; err != nil {
		return fmt.Errorf("store API token of user %d: %w", t.UserID, translate(err))
	}
	return nil
}

// TokenByHash returns the token with this hash and its user, or
// ErrNotFound. Expired and revoked tokens are returned too: the caller
// says why they are refused.
func (s *Store) TokenByHash(ctx context.Context, hash string) (APIToken, User, error) {
	var t APIToken
	if err := s.q(ctx).Where("hash = ?", hash).Take(&t).Error; err != nil {
		return APIToken{}, User{}, translate(err)
	}
	u, err := s.GetUser(ctx, t.UserID)
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("owner of API token %d: %w", t.ID, err)
	}
	return t, u, nil
}

// GetToken returns one token or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id int64) (APIToken, error) {
	var t APIToken
	err := s.q(ctx).Where("id = ?", id).Take(&t).Error
	return t, translate(err)
}

// TokenRow is a token as listings show it: never its hash.
type TokenRow struct {
	ID         int64
	UserID     int64
	UserName   string
	Role       string
	Grants     []int64 `gorm:"-"` // the user's clusters
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// ListTokens returns every token by id, with its user's name and grants;
// userName, when not empty, keeps only that user's.
func (s *Store) ListTokens(ctx context.Context, userName string) ([]TokenRow, error) {
	q := s.q(ctx).Model(&APIToken{}).
		Select("api_tokens.id, api_tokens.user_id, users.name AS user_name, api_tokens.role, api_tokens.created_at, " +
			"api_tokens.expires_at, api_tokens.last_used_at, api_tokens.revoked_at").
		Joins("JOIN users ON users.id = api_tokens.user_id").Order("api_tokens.id")
	if userName != "" {
		q = q.Where("users.name = ?", userName)
	}
	var rows []TokenRow
	if err := q.Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	grants, err := s.AllGrants(ctx)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].Grants = grants[rows[i].UserID]
	}
	return rows, nil
}

// RevokeToken marks token id revoked at now. It reports false when the
// token was revoked already; a missing token is ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id int64, now time.Time) (bool, error) {
	res := s.q(ctx).Model(&APIToken{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("revoke API token %d: %w", id, res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	if _, err := s.GetToken(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

// TouchToken records that token id was used at now, unless a use after
// now-every is recorded already (so a busy client costs one write a
// minute, not one a request).
func (s *Store) TouchToken(ctx context.Context, id int64, now time.Time, every time.Duration) error {
	now = now.UTC()
	err := s.q(ctx).Model(&APIToken{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, now.Add(-every)).
		Update("last_used_at", now).Error
	if err != nil {
		return fmt.Errorf("record use of API token %d: %w", id, err)
	}
	return nil
}

// ---- grants ----

// AddGrant grants cluster clusterID to user userID; granting twice is no
// error. The cluster must exist (ErrNotFound otherwise).
func (s *Store) AddGrant(ctx context.Context, userID, clusterID int64) error {
	if _, err := s.GetCluster(ctx, clusterID); err != nil {
		return fmt.Errorf("cluster %d: %w", clusterID, err)
	}
	g := Grant{UserID: userID, ClusterID: clusterID}
	err := s.q(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "user_id"}, {Name: "cluster_id"}}, DoNothing: true}).
		Create(&g).Error
	if err != nil {
		return fmt.Errorf("grant cluster %d to user %d: %w", clusterID, userID, translate(err))
	}
	return nil
}

// RemoveGrant takes cluster clusterID away from user userID; ErrNotFound
// when it was not granted.
func (s *Store) RemoveGrant(ctx context.Context, userID, clusterID int64) error {
	res := s.q(ctx).Where("user_id = ? AND cluster_id = ?", userID, clusterID).Delete(&Grant{})
	if res.Error != nil {
		return fmt.Errorf("revoke grant of cluster %d to user %d: %w", clusterID, userID, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// GrantsOf returns the clusters granted to a user, by id.
func (s *Store) GrantsOf(ctx context.Context, userID int64) ([]int64, error) {
	var ids []int64
	if err := s.q(ctx).Model(&Grant{}).Where("user_id = ?", userID).Order("cluster_id").Pluck("cluster_id", &ids).Error; err != nil {
		return nil, fmt.Errorf("read grants of user %d: %w", userID, err)
	}
	return ids, nil
}

// AllGrants returns every user's granted clusters, by id.
func (s *Store) AllGrants(ctx context.Context) (map[int64][]int64, error) {
	var gs []Grant
	if err := s.q(ctx).Order("user_id, cluster_id").Find(&gs).Error; err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	out := map[int64][]int64{}
	for _, g := range gs {
		out[g.UserID] = append(out[g.UserID], g.ClusterID)
	}
	return out, nil
}

// ListClustersIn returns the clusters among ids, by id.
func (s *Store) ListClustersIn(ctx context.Context, ids []int64) ([]Cluster, error) {
	cs := []Cluster{}
	if len(ids) == 0 {
		return cs, nil
	}
	sorted := append([]int64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	err := s.q(ctx).Where("id IN ?", sorted).Order("id").Find(&cs).Error
	return cs, err
}

// CreateClusterFor adds a cluster and grants it to user userID, in one
// transaction; a taken name is ErrDuplicate.
func (s *Store) CreateClusterFor(ctx context.Context, name string, userID int64) (Cluster, error) {
	var c Cluster
	err := s.Tx(ctx, func(tx *Store) error {
		var err error
		if c, err = tx.CreateCluster(ctx, name); err != nil {
			return err
		}
		return tx.AddGrant(ctx, userID, c.ID)
	})
	return c, err
}

// ---- user lookups for the CLI and the API ----

// RequireUser returns the user named name, or an error saying it has no
// token yet.
func (s *Store) RequireUser(ctx context.Context, name string) (User, error) {
	u, err := s.UserByName(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("no user %q: users are made by creating their first token: %w", name, ErrNotFound)
	}
	return u, err
}
