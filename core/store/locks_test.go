package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/store/storetest"
)

// On PostgreSQL a named lock is held by one manager at a time, is free
// again once released, and is lost (Check says so, another takes it)
// when its holder's session ends.
func TestLocksPostgres(t *testing.T) {
	ctx := context.Background()
	dsn, sts := storetest.Postgres(t, 2)
	m1, m2 := sts[0], sts[1]
	l1, err := m1.TryLock(ctx, "job")
	if err != nil || l1 == nil {
		t.Fatalf("first TryLock = %v, %v; want the lock", l1, err)
	}
	if err := l1.Check(ctx); err != nil {
		t.Fatalf("Check of a held lock: %v", err)
	}
	// The database probes the holder's session soon, so a cut-off
	// manager's lock is freed in about 25 s, not hours.
	for name, want := range map[string]string{"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"} {
		if got, err := store.LockSetting(l1, name); err != nil || got != want {
			t.Errorf("%s of the lock's session = %q, %v; want %q", name, got, err, want)
		}
	}
	if l2, err := m2.TryLock(ctx, "job"); err != nil || l2 != nil {
		t.Fatalf("second manager's TryLock = %v, %v; want nil, nil while the first holds it", l2, err)
	}
	other, err := m2.TryLock(ctx, "another job")
	if err != nil || other == nil {
		t.Fatalf("a lock of another name = %v, %v; want it granted", other, err)
	}
	other.Release()
	l1.Release()
	l2, err := m2.TryLock(ctx, "job")
	if err != nil || l2 == nil {
		t.Fatalf("TryLock after release = %v, %v; want the lock", l2, err)
	}
	// The holder's session ends at the database (a manager cut off):
	// the holder learns it lost the lock, and the other manager takes it.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, store.LockKey("job")).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the holder's session: %d sessions, %v", n, err)
	}
	if err := l2.Check(ctx); err == nil {
		t.Fatal("Check after the session ended: nil, want an error")
	}
	l2.Release()
	l3, err := m1.TryLock(ctx, "job")
	if err != nil || l3 == nil {
		t.Fatalf("TryLock after the holder's session ended = %v, %v; want the lock", l3, err)
	}
	l3.Release()
}

// SQLite has one manager (serve.lock): every lock is granted.
func TestLocksSQLite(t *testing.T) {
	s, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		l, err := s.TryLock(context.Background(), "job")
		if err != nil || l == nil {
			t.Fatalf("TryLock = %v, %v; want the lock", l, err)
		}
		if err := l.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
