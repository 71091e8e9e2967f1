package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// Concurrent reads on PostgreSQL reuse the pool's connections: none is
// closed for want of an idle slot (each would be a backend forked again
// for the next read), and no more than the bound are opened.
func TestPostgresPoolKeepsConnections(t *testing.T) {
	s, err := store.Open(pgtest.Start(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c, err := s.CreateCluster(ctx, "pool")
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for range 48 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.ListAgents(ctx, c.ID); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	st := store.PoolStats(s)
	if st.MaxIdleClosed != 0 {
		t.Errorf("%d connections closed for want of an idle slot; want 0 (stats %+v)", st.MaxIdleClosed, st)
	}
	if st.MaxOpenConnections == 0 || st.OpenConnections > st.MaxOpenConnections {
		t.Errorf("open connections %d, bound %d: want a bound that holds (stats %+v)", st.OpenConnections, st.MaxOpenConnections, st)
	}
}
