package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func roleOf(t *testing.T, s *store.Store, k store.RoleKey) store.AgentRole {
	t.Helper()
	rs, err := s.RolesOfHost(context.Background(), k.ClusterID, k.Host)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Role == k.Role {
			return r
		}
	}
	t.Fatalf("%s is not recorded", k)
	return store.AgentRole{}
}

func factsOf(t *testing.T, r store.AgentRole) map[string]string {
	t.Helper()
	m := map[string]string{}
	if r.Facts != "" {
		if err := json.Unmarshal([]byte(r.Facts), &m); err != nil {
			t.Fatalf("facts %q: %v", r.Facts, err)
		}
	}
	return m
}

func TestRoleFactsAndRegistration(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, r := range []store.AgentRole{
			{ClusterID: 1, Host: "h1", Role: "FE", InstallDir: "/opt/doris/fe"},
			{ClusterID: 1, Host: "h1", Role: "BE", InstallDir: "/opt/doris/be"},
			{ClusterID: 1, Host: "h2", Role: "BE", InstallDir: "/opt/doris/be"},
			{ClusterID: 2, Host: "h1", Role: "BE", InstallDir: "/opt/doris/be"},
		} {
			if err := s.UpsertRole(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		rs, err := s.RolesOfHost(ctx, 1, "h1")
		if err != nil || len(rs) != 2 || rs[0].Role != "BE" || rs[1].Role != "FE" {
			t.Fatalf("RolesOfHost(1, h1): %+v %v", rs, err)
		}

		k := store.RoleKey{ClusterID: 1, Host: "h1", Role: "BE"}
		if err := s.RecordFacts(ctx, k, map[string]string{"port.be_port": "9060", "java": "17"}, map[string]int{"be_port": 9060}); err != nil {
			t.Fatal(err)
		}
		// A later report merges; an empty value removes the key; nil ports keep them.
		if err := s.RecordFacts(ctx, k, map[string]string{"running": "true", "java": ""}, nil); err != nil {
			t.Fatal(err)
		}
		r := roleOf(t, s, k)
		got := factsOf(t, r)
		if len(got) != 2 || got["port.be_port"] != "9060" || got["running"] != "true" {
			t.Fatalf("facts %v", got)
		}
		if r.Ports != `{"be_port":9060}` {
			t.Fatalf("ports %q", r.Ports)
		}
		if err := s.RecordFacts(ctx, k, nil, map[string]int{}); err != nil {
			t.Fatal(err)
		}
		if r := roleOf(t, s, k); r.Ports != `{}` {
			t.Fatalf("ports not replaced: %q", r.Ports)
		}
		// Only that node changed.
		if other := roleOf(t, s, store.RoleKey{ClusterID: 2, Host: "h1", Role: "BE"}); other.Facts != "" || other.Ports != "" {
			t.Fatalf("another cluster's BE changed: %+v", other)
		}
		missing := store.RoleKey{ClusterID: 1, Host: "h9", Role: "BE"}
		if err := s.RecordFacts(ctx, missing, map[string]string{"a": "b"}, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("facts of an unknown node: %v", err)
		}

		if err := s.SetRegistered(ctx, k, true); err != nil {
			t.Fatal(err)
		}
		if !roleOf(t, s, k).Register || roleOf(t, s, store.RoleKey{ClusterID: 1, Host: "h2", Role: "BE"}).Register {
			t.Fatal("SetRegistered changed the wrong rows")
		}
		if err := s.SetRegistered(ctx, missing, true); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("registration of an unknown node: %v", err)
		}
		// Upsert keeps what the plugin reported.
		if err := s.UpsertRole(ctx, &store.AgentRole{ClusterID: 1, Host: "h1", Role: "BE", InstallDir: "/data/doris/be"}); err != nil {
			t.Fatal(err)
		}
		if r := roleOf(t, s, k); r.InstallDir != "/data/doris/be" || factsOf(t, r)["running"] != "true" || !r.Register {
			t.Fatalf("upsert lost facts or registration: %+v", r)
		}
	})
}

