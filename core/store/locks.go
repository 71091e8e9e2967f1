package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lock is a named lock held by this manager among all the managers on the
// database: a PostgreSQL session-level advisory lock on a connection of
// its own, so it lasts exactly as long as that session (a manager that
// dies or loses the database loses it, and another can take it). On
// SQLite, which one manager uses (serve.lock), every lock is granted.
type Lock struct {
	name string
	key  int64
	conn *pgx.Conn // nil on SQLite
}

// LockKey is the advisory lock key of a named lock: the FNV-64a hash of
// "dorismanager/"+name, so other applications' keys on a shared database
// are unlikely to meet ours.
func LockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("dorismanager/" + name))
	return int64(h.Sum64())
}

// TryLock takes the lock name if no other manager holds it, without
// waiting: nil and no error when another one does.
func (s *Store) TryLock(ctx context.Context, name string) (*Lock, error) {
	l := &Lock{name: name, key: LockKey(name)}
	if !s.postgres {
		return l, nil
	}
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// The database learns that a cut-off manager's session is dead from
	// TCP keepalives, and only then releases its locks for another
	// manager: probe an idle session after 10 s, 3 times 5 s apart,
	// instead of the kernel's default of 2 hours (a DSN may say otherwise).
	// Any user may set these; on a Unix socket they are ignored.
	for _, kv := range [][2]string{{"tcp_keepalives_idle", "10"}, {"tcp_keepalives_interval", "5"}, {"tcp_keepalives_count", "3"}} {
		if _, set := cfg.RuntimeParams[kv[0]]; !set {
			cfg.RuntimeParams[kv[0]] = kv[1]
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lock %s: connect: %w", name, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&got); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if !got {
		closeConn(conn)
		return nil, nil
	}
	l.conn = conn
	return l, nil
}

// Check tells whether the lock is still held: its session answers and
// still holds the lock. After an error the lock is lost for good (another
// manager may hold it now); Release it and try again with TryLock.
func (l *Lock) Check(ctx context.Context) error {
	if l.conn == nil {
		return nil
	}
	var held bool
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objsubid = 1 AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = $1)`, l.key).Scan(&held)
	if err != nil {
		return fmt.Errorf("lock %s: its database session is gone: %w", l.name, err)
	}
	if !held {
		return fmt.Errorf("lock %s: no longer held by this session", l.name)
	}
	return nil
}

// Release gives the lock up (by ending its session).
func (l *Lock) Release() {
	if l.conn != nil {
		closeConn(l.conn)
		l.conn = nil
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
