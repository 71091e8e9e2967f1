package store

import "database/sql"

// PoolStats exposes the connection pool's counters to the tests.
func PoolStats(s *Store) sql.DBStats {
	db, err := s.db.DB()
	if err != nil {
		return sql.DBStats{}
	}
	return db.Stats()
}
