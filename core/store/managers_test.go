package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestManagersSeenAndForgotten(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, m := range []store.Manager{{ID: "b", AgentURL: "https://10.0.0.2:9603", CAID: "ca"}, {ID: "a", AgentURL: "https://10.0.0.1:9603", CAID: "ca"}} {
			if err := s.ManagerSeen(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		// A refresh updates the row, it does not add one.
		if err := s.ManagerSeen(ctx, store.Manager{ID: "a", AgentURL: "https://10.0.0.9:9603", CAID: "ca"}); err != nil {
			t.Fatal(err)
		}
		ms, err := s.LiveManagers(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 || ms[0].ID != "a" || ms[0].AgentURL != "https://10.0.0.9:9603" || ms[1].ID != "b" {
			t.Fatalf("live managers = %+v", ms)
		}
		// Rows seen longer ago than the window are not live, and are forgotten.
		time.Sleep(20 * time.Millisecond)
		if ms, err = s.LiveManagers(ctx, 10*time.Millisecond); err != nil || len(ms) != 0 {
			t.Fatalf("live within 10ms = %+v, %v", ms, err)
		}
		if err := s.ManagerSeen(ctx, store.Manager{ID: "b", AgentURL: "https://10.0.0.2:9603"}); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetManagers(ctx, "b", 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := s.DB().Model(&store.Manager{}).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("rows after forgetting = %d, %v", n, err)
		}
	})
}

func TestPrepareAgentClearsRegistration(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c, err := s.CreateCluster(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		cert := store.AgentCert{Serial: "s1", Issuer: "i", NotAfter: time.Now().Add(time.Hour)}
		if err := s.PrepareAgent(ctx, c.ID, "h1", 9602, "/opt/d", "u1", cert); err != nil {
			t.Fatal(err)
		}
		a, err := s.AgentOf(ctx, c.ID, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordRegistration(ctx, a.ID, store.AgentReport{UUID: "u1", Port: 9602, Hardware: "{}", Processes: "[]"}, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if a, _ = s.AgentOf(ctx, c.ID, "h1"); a.RegisterTime == nil {
			t.Fatal("registration not recorded")
		}
		cert.Serial = "s2"
		if err := s.PrepareAgent(ctx, c.ID, "h1", 9602, "/opt/d", "u1", cert); err != nil {
			t.Fatal(err)
		}
		if a, _ = s.AgentOf(ctx, c.ID, "h1"); a.RegisterTime != nil || a.LastReportedTime == nil {
			t.Fatalf("after a new certificate: registerTime %v (want none), lastReported %v (want kept)", a.RegisterTime, a.LastReportedTime)
		}
	})
}
