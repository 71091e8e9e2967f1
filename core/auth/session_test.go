package auth

import (
	"context"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

func sessionStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A session ends after SessionIdle without use, SessionMax after it was
// opened, or when closed; a full table drops its oldest session.
func TestSessionLifetimes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)
	p := Principal{tokenHash: "h"}
	for _, tc := range []struct {
		name  string
		steps []time.Duration // uses, each after the one before
		close bool
		alive bool
	}{
		{name: "fresh", steps: []time.Duration{time.Minute}, alive: true},
		{name: "idle", steps: []time.Duration{SessionIdle}, alive: false},
		{name: "used within a minute, idle after", steps: []time.Duration{30 * time.Second, SessionIdle - 10*time.Second}, alive: false},
		{name: "used often, past the maximum", steps: []time.Duration{7 * time.Hour, 7 * time.Hour, 7 * time.Hour, 7 * time.Hour}, alive: false},
		{name: "used often, within the maximum", steps: []time.Duration{7 * time.Hour, 7 * time.Hour, 7 * time.Hour}, alive: true},
		{name: "closed", steps: []time.Duration{time.Second}, close: true, alive: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSessions(sessionStore(t, t.TempDir()))
			clock := now
			s.now = func() time.Time { return clock }
			o, err := s.Open(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.close {
				if ended, err := s.Close(ctx, o.ID); err != nil || !ended {
					t.Fatalf("Close = %v, %v; want a session ended", ended, err)
				}
			}
			alive := true
			for _, d := range tc.steps {
				clock = clock.Add(d)
				var sess session
				sess, alive, err = s.use(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !alive {
					break
				}
				if sess.csrf != o.CSRF || sess.tokenHash != "h" {
					t.Fatalf("session read back as %+v, want the CSRF token given at opening and token h", sess)
				}
			}
			if alive != tc.alive {
				t.Errorf("alive %v, want %v", alive, tc.alive)
			}
		})
	}
	if _, err := NewSessions(sessionStore(t, t.TempDir())).Open(ctx, Principal{}); err == nil {
		t.Error("a session opened without a token")
	}
	s := NewSessions(sessionStore(t, t.TempDir()))
	s.max = 5
	tick := now
	s.now = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	first, _ := s.Open(ctx, p)
	for range s.max {
		if _, err := s.Open(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := s.use(ctx, first.ID); ok {
		t.Error("a full table kept its oldest session")
	}
	if n, err := s.Len(ctx); err != nil || n != int64(s.max) {
		t.Errorf("%d sessions kept (%v), want %d", n, err, s.max)
	}
}

// A session opened through one manager works through another on the same
// database, and signing out on either ends it for both. Nothing stored
// could be used as the cookie or the CSRF token.
func TestSessionsSharedByManagers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st1, st2 := sessionStore(t, dir), sessionStore(t, dir)
	m1, m2 := NewSessions(st1), NewSessions(st2)
	o, err := m1.Open(ctx, Principal{tokenHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	sess, ok, err := m2.use(ctx, o.ID)
	if err != nil || !ok || sess.csrf != o.CSRF || sess.tokenHash != "h" {
		t.Fatalf("the other manager: %+v, %v, %v; want the session with the same CSRF token", sess, ok, err)
	}
	var rows []store.ConsoleSession
	if err := st1.DB().Find(&rows).Error; err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, %v", rows, err)
	}
	if rows[0].IDHash == o.ID || rows[0].IDHash == o.CSRF || rows[0].IDHash != sessionKey(o.ID) {
		t.Fatalf("the stored row holds the cookie or the CSRF token: %+v", rows[0])
	}
	if ended, err := m2.Close(ctx, o.ID); err != nil || !ended {
		t.Fatalf("sign out through the other manager: %v, %v", ended, err)
	}
	if _, ok, _ := m1.use(ctx, o.ID); ok {
		t.Fatal("the session still works through the first manager after signing out through the other")
	}
}
