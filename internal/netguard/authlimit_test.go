package netguard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func reqFrom(addr string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = addr
	return r
}

func TestAuthLimiter(t *testing.T) {
	// step: advance the clock by wait, then from addr either fail (count a
	// failed authentication) or check whether it is blocked.
	type step struct {
		wait        time.Duration
		addr        string
		fail        bool
		wantBlocked bool
	}
	a, b := "10.0.0.1:1000", "10.0.0.2:1000"
	fails := func(addr string, n int) []step {
		s := make([]step, n)
		for i := range s {
			s[i] = step{addr: addr, fail: true}
		}
		return s
	}
	cat := func(parts ...[]step) []step {
		var all []step
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"below the limit", cat(fails(a, 2), []step{{addr: a}})},
		{"at the limit", cat(fails(a, 3), []step{{addr: a, wantBlocked: true}})},
		{"other address unaffected", cat(fails(a, 3), []step{{addr: b}, {addr: a, wantBlocked: true}})},
		{"same address, other port", cat(fails(a, 3), []step{{addr: "10.0.0.1:2000", wantBlocked: true}})},
		{"block ends", cat(fails(a, 3), []step{{wait: 5*time.Minute - time.Second, addr: a, wantBlocked: true}, {wait: time.Second, addr: a}})},
		{"failures spread beyond the window", cat(fails(a, 2), []step{{wait: time.Minute, addr: a, fail: true}, {addr: a}})},
		{"counted afresh after a block", cat(fails(a, 3), []step{{wait: 5 * time.Minute, addr: a, fail: true}, {addr: a}})},
		{"IPv6 /64 counts as one client", []step{
			{addr: "[2001:db8::1]:1", fail: true}, {addr: "[2001:db8::2]:1", fail: true}, {addr: "[2001:db8::3]:1", fail: true},
			{addr: "[2001:db8::ffff]:1", wantBlocked: true}, {addr: "[2001:db8:0:1::1]:1"}}},
		{"IPv4-mapped IPv6 is the IPv4 client", cat(fails("[::ffff:10.0.0.1]:5", 3), []step{{addr: a, wantBlocked: true}})},
		{"unparsable address is not limited", cat(fails("pipe", 5), []step{{addr: "pipe"}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
			l := NewAuthLimiter(AuthConfig{MaxFailures: 3, Window: time.Minute, Block: 5 * time.Minute, Now: clock.now})
			for i, s := range tc.steps {
				clock.t = clock.t.Add(s.wait)
				if s.fail {
					l.Failed(reqFrom(s.addr))
					continue
				}
				w := httptest.NewRecorder()
				msg, blocked := l.Blocked(w, reqFrom(s.addr))
				if blocked != s.wantBlocked {
					t.Fatalf("step %d (%s): blocked = %v, want %v", i, s.addr, blocked, s.wantBlocked)
				}
				if blocked && (w.Header().Get("Retry-After") == "" || !strings.Contains(msg, "retry after")) {
					t.Fatalf("step %d: refusal %q, Retry-After %q: want when to retry", i, msg, w.Header().Get("Retry-After"))
				}
			}
		})
	}
}

func TestAuthLimiterRetryAfter(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewAuthLimiter(AuthConfig{MaxFailures: 1, Block: 90 * time.Second, Now: clock.now})
	l.Failed(reqFrom("10.0.0.1:1"))
	clock.t = clock.t.Add(30 * time.Second)
	w := httptest.NewRecorder()
	msg, _ := l.Blocked(w, reqFrom("10.0.0.1:1"))
	if got := w.Header().Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After %q, want 60", got)
	}
	if !strings.Contains(msg, "2024-01-01T00:01:30Z") || !strings.Contains(msg, "10.0.0.1") {
		t.Errorf("message %q does not say when or who", msg)
	}
}

func TestAuthLimiterBoundedMemory(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewAuthLimiter(AuthConfig{MaxFailures: 2, MaxClients: 8, Now: clock.now})
	// One blocked client, then a flood of single failures from many others.
	blocked := reqFrom("192.0.2.1:1")
	l.Failed(blocked)
	l.Failed(blocked)
	for i := range 1000 {
		clock.t = clock.t.Add(time.Millisecond)
		l.Failed(reqFrom(fmt.Sprintf("10.%d.%d.%d:1", i/65536%256, i/256%256, i%256)))
		if n := l.Tracked(); n > 8 {
			t.Fatalf("tracking %d clients, cap 8", n)
		}
	}
	if _, ok := l.Blocked(httptest.NewRecorder(), blocked); !ok {
		t.Error("the flood evicted a blocked client while unblocked ones could go")
	}
}

func TestAuthLimiterDisabled(t *testing.T) {
	l := NewAuthLimiter(AuthConfig{MaxFailures: -1})
	for range 100 {
		l.Failed(reqFrom("10.0.0.1:1"))
	}
	if _, ok := l.Blocked(httptest.NewRecorder(), reqFrom("10.0.0.1:1")); ok {
		t.Fatal("a disabled limiter blocked")
	}
}
