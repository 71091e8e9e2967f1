package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Manager is one running manager on the database: it writes its row at
// start and refreshes LastSeen while it runs (ManagerSeen); rows not
// refreshed within their expiry are gone managers. Agents are told the
// AgentURLs of the live ones, so they can fail over.
type Manager struct {
	ID string `gorm:"primaryKey;size:64"`
	// AgentURL is the https:// URL of its agent endpoint as agents reach
	// it; "" when the manager has no address to advertise (no
	// --advertise-url: it tells agents the address an SSH connection of
	// its own came from, which other managers cannot know).
	AgentURL string `gorm:"size:512"`
	// CAID is the subject key id of the CA that signs its agent
	// certificates: managers on one database must share their CA.
	CAID     string    `gorm:"column:ca_id;size:64"`
	LastSeen time.Time `gorm:"index"`
}

// dbNow is the database's clock on PostgreSQL (managers' clocks need not
// agree), the manager's on SQLite.
func (s *Store) dbNow() any {
	if s.postgres {
		return gorm.Expr("clock_timestamp()")
	}
	return time.Now().UTC()
}

// ManagerSeen records that manager m runs now (its row created or
// refreshed with m's URL and CA).
func (s *Store) ManagerSeen(ctx context.Context, m Manager) error {
	err := s.q(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.Assignments(map[string]any{"agent_url": m.AgentURL, "ca_id": m.CAID, "last_seen": s.dbNow()}),
	}).Model(&Manager{}).Create(map[string]any{"id": m.ID, "agent_url": m.AgentURL, "ca_id": m.CAID, "last_seen": s.dbNow()}).Error
	if err != nil {
		return fmt.Errorf("record manager %s as running: %w", m.ID, err)
	}
	return nil
}

// since is the condition "last_seen within d of now".
func (s *Store) since(db *gorm.DB, d time.Duration) *gorm.DB {
	if s.postgres {
		return db.Where("last_seen > clock_timestamp() - ? * interval '1 microsecond'", d.Microseconds())
	}
	return db.Where("last_seen > ?", time.Now().UTC().Add(-d))
}

// LiveManagers returns the managers seen within d, by id.
func (s *Store) LiveManagers(ctx context.Context, d time.Duration) ([]Manager, error) {
	var ms []Manager
	if err := s.since(s.q(ctx).Model(&Manager{}), d).Order("id").Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("list running managers: %w", err)
	}
	return ms, nil
}

// ForgetManagers deletes manager id's row (a manager stopping) and the
// rows not seen within d (managers that stopped without saying so).
func (s *Store) ForgetManagers(ctx context.Context, id string, d time.Duration) error {
	db := s.q(ctx).Where("id = ?", id)
	if s.postgres {
		db = db.Or("last_seen < clock_timestamp() - ? * interval '1 microsecond'", d.Microseconds())
	} else {
		db = db.Or("last_seen < ?", time.Now().UTC().Add(-d))
	}
	if err := db.Delete(&Manager{}).Error; err != nil {
		return fmt.Errorf("forget stopped managers: %w", err)
	}
	return nil
}
