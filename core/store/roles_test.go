package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
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
		if _, err := s.HostKeyOf(ctx, "h1", 22); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no key yet: %v", err)
		}
		k := store.HostKey{Host: "h1", Port: 22, KeyType: "ssh-ed25519", Fingerprint: "SHA256:a", PublicKey: []byte("a")}
		if err := s.AddHostKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		if err := s.AddHostKey(ctx, &store.HostKey{Host: "h1", Port: 22, Fingerprint: "SHA256:b"}); !store.IsDuplicate(err) {
			t.Fatalf("a second first key: %v", err)
		}
		if err := s.ReplaceHostKey(ctx, k.ID, "ssh-rsa", "SHA256:c", []byte("c")); err != nil {
			t.Fatal(err)
		}
		got, err := s.HostKeyOf(ctx, "h1", 22)
		if err != nil || got.Fingerprint != "SHA256:c" || got.KeyType != "ssh-rsa" || string(got.PublicKey) != "c" {
			t.Fatalf("replaced key: %+v %v", got, err)
		}
		if _, err := s.HostKeyOf(ctx, "h1", 2222); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other port: %v", err)
		}
	})
}
