package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachBackend runs fn against a fresh SQLite and a fresh PostgreSQL store.
func eachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := store.Open("", t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := store.Open(pgtest.Start(t), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	if _, err := store.Open("mysql://x", t.TempDir(), nil); err == nil {
		t.Fatal("want an error for a mysql URL")
	}
}

func TestClusters(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c, created, err := s.EnsureCluster(ctx, 5)
		if err != nil || !created || c.ID != 5 {
			t.Fatalf("EnsureCluster: %+v %v %v", c, created, err)
		}
		if _, created, _ := s.EnsureCluster(ctx, 5); created {
			t.Fatal("second EnsureCluster created again")
		}
		// The explicit id must not make a later insert collide.
		for i := 0; i < 6; i++ {
			if _, err := s.CreateCluster(ctx, "c"+string(rune('a'+i))); err != nil {
				t.Fatalf("CreateCluster %d: %v", i, err)
			}
		}
		if _, err := s.CreateCluster(ctx, "ca"); !store.IsDuplicate(err) {
			t.Fatalf("duplicate name: got %v", err)
		}
		cs, _ := s.ListClusters(ctx)
		if len(cs) != 7 {
			t.Fatalf("want 7 clusters, got %d", len(cs))
		}
		if _, err := s.GetCluster(ctx, 999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing cluster: %v", err)
		}
	})
}

func TestOneOpenProcessPerUserAndCluster(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 2, UserID: 1}); !store.IsDuplicate(err) {
			t.Fatalf("second open process of a user: %v", err)
		}
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 2}); !store.IsDuplicate(err) {
			t.Fatalf("second open process of a cluster: %v", err)
		}
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 2, Finish: true}); err != nil {
			t.Fatalf("finished processes do not count: %v", err)
		}
		p, err := s.OpenProcessOfUser(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := s.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{"step": 1})
		if err != nil || !ok {
			t.Fatalf("first update: %v %v", ok, err)
		}
		ok, err = s.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{"step": 2})
		if err != nil || ok {
			t.Fatalf("stale version must not update: %v %v", ok, err)
		}
	})
}

func TestClaimHonoursSeqAndIsExclusive(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tasks := []store.Task{
			{ProcessID: 1, Step: 3, Seq: 0, Host: "a", Status: store.StatusSubmitted},
			{ProcessID: 1, Step: 3, Seq: 1, Host: "b", Status: store.StatusSubmitted},
			{ProcessID: 1, Step: 3, Seq: 2, Host: "c", Status: store.StatusSubmitted},
			{ProcessID: 2, Step: 0, Seq: 0, Host: "d", Status: store.StatusSubmitted},
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimTasks(ctx, "r1", time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		if hosts := hostsOf(got); hosts != "ad" {
			t.Fatalf("first claim: want a and d, got %q", hosts)
		}
		if got, _ := s.ClaimTasks(ctx, "r2", time.Minute, 10); len(got) != 0 {
			t.Fatalf("nothing runnable yet, got %q", hostsOf(got))
		}
		a := got[0]
		if ok, err := s.EndTask(ctx, a, store.StatusFailure, "boom", "", ""); !ok || err != nil {
			t.Fatalf("EndTask: %v %v", ok, err)
		}
		if got, _ := s.ClaimTasks(ctx, "r2", time.Minute, 10); len(got) != 0 {
			t.Fatalf("a failed seq 0 must block seq 1, got %q", hostsOf(got))
		}
		if _, err := s.UpdateTaskIf(ctx, a.ID, []string{store.StatusFailure}, map[string]any{"skip": true}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ClaimTasks(ctx, "r2", time.Minute, 10)
		if hostsOf(got) != "b" || got[0].ExecutorID != "r2" || got[0].Status != store.StatusRunning {
			t.Fatalf("after skip: want b claimed by r2, got %+v", got)
		}
		// An end from a stale claim changes nothing.
		stale := got[0]
		stale.ExecutorID = "other"
		if ok, _ := s.EndTask(ctx, stale, store.StatusSuccess, "", "", ""); ok {
			t.Fatal("stale executor ended a task")
		}
	})
}

// Roles are separate lanes: an FE follower waits for the master FE only,
// not for a BE of the same step that is still running or has failed.
func TestClaimSeqIsPerRole(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tasks := []store.Task{
			{ProcessID: 1, Step: 3, Seq: 0, Host: "m", TaskRole: "FE", Status: store.StatusSubmitted},
			{ProcessID: 1, Step: 3, Seq: 0, Host: "b", TaskRole: "BE", Status: store.StatusSubmitted},
			{ProcessID: 1, Step: 3, Seq: 1, Host: "f", TaskRole: "FE", Status: store.StatusSubmitted},
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimTasks(ctx, "r1", time.Minute, 10)
		if err != nil || hostsOf(got) != "mb" {
			t.Fatalf("first claim: want m and b, got %q (%v)", hostsOf(got), err)
		}
		for _, task := range got {
			status := store.StatusSuccess
			if task.Host == "b" {
				status = store.StatusFailure
			}
			if ok, err := s.EndTask(ctx, task, status, "", "", ""); !ok || err != nil {
				t.Fatalf("EndTask: %v %v", ok, err)
			}
		}
		if got, _ := s.ClaimTasks(ctx, "r1", time.Minute, 10); hostsOf(got) != "f" {
			t.Fatalf("the follower must not wait for the failed BE, got %q", hostsOf(got))
		}
	})
}

