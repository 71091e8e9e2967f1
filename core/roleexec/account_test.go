package roleexec

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/mysqlsim"
)

// accountsMap is the admin account of each cluster, changeable by tests.
type accountsMap struct {
	mu sync.Mutex
	m  map[int64]Account
}

func (a *accountsMap) Account(_ context.Context, clusterID int64) (Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if acct, ok := a.m[clusterID]; ok {
		return acct, nil
	}
	return DefaultAccount, nil
}

func (a *accountsMap) set(clusterID int64, acct Account) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[clusterID] = acct
}

// Every Query of a plugin uses the cluster's account as recorded at that
// moment: after the account changes, the connections made with the old
// one are closed and never used again.
func TestQueryUsesTheClustersCurrentAccount(t *testing.T) {
	fe := mysqlsim.Start(t, map[string]string{"root": "", "admin": "adm"})
	accts := &accountsMap{m: map[int64]Account{}}
	e := New(Config{Accounts: accts})
	defer e.Close()
	h := e.HostWith(nil, 1, "t1", &strings.Builder{}, sdk.Cluster{ID: 7, Nodes: []sdk.Node{{Host: "127.0.0.1", Role: "FE"}}})
	ctx := context.Background()
	query := func() error { _, err := h.Query(ctx, fe.Addr(), "SHOW FRONTENDS"); return err }

	if err := query(); err != nil {
		t.Fatalf("a fresh cluster's root, empty password: %v", err)
	}
	old := e.sql.pools[poolKey{fe.Addr(), "root"}]
	// The password is set on the FE; until it is recorded the pooled
	// session still works (as in Doris), after it the new password is used.
	fe.SetPassword("root", "s3cret")
	accts.set(7, Account{User: "root", Password: "s3cret"})
	if err := query(); err != nil {
		t.Fatalf("after the account changed: %v", err)
	}
	if err := old.db.PingContext(ctx); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the pool of the old password is still open: %v", err)
	}
	if got := fe.Logins(); strings.Join(got, " ") != "root:ok root:ok" {
		t.Fatalf("logins %v: want a second login with the new password", got)
	}
	// Another user: the root pool goes too.
	accts.set(7, Account{User: "admin", Password: "adm"})
	if err := query(); err != nil {
		t.Fatal(err)
	}
	if len(e.sql.pools) != 1 || e.sql.pools[poolKey{fe.Addr(), "admin"}] == nil {
		t.Fatalf("pools %v: want admin's only", e.sql.pools)
	}
	// A wrong recorded password fails the call with the FE's refusal,
	// without saying the password.
	accts.set(7, Account{User: "admin", Password: "not-it"})
	err := query()
	if err == nil || !strings.Contains(err.Error(), "Access denied for user 'admin'") || strings.Contains(err.Error(), "not-it") {
		t.Fatalf("wrong password: %v", err)
	}
	if qs := fe.Queries(); len(qs) != 3 || !strings.HasPrefix(qs[1], "root: ") || !strings.HasPrefix(qs[2], "admin: ") {
		t.Fatalf("queries %v", qs)
	}
}

// A pool retired while a query runs on it is closed when that query ends,
// not under it.
func TestRetiredPoolClosesAfterItsQueries(t *testing.T) {
	fe := mysqlsim.Start(t, map[string]string{"root": "", "u": "p"})
	p := newSQLPool(nil)
	defer p.close()
	busy, err := p.acquire(fe.Addr(), DefaultAccount)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	next, err := p.acquire(fe.Addr(), Account{User: "root", Password: "new"})
	if err != nil {
		t.Fatal(err)
	}
	p.release(next)
	if err := busy.db.PingContext(ctx); err != nil {
		t.Fatalf("the retired pool was closed under its query: %v", err)
	}
	p.release(busy)
	if err := busy.db.PingContext(ctx); err == nil {
		t.Fatal("the retired pool is still open after its last query")
	}
	again, err := p.acquire(fe.Addr(), Account{User: "root", Password: "new"})
	if err != nil || again != next {
		t.Fatalf("the current pool was not reused: %v", err)
	}
	p.release(again)
}

// Login checks credentials on a connection of its own.
func TestLogin(t *testing.T) {
	fe := mysqlsim.Start(t, map[string]string{"root": "pw"})
	e := New(Config{})
	defer e.Close()
	ctx := context.Background()
	if err := e.Login(ctx, fe.Addr(), Account{User: "root", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	err := e.Login(ctx, fe.Addr(), Account{User: "root", Password: "bad"})
	if err == nil || !strings.Contains(err.Error(), "1045") || strings.Contains(err.Error(), "bad") {
		t.Fatalf("bad password: %v", err)
	}
	if len(e.sql.pools) != 0 {
		t.Fatal("Login left a pool behind")
	}
}
