package netguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// AuthConfig configures an AuthLimiter. Zero fields take the defaults.
type AuthConfig struct {
	// MaxFailures failed authentications from one client within Window
	// block it for Block. Negative disables the limiter.
	MaxFailures int
	Window      time.Duration
	Block       time.Duration
	// MaxClients caps the clients tracked at once, so that many addresses
	// cannot grow the table without bound.
	MaxClients int
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Defaults of AuthConfig.
const (
	DefaultMaxFailures = 10
	DefaultAuthWindow  = time.Minute
	DefaultAuthBlock   = 5 * time.Minute
	DefaultMaxClients  = 4096
)

// AuthLimiter blocks a client address for a while after repeated failed
// authentication. A blocked client is refused before its credentials are
// looked at, so guessing goes no faster with a right guess in the queue.
// Successful requests are never counted. Safe for concurrent use; the nil
// *AuthLimiter limits nothing.
type AuthLimiter struct {
	cfg     AuthConfig
	mu      sync.Mutex
	clients map[netip.Prefix]*client
}

type client struct {
	failures     int
	windowStart  time.Time
	blockedUntil time.Time
	last         time.Time // latest failure, for eviction
}

// NewAuthLimiter returns a limiter, or nil (no limit) when
// cfg.MaxFailures is negative.
func NewAuthLimiter(cfg AuthConfig) *AuthLimiter {
	if cfg.MaxFailures < 0 {
		return nil
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultAuthWindow
	}
	if cfg.Block <= 0 {
		cfg.Block = DefaultAuthBlock
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &AuthLimiter{cfg: cfg, clients: map[netip.Prefix]*client{}}
}

// clientKey is the request's peer address: an IPv4 address, or the /64 of
// an IPv6 one (a single host usually owns a whole /64). Headers such as
// X-Forwarded-For are not trusted.
func clientKey(r *http.Request) (netip.Prefix, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// Blocked reports whether r's client is blocked. If so it sets the
// Retry-After header on w and returns a message saying when to retry;
// answer it with 429.
func (l *AuthLimiter) Blocked(w http.ResponseWriter, r *http.Request) (string, bool) {
	if l == nil {
		return "", false
	}
	k, ok := clientKey(r)
	if !ok {
		return "", false
	}
	now := l.cfg.Now()
	l.mu.Lock()
	c := l.clients[k]
	var until time.Time
	if c != nil && now.Before(c.blockedUntil) {
		until = c.blockedUntil
	}
	l.mu.Unlock()
	if until.IsZero() {
		return "", false
	}
	wait := until.Sub(now)
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return fmt.Sprintf("too many failed authentication attempts from %s: retry after %s (in %ds) with a valid token",
		k.Addr(), until.UTC().Format(time.RFC3339), secs), true
}

// Failed counts a failed authentication of r's client.
func (l *AuthLimiter) Failed(r *http.Request) {
	if l == nil {
		return
	}
	k, ok := clientKey(r)
	if !ok {
		return
	}
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[k]
	if c == nil {
		if len(l.clients) >= l.cfg.MaxClients {
			l.evictLocked(now)
		}
		c = &client{windowStart: now}
		l.clients[k] = c
	}
	if now.Sub(c.windowStart) >= l.cfg.Window {
		c.failures, c.windowStart = 0, now
	}
	c.failures++
	c.last = now
	if c.failures >= l.cfg.MaxFailures {
		c.blockedUntil = now.Add(l.cfg.Block)
		c.failures, c.windowStart = 0, now
	}
}

// evictLocked makes room for one client: it drops every client whose
// window and block are over, or else the one that failed least recently
// (never one still blocked while another is not).
func (l *AuthLimiter) evictLocked(now time.Time) {
	var oldest netip.Prefix
	var oldestC *client
	for k, c := range l.clients {
		if now.Sub(c.windowStart) >= l.cfg.Window && !now.Before(c.blockedUntil) {
			delete(l.clients, k)
			continue
		}
		if oldestC == nil || less(now, c, oldestC) {
			oldest, oldestC = k, c
		}
	}
	if len(l.clients) >= l.cfg.MaxClients && oldestC != nil {
		delete(l.clients, oldest)
	}
}

// less orders eviction candidates: unblocked before blocked, then by the
// latest failure.
func less(now time.Time, a, b *client) bool {
	ab, bb := now.Before(a.blockedUntil), now.Before(b.blockedUntil)
	if ab != bb {
		return !ab
	}
	return a.last.Before(b.last)
}

// Tracked is how many clients are tracked (tests).
func (l *AuthLimiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