// Tasks waiting behind a failed one say so, and the note goes once they run.
func TestMarkBlocked(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tasks := []store.Task{
			{ProcessID: 1, Step: 3, Seq: 0, Host: "m", TaskRole: "FE", TaskType: "START_FE", Status: store.StatusSubmitted},
			{ProcessID: 1, Step: 3, Seq: 1, Host: "f", TaskRole: "FE", TaskType: "START_FE", Status: store.StatusSubmitted},
			{ProcessID: 1, Step: 3, Seq: 0, Host: "b", TaskRole: "BE", TaskType: "START_BE", Status: store.StatusSubmitted},
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		got, _ := s.ClaimTasks(ctx, "r1", time.Minute, 10)
		var master store.Task
		for _, task := range got {
			if task.Host == "m" {
				master = task
			}
		}
		if ok, err := s.EndTask(ctx, master, store.StatusFailure, "port in use", "", ""); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := s.MarkBlocked(ctx, master); err != nil {
			t.Fatal(err)
		}
		all, _ := s.TasksOfStep(ctx, 1, 3)
		for _, task := range all {
			blocked := strings.Contains(task.Response, fmt.Sprintf("waiting for task %d", master.ID))
			if blocked != (task.Host == "f") {
				t.Errorf("task on %s: response %q", task.Host, task.Response)
			}
		}
		if _, err := s.UpdateTaskIf(ctx, master.ID, []string{store.StatusFailure}, map[string]any{"skip": true}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ClaimTasks(ctx, "r1", time.Minute, 10)
		if hostsOf(got) != "f" || got[0].Response != "" {
			t.Fatalf("claimed %+v: the blocked note must go once it runs", got)
		}
	})
}

func TestConcurrentClaimsNeverDuplicate(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var tasks []store.Task
		for i := 0; i < 40; i++ {
			tasks = append(tasks, store.Task{ProcessID: int64(i), Status: store.StatusSubmitted})
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		for r := 0; r < 4; r++ {
			wg.Add(1)
			go func(r int) {
				defer wg.Done()
				for {
					got, err := s.ClaimTasks(ctx, string(rune('a'+r)), time.Minute, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, g := range got {
						seen[g.ID]++
					}
					mu.Unlock()
				}
			}(r)
		}
		wg.Wait()
		if len(seen) != 40 {
			t.Fatalf("want 40 tasks claimed, got %d", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("task %d claimed %d times", id, n)
			}
		}
	})
}

func TestTaskLogKeepsLastMiB(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640000 bytes
		if err := s.AppendTaskLog(ctx, 7, chunk); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendTaskLog(ctx, 7, chunk); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendTaskLog(ctx, 7, []byte("END")); err != nil {
			t.Fatal(err)
		}
		got, err := s.TaskLog(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != store.MaxTaskLog || !bytes.HasSuffix(got, []byte("cdefEND")) {
			t.Fatalf("log: len %d, suffix %q", len(got), got[len(got)-8:])
		}
		if got, _ := s.TaskLog(ctx, 8); len(got) != 0 {
			t.Fatal("unwritten log must be empty")
		}
	})
}

func TestTokensAndRoles(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.EnsureUser(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		if u2, _ := s.EnsureUser(ctx, "admin"); u2.ID != u.ID {
			t.Fatal("EnsureUser created a second admin")
		}
		if err := s.CreateToken(ctx, &store.APIToken{UserID: u.ID, Hash: "h1", Role: store.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		if _, got, err := s.TokenByHash(ctx, "h1"); err != nil || got.Name != "admin" {
			t.Fatalf("TokenByHash: %+v %v", got, err)
		}
		r := &store.AgentRole{ClusterID: 1, Host: "h", Role: "FE", InstallDir: "/a/fe"}
		if err := s.UpsertRole(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertRole(ctx, &store.AgentRole{ClusterID: 1, Host: "h", Role: "FE", InstallDir: "/b/fe", Master: true}); err != nil {
			t.Fatal(err)
		}
		rs, _ := s.ListRoles(ctx, 1)
		if len(rs) != 1 || rs[0].InstallDir != "/b/fe" || !rs[0].Master {
			t.Fatalf("roles: %+v", rs)
		}
	})
}

func hostsOf(ts []store.Task) string {
	s := ""
	for _, t := range ts {
		s += t.Host
	}
	return s
}
