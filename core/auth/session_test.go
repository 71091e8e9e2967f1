package auth

import (
	"testing"
	"time"
)

// A session ends after SessionIdle without use, SessionMax after it was
// opened, or when closed; a full table drops its oldest session.
func TestSessionLifetimes(t *testing.T) {
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
		{name: "used often, past the maximum", steps: []time.Duration{7 * time.Hour, 7 * time.Hour, 7 * time.Hour, 7 * time.Hour}, alive: false},
		{name: "used often, within the maximum", steps: []time.Duration{7 * time.Hour, 7 * time.Hour, 7 * time.Hour}, alive: true},
		{name: "closed", steps: []time.Duration{time.Second}, close: true, alive: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSessions()
			clock := now
			s.now = func() time.Time { return clock }
			o, err := s.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.close && !s.Close(o.ID) {
				t.Fatal("Close found no session")
			}
			alive := true
			for _, d := range tc.steps {
				clock = clock.Add(d)
				_, alive = s.use(o.ID)
				if !alive {
					break
				}
			}
			if alive != tc.alive {
				t.Errorf("alive %v, want %v", alive, tc.alive)
			}
		})
	}
	if _, err := NewSessions().Open(Principal{}); err == nil {
		t.Error("a session opened without a token")
	}
	s := NewSessions()
	tick := now
	s.now = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	first, _ := s.Open(p)
	for range MaxSessions {
		if _, err := s.Open(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.use(first.ID); ok || s.Len() != MaxSessions {
		t.Errorf("a full table kept its oldest session (%d sessions)", s.Len())
	}
}
