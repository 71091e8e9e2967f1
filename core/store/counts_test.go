package store_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestCountsAndPing(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if err := s.CreateTasks(ctx, []store.Task{
			{ProcessID: 1, TaskType: "INSTALL_FE", Status: store.StatusSubmitted},
			{ProcessID: 1, TaskType: "INSTALL_FE", Status: store.StatusSubmitted, Seq: 1},
			{ProcessID: 1, TaskType: "INSTALL_FE", Status: store.StatusFailure, Skip: true, Seq: 2},
			{ProcessID: 1, TaskType: "INSTALL_BE", Status: store.StatusRunning},
		}); err != nil {
			t.Fatal(err)
		}
		now, old := time.Now(), time.Now().Add(-time.Hour)
		if err := s.DB().Create(&[]store.Agent{{ClusterID: 1, Host: "a", LastReportedTime: &now}, {ClusterID: 1, Host: "b", LastReportedTime: &old},
			{ClusterID: 2, Host: "a", LastReportedTime: &now}, {ClusterID: 2, Host: "b"}}).Error; err != nil {
			t.Fatal(err)
		}
		tasks, err := s.TaskCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		agents, err := s.AgentCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			got  []store.Count
			want string
		}{
			{"tasks", tasks, "INSTALL_BE/RUNNING=1 INSTALL_FE/SKIPPED=1 INSTALL_FE/SUBMITTED=2"},
			{"agents", agents, "/RUNNING=2 /STOP=2"},
		} {
			if got := countString(tc.got); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
			}
		}
		s.Close()
		if err := s.Ping(ctx); err == nil {
			t.Error("ping of a closed store succeeded")
		}
	})
}

func countString(cs []store.Count) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s/%s=%d", c.Type, c.Status, c.N))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
