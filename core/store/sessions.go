package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ConsoleSession is a web console session. Only the SHA-256 of its
// cookie's id is kept (as for API tokens), with the hash of the token it
// stands for; it lives in the database so that every manager on it knows
// the session, and a restart does not end it.
type ConsoleSession struct {
	IDHash    string `gorm:"primaryKey;size:64"`
	TokenHash string `gorm:"size:64;index"`
	OpenedAt  time.Time
	SeenAt    time.Time `gorm:"index"` // the last request through it, within a minute
}

// OpenSession records a new session, and keeps at most max sessions by
// deleting the oldest beyond it.
func (s *Store) OpenSession(ctx context.Context, cs ConsoleSession, max int) error {
	cs.OpenedAt, cs.SeenAt = cs.OpenedAt.UTC(), cs.SeenAt.UTC()
	err := s.q(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&cs).Error; err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&ConsoleSession{}).Count(&n).Error; err != nil {
			return err
		}
		if n <= int64(max) {
			return nil
		}
		old := tx.Model(&ConsoleSession{}).Select("id_hash").Order("opened_at").Limit(int(n) - max)
		return tx.Where("id_hash IN (?)", old).Delete(&ConsoleSession{}).Error
	})
	if err != nil {
		return fmt.Errorf("record a console session: %w", err)
	}
	return nil
}

// SessionByHash returns the session of an id hash.
func (s *Store) SessionByHash(ctx context.Context, idHash string) (ConsoleSession, error) {
	var cs ConsoleSession
	err := s.q(ctx).Where("id_hash = ?", idHash).Take(&cs).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return cs, ErrNotFound
	}
	if err != nil {
		return cs, fmt.Errorf("read a console session: %w", err)
	}
	return cs, nil
}

// TouchSession records a request through the session at t.
func (s *Store) TouchSession(ctx context.Context, idHash string, t time.Time) error {
	if err := s.q(ctx).Model(&ConsoleSession{}).Where("id_hash = ?", idHash).Update("seen_at", t.UTC()).Error; err != nil {
		return fmt.Errorf("record a console session's use: %w", err)
	}
	return nil
}

// CloseSession deletes a session; it reports whether there was one.
func (s *Store) CloseSession(ctx context.Context, idHash string) (bool, error) {
	res := s.q(ctx).Where("id_hash = ?", idHash).Delete(&ConsoleSession{})
	if res.Error != nil {
		return false, fmt.Errorf("end a console session: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// PruneSessions deletes the sessions unused since idleBefore or opened
// before openedBefore.
func (s *Store) PruneSessions(ctx context.Context, idleBefore, openedBefore time.Time) error {
	err := s.q(ctx).Where("seen_at < ? OR opened_at < ?", idleBefore.UTC(), openedBefore.UTC()).Delete(&ConsoleSession{}).Error
	if err != nil {
		return fmt.Errorf("forget ended console sessions: %w", err)
	}
	return nil
}

// CountSessions is the number of sessions recorded.
func (s *Store) CountSessions(ctx context.Context) (int64, error) {
	var n int64
	if err := s.q(ctx).Model(&ConsoleSession{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count console sessions: %w", err)
	}
	return n, nil
}
