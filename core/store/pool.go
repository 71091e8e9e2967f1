package store

import (
	"database/sql"
	"time"
)

// PostgreSQL connection pool. database/sql keeps only 2 idle connections
// by default and opens any number: under load (thousands of agents'
// heartbeats, each reading its agent record) every request beyond two at
// once forked a PostgreSQL backend and closed it again, a few ms of the
// server's CPU each, and could run into max_connections. A bounded pool
// that keeps its connections queues such requests for a moment instead.
const (
	pgMaxOpen     = 32
	pgMaxIdle     = pgMaxOpen
	pgMaxIdleTime = 5 * time.Minute
)

func tunePostgresPool(db *sql.DB) {
	db.SetMaxOpenConns(pgMaxOpen)
	db.SetMaxIdleConns(pgMaxIdle)
	db.SetConnMaxIdleTime(pgMaxIdleTime)
}
