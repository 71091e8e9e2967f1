package leader_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dorismanager/dorismanager/core/leader"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/store/storetest"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Of two managers on one PostgreSQL one leads a job; when it stops
// (Close) or its session ends (the database cut it off), the other takes
// the lead at its next tick, and the first knows it no longer leads.
func TestOneLeaderAtATime(t *testing.T) {
	ctx := context.Background()
	dsn, sts := storetest.Postgres(t, 2)
	a, b := leader.New(sts[0], "job", nil), leader.New(sts[1], "job", nil)
	defer a.Close()
	defer b.Close()
	for i := range 3 {
		if !a.Leading(ctx) {
			t.Fatalf("tick %d: a does not lead", i)
		}
		if b.Leading(ctx) {
			t.Fatalf("tick %d: b leads too", i)
		}
	}
	a.Close()
	if !b.Leading(ctx) || a.Leading(ctx) {
		t.Fatal("after a gave up: want b leading and a not")
	}
	// b's session is ended at the database.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, store.LockKey("job")); err != nil {
		t.Fatal(err)
	}
	if !a.Leading(ctx) {
		t.Fatal("a does not take the lead freed by b's session ending")
	}
	if b.Leading(ctx) {
		t.Fatal("b still believes it leads after its session ended and a took over")
	}
}

// With SQLite (one manager) the lone manager always leads.
func TestSQLiteAlwaysLeads(t *testing.T) {
	s, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := leader.New(s, "job", nil)
	defer e.Close()
	if !e.Leading(context.Background()) || !e.Leading(context.Background()) {
		t.Fatal("the only manager does not lead")
	}
}
