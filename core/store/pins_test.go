package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func pinString(ps []store.PluginPin) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%d/%s=%s(%s)", p.ClusterID, p.Role, p.Version, p.Constraint))
	}
	return strings.Join(parts, " ")
}

func TestPins(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.GetPin(ctx, 1, "FE"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetPin of nothing: %v, want ErrNotFound", err)
		}
		// First use pins; a second first use keeps the first one.
		got, err := s.PinIfAbsent(ctx, store.PluginPin{ClusterID: 1, Role: "FE", Version: "1.0.0"})
		if err != nil || got.Version != "1.0.0" {
			t.Fatalf("PinIfAbsent: %+v %v", got, err)
		}
		got, err = s.PinIfAbsent(ctx, store.PluginPin{ClusterID: 1, Role: "FE", Version: "1.1.0"})
		if err != nil || got.Version != "1.0.0" {
			t.Fatalf("second PinIfAbsent: %+v %v, want the first pin kept", got, err)
		}
		// An operator's pin replaces it and keeps the constraint.
		if err := s.SetPin(ctx, store.PluginPin{ClusterID: 1, Role: "FE", Version: "1.2.3", Constraint: "~1.2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPin(ctx, store.PluginPin{ClusterID: 2, Role: "FE", Version: "1.2.3"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPin(ctx, store.PluginPin{ClusterID: 1, Role: "BE", Version: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListPins(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := pinString(all), "1/BE=1.0.0() 1/FE=1.2.3(~1.2) 2/FE=1.2.3()"; got != want {
			t.Errorf("ListPins = %s, want %s", got, want)
		}
		of, err := s.PinsOfVersion(ctx, "FE", "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := pinString(of), "1/FE=1.2.3(~1.2) 2/FE=1.2.3()"; got != want {
			t.Errorf("PinsOfVersion = %s, want %s", got, want)
		}
		if err := s.DeletePin(ctx, 1, "FE"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePin(ctx, 1, "FE"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second DeletePin: %v, want ErrNotFound", err)
		}
		if _, err := s.GetPin(ctx, 1, "FE"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetPin after DeletePin: %v", err)
		}
		if p, err := s.GetPin(ctx, 2, "FE"); err != nil || p.Version != "1.2.3" {
			t.Errorf("the other cluster's pin: %+v %v", p, err)
		}
	})
}

func TestRunningTasks(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p1 := store.Process{ClusterID: 1, UserID: 1, ProcessType: "INSTALL_SERVICE"}
		p2 := store.Process{ClusterID: 2, UserID: 2, ProcessType: "INSTALL_SERVICE"}
		for _, p := range []*store.Process{&p1, &p2} {
			if err := s.CreateProcess(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateTasks(ctx, []store.Task{
			{ProcessID: p1.ID, TaskType: "INSTALL_FE", Status: store.StatusRunning},
			{ProcessID: p1.ID, TaskType: "INSTALL_BE", Status: store.StatusRunning},
			{ProcessID: p1.ID, TaskType: "INSTALL_BE", Status: store.StatusSuccess, Seq: 1},
			{ProcessID: p2.ID, TaskType: "INSTALL_FE", Status: store.StatusSubmitted},
		}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			cluster int64
			want    int64
		}{{1, 2}, {2, 0}, {3, 0}} {
			n, err := s.RunningTasks(ctx, tc.cluster)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("cluster %d: %d running tasks, want %d", tc.cluster, n, tc.want)
			}
		}
	})
}

// A pin records the binary's hash; SetPin replaces it, PinIfAbsent keeps
// the first, FillPinSHA256 fills only a pin without one at that version.
func TestPinHashes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
		got, err := s.PinIfAbsent(ctx, store.PluginPin{ClusterID: 1, Role: "FE", Version: "1.0.0", SHA256: a})
		if err != nil || got.SHA256 != a {
			t.Fatalf("PinIfAbsent: %+v %v", got, err)
		}
		if got, _ = s.PinIfAbsent(ctx, store.PluginPin{ClusterID: 1, Role: "FE", Version: "1.0.0", SHA256: b}); got.SHA256 != a {
			t.Errorf("second PinIfAbsent changed the hash: %+v", got)
		}
		if got, _ = s.FillPinSHA256(ctx, 1, "FE", "1.0.0", b); got.SHA256 != a {
			t.Errorf("FillPinSHA256 replaced a recorded hash: %+v", got)
		}
		if err := s.SetPin(ctx, store.PluginPin{ClusterID: 1, Role: "FE", Version: "1.0.0", SHA256: b}); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.GetPin(ctx, 1, "FE"); got.SHA256 != b {
			t.Errorf("SetPin kept the old hash: %+v", got)
		}
		if err := s.SetPin(ctx, store.PluginPin{ClusterID: 2, Role: "FE", Version: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.FillPinSHA256(ctx, 2, "FE", "1.1.0", a); got.SHA256 != "" {
			t.Errorf("FillPinSHA256 filled a pin of another version: %+v", got)
		}
		if got, _ = s.FillPinSHA256(ctx, 2, "FE", "1.0.0", a); got.SHA256 != a {
			t.Errorf("FillPinSHA256: %+v", got)
		}
	})
}

// A database from before pins had a hash gets the column; its pins keep
// their version with an empty hash.
func TestPinHashMigration(t *testing.T) {
	oldSchema := func(t *testing.T, db *gorm.DB) {
		t.Helper()
		for _, q := range []string{
			`CREATE TABLE plugin_pins (id integer PRIMARY KEY, cluster_id bigint, role varchar(16), version varchar(64), version_constraint varchar(128), updated_at timestamp)`,
			`CREATE UNIQUE INDEX idx_pin_cluster_role ON plugin_pins (cluster_id, role)`,
			`INSERT INTO plugin_pins (id, cluster_id, role, version, version_constraint, updated_at) VALUES (1, 7, 'FE', '1.0.0', '', CURRENT_TIMESTAMP)`,
		} {
			if err := db.Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}
	check := func(t *testing.T, s *store.Store) {
		t.Helper()
		ctx := context.Background()
		p, err := s.GetPin(ctx, 7, "FE")
		if err != nil || p.Version != "1.0.0" || p.SHA256 != "" {
			t.Fatalf("old pin after migration: %+v %v", p, err)
		}
		if p, err = s.FillPinSHA256(ctx, 7, "FE", "1.0.0", strings.Repeat("c", 64)); err != nil || p.SHA256 != strings.Repeat("c", 64) {
			t.Errorf("FillPinSHA256 after migration: %+v %v", p, err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "dorismanager.db")), &gorm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		oldSchema(t, db)
		s, err := store.Open("", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		oldSchema(t, db)
		s, err := store.Open(dsn, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
}
