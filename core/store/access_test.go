package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestTokensAndGrants(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice, err := s.EnsureUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		bob, _ := s.EnsureUser(ctx, "bob")
		c1, _ := s.CreateCluster(ctx, "one")
		c2, _ := s.CreateCluster(ctx, "two")

		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		a := store.APIToken{UserID: alice.ID, Hash: "h-alice", Role: store.RoleOperator, ExpiresAt: &exp}
		if err := s.CreateToken(ctx, &a); err != nil || a.ID == 0 {
			t.Fatalf("CreateToken: %+v %v", a, err)
		}
		b := store.APIToken{UserID: bob.ID, Hash: "h-bob", Role: store.RoleAdmin}
		if err := s.CreateToken(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(ctx, &store.APIToken{UserID: bob.ID, Hash: "h-bob"}); !store.IsDuplicate(err) {
			t.Fatalf("same hash twice: %v", err)
		}
		tok, u, err := s.TokenByHash(ctx, "h-alice")
		if err != nil || u.Name != "alice" || tok.ID != a.ID || tok.Role != store.RoleOperator || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(exp) {
			t.Fatalf("TokenByHash: %+v %+v %v", tok, u, err)
		}
		if _, _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}

		// Grants: idempotent, only for clusters that exist, removable once.
		for _, c := range []int64{c2.ID, c1.ID, c2.ID} {
			if err := s.AddGrant(ctx, alice.ID, c); err != nil {
				t.Fatalf("AddGrant %d: %v", c, err)
			}
		}
		if err := s.AddGrant(ctx, alice.ID, 99); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("grant of a missing cluster: %v", err)
		}
		if g, _ := s.GrantsOf(ctx, alice.ID); !reflect.DeepEqual(g, []int64{c1.ID, c2.ID}) {
			t.Fatalf("grants of alice: %v", g)
		}
		if err := s.RemoveGrant(ctx, alice.ID, c1.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveGrant(ctx, alice.ID, c1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second removal: %v", err)
		}
		c3, err := s.CreateClusterFor(ctx, "three", bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateClusterFor(ctx, "three", alice.ID); !store.IsDuplicate(err) {
			t.Fatalf("taken name: %v", err)
		}
		if g, _ := s.GrantsOf(ctx, alice.ID); !reflect.DeepEqual(g, []int64{c2.ID}) {
			t.Fatalf("a refused cluster creation must grant nothing: %v", g)
		}
		cs, err := s.ListClustersIn(ctx, []int64{c3.ID, c1.ID, 77})
		if err != nil || len(cs) != 2 || cs[0].ID != c1.ID || cs[1].ID != c3.ID {
			t.Fatalf("ListClustersIn: %+v %v", cs, err)
		}
		if cs, _ := s.ListClustersIn(ctx, nil); cs == nil || len(cs) != 0 {
			t.Fatalf("no ids: %#v", cs)
		}

		rows, err := s.ListTokens(ctx, "")
		if err != nil || len(rows) != 2 {
			t.Fatalf("ListTokens: %+v %v", rows, err)
		}
		if rows[0].UserName != "alice" || !reflect.DeepEqual(rows[0].Grants, []int64{c2.ID}) || rows[0].Role != store.RoleOperator ||
			rows[1].UserName != "bob" || !reflect.DeepEqual(rows[1].Grants, []int64{c3.ID}) {
			t.Fatalf("rows: %+v", rows)
		}
		if rows, _ := s.ListTokens(ctx, "bob"); len(rows) != 1 || rows[0].ID != b.ID {
			t.Fatalf("bob's tokens: %+v", rows)
		}

		// Revocation happens once; a missing token says so.
		now := time.Now()
		if ok, err := s.RevokeToken(ctx, a.ID, now); !ok || err != nil {
			t.Fatalf("revoke: %v %v", ok, err)
		}
		if ok, err := s.RevokeToken(ctx, a.ID, now); ok || err != nil {
			t.Fatalf("second revoke: %v %v", ok, err)
		}
		if _, err := s.RevokeToken(ctx, 999, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke of a missing token: %v", err)
		}
		if tok, _, _ := s.TokenByHash(ctx, "h-alice"); tok.RevokedAt == nil {
			t.Fatal("revoked token without RevokedAt")
		}

		// Last use is written at most once per interval.
		t0 := time.Now().UTC().Truncate(time.Second)
		for _, at := range []time.Time{t0, t0.Add(10 * time.Second)} {
			if err := s.TouchToken(ctx, b.ID, at, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if tok, _ := s.GetToken(ctx, b.ID); tok.LastUsedAt == nil || !tok.LastUsedAt.Equal(t0) {
			t.Fatalf("last used within the minute: %v", tok.LastUsedAt)
		}
		s.TouchToken(ctx, b.ID, t0.Add(2*time.Minute), time.Minute)
		if tok, _ := s.GetToken(ctx, b.ID); !tok.LastUsedAt.Equal(t0.Add(2 * time.Minute)) {
			t.Fatalf("last used after the minute: %v", tok.LastUsedAt)
		}
		if _, err := s.RequireUser(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("RequireUser of a missing user: %v", err)
		}
	})
}

// A database from before roles: its tokens become admin tokens when the
// role column is added, once; tokens made later keep their role.
func TestOldTokensBecomeAdmin(t *testing.T) {
	// The schema as it was, in each database's words for an id column.
	old := func(id string) []string {
		return []string{`DROP TABLE api_tokens`, `DROP TABLE users`,
			`CREATE TABLE users (id ` + id + ` PRIMARY KEY, name varchar(64), created_at timestamp)`,
			`CREATE TABLE api_tokens (id ` + id + ` PRIMARY KEY, user_id integer, hash varchar(64), created_at timestamp)`,
			`INSERT INTO users (name, created_at) VALUES ('admin', CURRENT_TIMESTAMP), ('bob', CURRENT_TIMESTAMP)`,
			`INSERT INTO api_tokens (user_id, hash, created_at) VALUES (1, 'h1', CURRENT_TIMESTAMP), (2, 'h2', CURRENT_TIMESTAMP)`,
		}
	}
	check := func(t *testing.T, dsn, dir string) {
		s, err := store.Open(dsn, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, h := range []string{"h1", "h2"} {
			tok, _, err := s.TokenByHash(ctx, h)
			if err != nil || tok.Role != store.RoleAdmin {
				t.Fatalf("old token %s: %+v %v", h, tok, err)
			}
		}
		v := store.APIToken{UserID: 2, Hash: "h3", Role: store.RoleViewer}
		if err := s.CreateToken(ctx, &v); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = store.Open(dsn, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if tok, _, _ := s.TokenByHash(ctx, "h3"); tok.Role != store.RoleViewer {
			t.Fatalf("a viewer token after a restart: %+v", tok)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		s, err := store.Open("", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		db := s.DB()
		for _, q := range old("integer") {
			if err := db.Exec(q).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		s.Close()
		check(t, "", dir)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		s, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range old("bigserial") {
			if err := s.DB().Exec(q).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		s.Close()
		check(t, dsn, "")
	})
}

func TestAuditQueries(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		entries := []store.AuditEntry{
			{At: t0, UserName: "alice", Method: "POST", Route: "/api/cluster/{clusterId}/stop", ClusterID: 1, Status: 200, CreatedProcessID: 7},
			{At: t0.Add(time.Minute), UserName: "bob", Method: "POST", Route: "/api/cluster/{clusterId}/stop", ClusterID: 2, Status: 403, Reason: "needs operator"},
			{At: t0.Add(2 * time.Minute), Method: "GET", Route: "/api/cluster", Status: 401, Reason: "missing API token"},
			{At: t0.Add(3 * time.Minute), UserName: "alice", Method: "POST", Route: "/api/agent/installService", ClusterID: 1, Status: 409},
			{At: t0.Add(4 * time.Minute), UserName: "alice", Method: "DELETE", Route: "/api/tokens/{tokenId}", Status: 200},
			{At: t0.Add(5 * time.Minute), UserName: "a_ice", Method: "POST", Route: "/api/x_y", Status: 200},
		}
		for i := range entries {
			if err := s.AddAudit(ctx, &entries[i]); err != nil || entries[i].ID == 0 {
				t.Fatalf("AddAudit: %v", err)
			}
		}
		ids := func(q store.AuditQuery) string {
			t.Helper()
			es, err := s.ListAudit(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			out := ""
			for _, e := range es {
				for i := range entries {
					if entries[i].ID == e.ID {
						out += fmt.Sprint(i)
					}
				}
			}
			return out
		}
		cases := []struct {
			name string
			q    store.AuditQuery
			want string // indexes into entries, newest first
		}{
			{"all", store.AuditQuery{}, "543210"},
			{"user", store.AuditQuery{UserName: "alice"}, "430"},
			{"cluster", store.AuditQuery{ClusterID: 1}, "30"},
			{"since", store.AuditQuery{Since: t0.Add(3 * time.Minute)}, "543"},
			{"until", store.AuditQuery{Until: t0.Add(time.Minute)}, "0"},
			{"since and until", store.AuditQuery{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, "21"},
			{"action piece", store.AuditQuery{Action: "stop"}, "10"},
			{"action with method, any case", store.AuditQuery{Action: "delete /API/tokens"}, "4"},
			{"action with an underscore matches it literally", store.AuditQuery{Action: "x_y"}, "5"},
			{"action with a percent sign matches nothing", store.AuditQuery{Action: "%"}, ""},
			{"outcome ok", store.AuditQuery{Outcome: store.OutcomeOK}, "540"},
			{"outcome refused", store.AuditQuery{Outcome: store.OutcomeRefused}, "21"},
			{"outcome error", store.AuditQuery{Outcome: store.OutcomeError}, "3"},
			{"outcome code", store.AuditQuery{Outcome: "403"}, "1"},
			{"page", store.AuditQuery{Limit: 2}, "54"},
			{"next page", store.AuditQuery{Limit: 2, Before: entries[4].ID}, "32"},
			{"user and outcome", store.AuditQuery{UserName: "bob", Outcome: store.OutcomeOK}, ""},
		}
		for _, c := range cases {
			if got := ids(c.q); got != c.want {
				t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			}
		}
		for _, bad := range []string{"fine", "42", "1000"} {
			if _, err := s.ListAudit(ctx, store.AuditQuery{Outcome: bad}); err == nil {
				t.Errorf("outcome %q accepted", bad)
			}
		}
		// Pages are bounded whatever the caller asks for.
		for i := 0; i < store.MaxAuditPage+5; i++ {
			s.AddAudit(ctx, &store.AuditEntry{Method: "POST", Route: "/api/cluster", Status: 200})
		}
		if es, _ := s.ListAudit(ctx, store.AuditQuery{Limit: 1 << 30}); len(es) != store.MaxAuditPage {
			t.Fatalf("page of %d entries", len(es))
		}
		if es, _ := s.ListAudit(ctx, store.AuditQuery{}); len(es) != 100 {
			t.Fatalf("default page of %d entries", len(es))
		}
	})
}
