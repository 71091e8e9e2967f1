package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/core/httpx"
)

// SessionCookie is the web console's session cookie: an opaque random id,
// never the token it was opened with.
const SessionCookie = "dm_session"

// CSRFHeader carries a session's CSRF token on every state-changing
// request authenticated by the session cookie.
const CSRFHeader = "X-CSRF-Token"

// Session lifetimes: a session ends after SessionIdle without a request
// and SessionMax after it was opened, whichever comes first (and at once
// when its token is revoked or expires).
const (
	SessionIdle = 8 * time.Hour
	SessionMax  = 24 * time.Hour
	// MaxSessions bounds the sessions kept; the oldest goes first.
	MaxSessions = 10000
)

// Sessions are the web console's sessions, kept in memory: they end when
// the manager stops (the console then asks for the token again). A
// session stands for the token it was opened with; every request through
// it checks that token again, so a revoked or expired token ends it.
type Sessions struct {
	mu   sync.Mutex
	byID map[string]*session // by the SHA-256 of the cookie's id
	now  func() time.Time
}

type session struct {
	tokenHash string
	csrf      string
	opened    time.Time
	seen      time.Time
}

// NewSessions returns an empty session table.
func NewSessions() *Sessions {
	return &Sessions{byID: map[string]*session{}, now: time.Now}
}

// OpenedSession is what a new session's owner is given.
type OpenedSession struct {
	ID        string // the cookie's value
	CSRF      string
	ExpiresAt time.Time // at the latest
}

// Open starts a session for the token p was authenticated with.
func (s *Sessions) Open(p Principal) (OpenedSession, error) {
	if p.tokenHash == "" {
		return OpenedSession{}, fmt.Errorf("open a session: the caller was not authenticated by a token")
	}
	id, err := randomString()
	if err != nil {
		return OpenedSession{}, err
	}
	csrf, err := randomString()
	if err != nil {
		return OpenedSession{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.byID) >= MaxSessions {
		s.pruneLocked(now)
	}
	s.byID[sessionKey(id)] = &session{tokenHash: p.tokenHash, csrf: csrf, opened: now, seen: now}
	return OpenedSession{ID: id, CSRF: csrf, ExpiresAt: now.Add(SessionMax)}, nil
}

// pruneLocked drops ended sessions and, if the table is still full, the
// oldest one.
func (s *Sessions) pruneLocked(now time.Time) {
	var oldest string
	for k, v := range s.byID {
		if v.ended(now) {
			delete(s.byID, k)
			continue
		}
		if oldest == "" || v.opened.Before(s.byID[oldest].opened) {
			oldest = k
		}
	}
	if len(s.byID) >= MaxSessions && oldest != "" {
		delete(s.byID, oldest)
	}
}

func (v *session) ended(now time.Time) bool {
	return now.Sub(v.seen) >= SessionIdle || now.Sub(v.opened) >= SessionMax
}

// Close ends the session of a cookie value; it reports whether there was one.
func (s *Sessions) Close(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(id)
	_, ok := s.byID[k]
	delete(s.byID, k)
	return ok
}

// Len is the number of sessions kept.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// use returns the live session of a cookie value and marks it used.
func (s *Sessions) use(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(id)
	v, ok := s.byID[k]
	if !ok {
		return session{}, false
	}
	now := s.now()
	if v.ended(now) {
		delete(s.byID, k)
		return session{}, false
	}
	v.seen = now
	return *v, true
}

// sessionKey is how an id is kept: its hash, so a lookup's timing tells
// nothing about the ids held.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a session secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// SessionCookieFor is the cookie that carries a session: HttpOnly,
// SameSite=Strict, Path=/, Secure when r came over TLS. maxAge < 0 makes
// the cookie that deletes it.
func SessionCookieFor(r *http.Request, id string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: id, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// safeMethod: a request that changes nothing, which needs no CSRF token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a state-changing request authenticated by a session
// cookie unless it comes from the console's own pages: the session's
// CSRF token in CSRFHeader, and Origin and Sec-Fetch-Site (when the
// browser sends them) naming this site.
func checkCSRF(r *http.Request, csrf string) error {
	if safeMethod(r.Method) {
		return nil
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return httpx.Errorf(http.StatusForbidden, "cross-site request refused: Sec-Fetch-Site is %q; the console's session cookie is accepted only from the manager's own pages", truncate(site, 40))
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(r, origin) {
		return httpx.Errorf(http.StatusForbidden, "cross-site request refused: Origin %s is not this manager (%s); the console's session cookie is accepted only from the manager's own pages", truncate(origin, 100), selfOrigin(r))
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return httpx.Errorf(http.StatusForbidden, "missing %s header: a request signed in by the console's session cookie that changes state must send the session's CSRF token (GET /api/session answers it), or use \"Authorization: Bearer <token>\" instead", CSRFHeader)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
		return httpx.Errorf(http.StatusForbidden, "the %s header is not this session's CSRF token: reload the console (GET /api/session answers the current one)", CSRFHeader)
	}
	return nil
}

func selfOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme+"://"+u.Host, selfOrigin(r))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
