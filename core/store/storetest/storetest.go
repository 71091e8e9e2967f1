// Package storetest opens stores for tests as several managers would:
// each its own *store.Store on one database.
package storetest

import (
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// Postgres opens n stores on one new PostgreSQL database (pgtest.Start:
// skipped without PostgreSQL unless CI is set) and returns the database's
// URL with them; they close when the test ends.
func Postgres(t testing.TB, n int) (string, []*store.Store) {
	t.Helper()
	dsn := pgtest.Start(t)
	sts := make([]*store.Store, n)
	for i := range sts {
		s, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		sts[i] = s
	}
	return dsn, sts
}