func TestRecordFactsConcurrently(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		k := store.RoleKey{ClusterID: 1, Host: "h1", Role: "FE"}
		if err := s.UpsertRole(ctx, &store.AgentRole{ClusterID: 1, Host: "h1", Role: "FE"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.RecordFacts(ctx, k, map[string]string{fmt.Sprintf("k%d", i): "v"}, nil)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := factsOf(t, roleOf(t, s, k)); len(got) != 8 {
			t.Fatalf("a concurrent report was lost: %v", got)
		}
	})
}

func TestUnmarkMasters(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, r := range []store.AgentRole{
			{ClusterID: 1, Host: "h1", Role: "FE", Master: true},
			{ClusterID: 1, Host: "h2", Role: "FE", Master: true},
			{ClusterID: 2, Host: "h3", Role: "FE", Master: true},
		} {
			if err := s.UpsertRole(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.UnmarkMasters(ctx, 1, "FE", "h2"); err != nil {
			t.Fatal(err)
		}
		if roleOf(t, s, store.RoleKey{ClusterID: 1, Host: "h1", Role: "FE"}).Master ||
			!roleOf(t, s, store.RoleKey{ClusterID: 1, Host: "h2", Role: "FE"}).Master ||
			!roleOf(t, s, store.RoleKey{ClusterID: 2, Host: "h3", Role: "FE"}).Master {
			t.Fatal("UnmarkMasters: wrong rows changed")
		}
	})
}

func TestSkippedTasks(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tasks := []store.Task{
			{ProcessID: 1, Host: "a", Skip: true, Status: store.StatusFailure},
			{ProcessID: 1, Host: "b", Status: store.StatusFailure},
			{ProcessID: 2, Host: "c", Skip: true, Status: store.StatusFailure},
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		got, err := s.SkippedTasks(ctx, 1)
		if err != nil || len(got) != 1 || got[0].Host != "a" {
			t.Fatalf("SkippedTasks(1): %+v %v", got, err)
		}
	})
}

func TestHostKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.HostKeyOf(ctx, 1, "h1", 22); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no key yet: %v", err)
		}
		k1 := store.HostKey{ClusterID: 1, Host: "h1", Port: 22, KeyType: "ssh-ed25519", Fingerprint: "SHA256:a", PublicKey: []byte("a")}
		if err := s.AddHostKey(ctx, &k1); err != nil {
			t.Fatal(err)
		}
		// Another cluster keeps its own key for the same address.
		k2 := store.HostKey{ClusterID: 2, Host: "h1", Port: 22, KeyType: "ssh-rsa", Fingerprint: "SHA256:b", PublicKey: []byte("b")}
		if err := s.AddHostKey(ctx, &k2); err != nil {
			t.Fatalf("cluster 2's key for the same address: %v", err)
		}
		if err := s.AddHostKey(ctx, &store.HostKey{ClusterID: 1, Host: "h1", Port: 22, Fingerprint: "SHA256:c"}); !store.IsDuplicate(err) {
			t.Fatalf("a second first key in cluster 1: %v", err)
		}
		if err := s.AddHostKey(ctx, &store.HostKey{Host: "h9", Port: 22, Fingerprint: "SHA256:c"}); err == nil {
			t.Fatal("a key of no cluster was recorded")
		}
		for c, want := range map[int64]string{1: "SHA256:a", 2: "SHA256:b"} {
			if got, err := s.HostKeyOf(ctx, c, "h1", 22); err != nil || got.Fingerprint != want {
				t.Fatalf("cluster %d: %+v %v, want %s", c, got, err, want)
			}
		}
		if _, err := s.HostKeyOf(ctx, 1, "h1", 2222); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other port: %v", err)
		}

		// A change needs the recorded fingerprint.
		if ok, err := s.ChangeHostKey(ctx, 1, "h1", 22, "SHA256:b", "SHA256:new"); ok || err != nil {
			t.Fatalf("change with another cluster's fingerprint: %v %v", ok, err)
		}
		if _, err := s.ChangeHostKey(ctx, 1, "h9", 22, "SHA256:a", "SHA256:new"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("change of an unknown host: %v", err)
		}
		if ok, err := s.ChangeHostKey(ctx, 1, "h1", 22, "SHA256:a", "SHA256:new"); !ok || err != nil {
			t.Fatalf("change with the recorded fingerprint: %v %v", ok, err)
		}
		got, _ := s.HostKeyOf(ctx, 1, "h1", 22)
		if got.Fingerprint != "SHA256:new" || got.KeyType != "" || len(got.PublicKey) != 0 {
			t.Fatalf("changed key: %+v", got)
		}
		if got2, _ := s.HostKeyOf(ctx, 2, "h1", 22); got2.Fingerprint != "SHA256:b" {
			t.Fatalf("cluster 2's key changed with cluster 1's: %+v", got2)
		}
		// The key is recorded once seen, only for the fingerprint now recorded.
		if err := s.SetHostKeyMaterial(ctx, got.ID, "SHA256:a", "ssh-rsa", []byte("old")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetHostKeyMaterial(ctx, got.ID, "SHA256:new", "ssh-ed25519", []byte("new")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.HostKeyOf(ctx, 1, "h1", 22); got.KeyType != "ssh-ed25519" || string(got.PublicKey) != "new" {
			t.Fatalf("key material: %+v", got)
		}
		ks, err := s.HostKeysOf(ctx, 2)
		if err != nil || len(ks) != 1 || ks[0].Fingerprint != "SHA256:b" {
			t.Fatalf("HostKeysOf(2): %+v %v", ks, err)
		}
	})
}

