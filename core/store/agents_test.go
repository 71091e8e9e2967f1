package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestAgentRecord(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		if _, err := s.AgentOf(ctx, 1, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("AgentOf before PrepareAgent: %v, want ErrNotFound", err)
		}
		if err := s.PrepareAgent(ctx, 1, "h1", 9602, "/opt/doris", "uuid-1", store.AgentCert{Serial: "s1", Issuer: "ca1", NotAfter: exp}); err != nil {
			t.Fatal(err)
		}
		a, err := s.AgentOf(ctx, 1, "h1")
		if err != nil || a.Status != store.AgentStop || a.AgentUUID != "uuid-1" || a.CertSerial != "s1" || a.CertIssuer != "ca1" ||
			a.CertNotAfter == nil || !a.CertNotAfter.Equal(exp) || a.Port != 9602 || a.InstallDir != "/opt/doris" {
			t.Fatalf("new agent: %+v %v", a, err)
		}
		if got, err := s.GetAgent(ctx, a.ID); err != nil || got.Host != "h1" {
			t.Fatalf("GetAgent(%d): %+v %v", a.ID, got, err)
		}
		if _, err := s.GetAgent(ctx, a.ID+100); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetAgent of nothing: %v", err)
		}

		// Registration makes it RUNNING, told to beat every 7 s.
		if err := s.RecordRegistration(ctx, a.ID, store.AgentReport{UUID: "uuid-1", Port: 9700, Hardware: `{"cores":2}`, Processes: "[]"}, 7*time.Second); err != nil {
			t.Fatal(err)
		}
		a, _ = s.GetAgent(ctx, a.ID)
		if a.Status != store.AgentRunning || a.Port != 9700 || a.Hardware != `{"cores":2}` || a.RegisterTime == nil || a.LastReportedTime == nil ||
			a.HeartbeatSeconds != 7 {
			t.Fatalf("registered agent: %+v", a)
		}
		ps := `[{"role":"FE"}]`
		beat := a.LastReportedTime.Add(time.Second)
		if err := s.RecordHeartbeats(ctx, []store.Heartbeat{{AgentID: a.ID, At: beat, Processes: &ps}}); err != nil {
			t.Fatal(err)
		}
		if a, _ = s.GetAgent(ctx, a.ID); a.Processes != ps || !a.LastReportedTime.Equal(beat) {
			t.Fatalf("after a heartbeat: processes %q, time %v, want %v", a.Processes, a.LastReportedTime, beat)
		}
		if err := s.RecordHeartbeats(ctx, []store.Heartbeat{{AgentID: a.ID, At: beat.Add(-time.Millisecond)}}); err != nil {
			t.Fatal(err)
		}
		if a, _ = s.GetAgent(ctx, a.ID); !a.LastReportedTime.Equal(beat) {
			t.Fatalf("an older beat moved the time back to %v", a.LastReportedTime)
		}

		// A renewal keeps the used serial as the previous one until the
		// agent is seen with the new one.
		ok, err := s.RenewAgentCert(ctx, a.ID, "s1", store.AgentCert{Serial: "s2", Issuer: "ca2", NotAfter: exp.Add(time.Hour)})
		if err != nil || !ok {
			t.Fatalf("RenewAgentCert: %v %v", ok, err)
		}
		for _, serial := range []string{"s1", "s2"} {
			if got, err := s.AgentBySerial(ctx, serial); err != nil || got.ID != a.ID {
				t.Fatalf("AgentBySerial(%s): %+v %v", serial, got, err)
			}
		}
		if err := s.RetirePrevSerial(ctx, a.ID, "s1"); err != nil { // not the current one: nothing changes
			t.Fatal(err)
		}
		if _, err := s.AgentBySerial(ctx, "s1"); err != nil {
			t.Fatalf("previous serial retired by the wrong serial: %v", err)
		}
		if err := s.RetirePrevSerial(ctx, a.ID, "s2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AgentBySerial(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("retired serial: %v, want ErrNotFound", err)
		}
		if ok, err := s.RenewAgentCert(ctx, a.ID, "s1", store.AgentCert{Serial: "s3"}); err != nil || ok {
			t.Fatalf("renewal with a retired serial: %v %v, want refused", ok, err)
		}

		// A reinstall revokes every earlier certificate and keeps the times.
		if _, err := s.RenewAgentCert(ctx, a.ID, "s2", store.AgentCert{Serial: "s4", Issuer: "ca2", NotAfter: exp}); err != nil {
			t.Fatal(err)
		}
		if err := s.PrepareAgent(ctx, 1, "h1", 9602, "/opt/other", "uuid-2", store.AgentCert{Serial: "s5", Issuer: "ca2", NotAfter: exp}); err != nil {
			t.Fatal(err)
		}
		re, _ := s.AgentOf(ctx, 1, "h1")
		if re.ID != a.ID || re.Status != store.AgentRunning || re.AgentUUID != "uuid-2" || re.CertSerial != "s5" ||
			re.PrevCertSerial != "" || re.InstallDir != "/opt/other" || re.Port != 9602 {
			t.Fatalf("reinstalled agent: %+v", re)
		}
		for _, serial := range []string{"s2", "s4"} {
			if _, err := s.AgentBySerial(ctx, serial); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("serial %s after a reinstall: %v, want ErrNotFound", serial, err)
			}
		}

		// Silent for three intervals: STOP, for every reader.
		old := time.Now().Add(-21 * time.Second)
		if err := s.DB().Model(&store.Agent{}).Where("id = ?", a.ID).Update("last_reported_time", old).Error; err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AgentOf(ctx, 1, "h1"); got.Status != store.AgentStop {
			t.Fatalf("agent silent for 21 s at 7 s beats: %s, want STOP", got.Status)
		}
		if cs, _ := s.AgentCounts(ctx); len(cs) != 1 || cs[0].Status != store.AgentStop || cs[0].N != 1 {
			t.Fatalf("AgentCounts: %+v", cs)
		}
		if err := s.RecordHeartbeats(ctx, []store.Heartbeat{{AgentID: a.ID, At: time.Now()}, {AgentID: a.ID + 1000, At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListAgents(ctx, 1); len(got) != 1 || got[0].Status != store.AgentRunning || got[0].Processes != ps {
			t.Fatalf("after a beat without processes: %+v", got)
		}
	})
}

