package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestOneOpenOperationPerClusterBesideTheWizard(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		wiz := store.Process{ClusterID: 1, UserID: 1, ProcessType: "INSTALL_AGENT"}
		if err := s.CreateProcess(ctx, &wiz); err != nil {
			t.Fatal(err)
		}
		// The same user and cluster may run an operation beside their wizard.
		op := store.Process{ClusterID: 1, UserID: 1, Kind: store.KindOperation, ProcessType: "STOP_CLUSTER"}
		if err := s.CreateProcess(ctx, &op); err != nil {
			t.Fatalf("operation beside an open wizard process: %v", err)
		}
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 2, Kind: store.KindOperation}); !store.IsDuplicate(err) {
			t.Fatalf("second open operation of a cluster: %v", err)
		}
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 2, UserID: 1, Kind: store.KindOperation}); err != nil {
			t.Fatalf("operation on another cluster: %v", err)
		}
		// The wizard's own rules are unchanged by operations.
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 3, UserID: 1}); !store.IsDuplicate(err) {
			t.Fatalf("second open wizard process of a user: %v", err)
		}
		cur, err := s.OpenProcessOfUser(ctx, 1)
		if err != nil || cur.ID != wiz.ID {
			t.Fatalf("OpenProcessOfUser = %d, %v; want the wizard process %d", cur.ID, err, wiz.ID)
		}
		got, err := s.OpenOperationOfCluster(ctx, 1)
		if err != nil || got.ID != op.ID {
			t.Fatalf("OpenOperationOfCluster = %d, %v; want %d", got.ID, err, op.ID)
		}
		if ok, err := s.FinishProcess(ctx, op.ID, "SUCCESS"); !ok || err != nil {
			t.Fatalf("FinishProcess: %v %v", ok, err)
		}
		if ok, _ := s.FinishProcess(ctx, op.ID, "SUCCESS"); ok {
			t.Fatal("FinishProcess changed a finished process again")
		}
		if _, err := s.OpenOperationOfCluster(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("finished operation still open: %v", err)
		}
		if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 2, Kind: store.KindOperation}); err != nil {
			t.Fatalf("a new operation after the first finished: %v", err)
		}
	})
}

func TestActiveWizardTask(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := store.Process{ClusterID: 1, UserID: 1, Step: 1}
		if err := s.CreateProcess(ctx, &p); err != nil {
			t.Fatal(err)
		}
		tasks := []store.Task{
			{ProcessID: p.ID, Step: 0, Status: store.StatusSubmitted}, // an earlier step: not active
			{ProcessID: p.ID, Step: 1, Status: store.StatusSuccess},
			{ProcessID: p.ID, Step: 1, Status: store.StatusFailure},
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActiveWizardTask(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("idle wizard: %v", err)
		}
		if _, err := s.UpdateTaskIf(ctx, tasks[2].ID, []string{store.StatusFailure}, map[string]any{"status": store.StatusRunning}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ActiveWizardTask(ctx, 1)
		if err != nil || got.ID != tasks[2].ID {
			t.Fatalf("ActiveWizardTask = %d, %v; want %d", got.ID, err, tasks[2].ID)
		}
		if _, err := s.ActiveWizardTask(ctx, 2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another cluster: %v", err)
		}
		newer := []store.Task{{ProcessID: p.ID, Step: 1, Host: "h1", TaskType: "INSTALL_BE", Input: "old"},
			{ProcessID: p.ID, Step: 1, Host: "h1", TaskType: "INSTALL_BE", Input: "new"},
			{ProcessID: p.ID, Step: 1, Host: "h2", TaskType: "INSTALL_BE", Input: "other host"}}
		if err := s.CreateTasks(ctx, newer); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LatestWizardTask(ctx, 1, "h1", "INSTALL_BE"); err != nil || got.Input != "new" {
			t.Fatalf("LatestWizardTask = %+v, %v; want the newer one", got, err)
		}
		if _, err := s.LatestWizardTask(ctx, 2, "h1", "INSTALL_BE"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LatestWizardTask of another cluster: %v", err)
		}
	})
}

func TestRolesAgentsAndDestroyedClusters(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, id := range []int64{1, 2} {
			if _, _, err := s.EnsureCluster(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range []store.AgentRole{{ClusterID: 1, Host: "h1", Role: "FE"}, {ClusterID: 1, Host: "h1", Role: "BE"}, {ClusterID: 2, Host: "h2", Role: "BE"}} {
			if err := s.UpsertRole(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DB().Create(&store.Agent{ClusterID: 1, Host: "h1"}).Error; err != nil {
			t.Fatal(err)
		}
		ids, err := s.ClustersWithRoles(ctx)
		if err != nil || len(ids) != 2 {
			t.Fatalf("ClustersWithRoles = %v, %v", ids, err)
		}
		if err := s.UpdateRolePorts(ctx, 1, "h1", "BE", `{"be_port":9060}`); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetRole(ctx, 1, "h1", "BE"); err != nil || r.Ports != `{"be_port":9060}` {
			t.Fatalf("GetRole = %+v, %v", r, err)
		}
		for i := 0; i < 2; i++ { // deleting twice is fine
			if err := s.DeleteRole(ctx, 1, "h1", "BE"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.GetRole(ctx, 1, "h1", "BE"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted role: %v", err)
		}
		if err := s.DeleteAgent(ctx, 1, "h1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AgentOf(ctx, 1, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted agent: %v", err)
		}
		if err := s.MarkClusterDestroyed(ctx, 2); err != nil {
			t.Fatal(err)
		}
		c, _ := s.GetCluster(ctx, 2)
		if c.DestroyedAt == nil {
			t.Fatal("DestroyedAt not set")
		}
		if ids, _ := s.ClustersWithRoles(ctx); len(ids) != 1 || ids[0] != 1 {
			t.Fatalf("ClustersWithRoles after destroy = %v, want [1]", ids)
		}
	})
}

// A database made by an earlier version has one-open-process indexes over
// every process; reopening replaces them, so operations can start.
func TestMigrateReplacesOldOpenProcessIndexes(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX idx_wizard_open_cluster`,
		`CREATE UNIQUE INDEX idx_process_open_cluster ON processes (cluster_id) WHERE NOT finish`,
	} {
		if err := s.DB().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 2, Kind: store.KindOperation}); !store.IsDuplicate(err) {
		t.Fatalf("the old index should refuse an operation beside the wizard: %v", err)
	}
	s.Close()
	s, err = store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 2, Kind: store.KindOperation}); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if err := s.CreateProcess(ctx, &store.Process{ClusterID: 1, UserID: 3}); !store.IsDuplicate(err) {
		t.Fatalf("second wizard process of a cluster: %v", err)
	}
}