// Keys recorded when one table served every cluster become the keys of
// the clusters with an agent on their host; the rest are dropped.
func TestHostKeysMigratedPerCluster(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			dsn, dir := "", t.TempDir()
			if backend == "postgres" {
				dsn, dir = pgtest.Start(t), ""
			}
			s, err := store.Open(dsn, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The old shape: cluster 0 and the unique index on host and port.
			db := s.DB()
			for _, q := range []string{
				`DROP INDEX idx_hostkey_cluster_host_port`,
				`CREATE UNIQUE INDEX idx_hostkey_host_port ON host_keys (host, port)`,
			} {
				if err := db.Exec(q).Error; err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range []store.HostKey{
				{Host: "h1", Port: 22, KeyType: "ssh-ed25519", Fingerprint: "SHA256:h1", PublicKey: []byte("k1")},
				{Host: "h2", Port: 2222, Fingerprint: "SHA256:h2", PublicKey: []byte("k2")},
				{Host: "gone", Port: 22, Fingerprint: "SHA256:gone"},
			} {
				if err := db.Create(&k).Error; err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range []store.Agent{{ClusterID: 1, Host: "h1"}, {ClusterID: 2, Host: "h1"}, {ClusterID: 2, Host: "h2"}} {
				if err := db.Create(&a).Error; err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			if s, err = store.Open(dsn, dir, nil); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			for _, want := range []struct {
				cluster int64
				host    string
				port    int
				fp      string
			}{{1, "h1", 22, "SHA256:h1"}, {2, "h1", 22, "SHA256:h1"}, {2, "h2", 2222, "SHA256:h2"}} {
				k, err := s.HostKeyOf(ctx, want.cluster, want.host, want.port)
				if err != nil || k.Fingerprint != want.fp || k.KeyType == "" && want.host == "h1" {
					t.Errorf("cluster %d %s:%d: %+v %v, want %s", want.cluster, want.host, want.port, k, err, want.fp)
				}
			}
			var n int64
			s.DB().Model(&store.HostKey{}).Count(&n)
			if n != 3 {
				t.Errorf("%d host keys after the migration, want 3 (the unused one dropped)", n)
			}
			// The old index is gone: another cluster may record the same address.
			if err := s.AddHostKey(ctx, &store.HostKey{ClusterID: 3, Host: "h2", Port: 2222, Fingerprint: "SHA256:x"}); err != nil {
				t.Errorf("cluster 3's key for h2 after the migration: %v", err)
			}
			// Opening again changes nothing.
			s.Close()
			if s, err = store.Open(dsn, dir, nil); err != nil {
				t.Fatal(err)
			}
			s.DB().Model(&store.HostKey{}).Count(&n)
			if n != 4 {
				t.Errorf("%d host keys after opening again, want 4", n)
			}
		})
	}
}

// An answer of the cluster is recorded unless the record changed after the
// question was asked; it keeps the other facts.
func TestRecordMembership(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		k := store.RoleKey{ClusterID: 1, Host: "h1", Role: "BE"}
		if err := s.UpsertRole(ctx, &store.AgentRole{ClusterID: k.ClusterID, Host: k.Host, Role: k.Role}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordFacts(ctx, k, map[string]string{"java": "17"}, nil); err != nil {
			t.Fatal(err)
		}
		asked := time.Now().UTC()
		wrote, err := s.RecordMembership(ctx, k, true, asked)
		if r := roleOf(t, s, k); err != nil || !wrote || !r.Register || factsOf(t, r)["registered"] != "true" || factsOf(t, r)["java"] != "17" {
			t.Fatalf("record: %v %v %+v", wrote, err, r)
		}
		// A task recorded something after an older question: kept.
		if wrote, err := s.RecordMembership(ctx, k, false, asked); err != nil || wrote {
			t.Fatalf("an answer older than the record was written: %v %v", wrote, err)
		}
		if r := roleOf(t, s, k); !r.Register {
			t.Fatalf("record after an older answer: %+v", r)
		}
		if _, err := s.RecordMembership(ctx, store.RoleKey{ClusterID: 1, Host: "h9", Role: "BE"}, true, time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown role: %v", err)
		}
	})
}

// The newest task of a step, per host and role, of the wizard processes of
// a cluster: skipped or not.
func TestSkippedLatest(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(cluster int64, kind string) int64 {
			p := store.Process{ClusterID: cluster, UserID: cluster*10 + int64(len(kind)), Kind: kind, Finish: true, Status: "SUCCESS"}
			if err := s.CreateProcess(ctx, &p); err != nil {
				t.Fatal(err)
			}
			return p.ID
		}
		p1, p2, op, other := mk(1, ""), mk(1, ""), mk(1, store.KindOperation), mk(2, "")
		tasks := []store.Task{
			{ProcessID: p1, Step: 1, Host: "h1", TaskRole: "BE", Skip: true, Status: store.StatusFailure},
			{ProcessID: p1, Step: 1, Host: "h2", TaskRole: "BE", Skip: true, Status: store.StatusFailure},
			{ProcessID: p1, Step: 0, Host: "h3", Skip: true, Status: store.StatusFailure},
			{ProcessID: p2, Step: 1, Host: "h1", TaskRole: "BE", Status: store.StatusSuccess},
			{ProcessID: op, Step: 1, Host: "h2", TaskRole: "BE", Status: store.StatusSuccess},
			{ProcessID: other, Step: 1, Host: "h4", TaskRole: "BE", Skip: true, Status: store.StatusFailure},
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		got, err := s.SkippedLatest(ctx, 1, 1)
		want := map[store.RoleKey]bool{{ClusterID: 1, Host: "h1", Role: "BE"}: false, {ClusterID: 1, Host: "h2", Role: "BE"}: true}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("SkippedLatest: %v %v, want %v", got, err, want)
		}
	})
}