func TestAllAgents(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, k := range []struct {
			cluster int64
			host    string
		}{{2, "a"}, {1, "b"}, {1, "a"}} {
			if err := s.PrepareAgent(ctx, k.cluster, k.host, 9602, "/opt", "u-"+k.host, store.AgentCert{Serial: k.host}); err != nil {
				t.Fatal(err)
			}
		}
		as, err := s.AllAgents(ctx)
		if err != nil || len(as) != 3 {
			t.Fatalf("AllAgents: %+v %v", as, err)
		}
		var got []string
		for _, a := range as {
			got = append(got, a.Host+"@"+string(rune('0'+a.ClusterID)))
		}
		if want := "a@1 b@1 a@2"; strings.Join(got, " ") != want {
			t.Fatalf("AllAgents order: %v, want %s", got, want)
		}
	})
}

func TestAgentAlive(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, tc := range []struct {
		name  string
		last  *time.Time
		beat  int
		alive bool
	}{
		{"never reported", nil, 5, false},
		{"just now", ago(0), 5, true},
		{"two beats ago", ago(10 * time.Second), 5, true},
		{"three beats ago", ago(15 * time.Second), 5, false},
		{"no interval recorded: 5 s", ago(14 * time.Second), 0, true},
		{"no interval recorded, silent 15 s", ago(15 * time.Second), 0, false},
		{"1 s beats, silent 3 s", ago(3 * time.Second), 1, false},
		{"30 s beats, silent 80 s", ago(80 * time.Second), 30, true},
	} {
		a := store.Agent{LastReportedTime: tc.last, HeartbeatSeconds: tc.beat}
		if got := a.Alive(now); got != tc.alive {
			t.Errorf("%s: Alive = %v, want %v", tc.name, got, tc.alive)
		}
	}
}
