package store

import (
	"context"
	"database/sql"
)

// PoolStats exposes the connection pool's counters to the tests.
func PoolStats(s *Store) sql.DBStats {
	db, err := s.db.DB()
	if err != nil {
		return sql.DBStats{}
	}
	return db.Stats()
}

// LockSetting is a setting of a lock's database session.
func LockSetting(l *Lock, name string) (string, error) {
	var v string
	err := l.conn.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}
