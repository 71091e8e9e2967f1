package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
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
