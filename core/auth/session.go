package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
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
	// sessionTouch: a session's last use is written at most this often
	// (idleness is measured to within it), not on every request.
	sessionTouch = time.Minute
)

// Sessions are the web console's sessions, kept in the store: every
// manager on the database knows them, and a restart does not end them.
// A session stands for the token it was opened with; every request
// through it checks that token again, so a revoked or expired token ends
// it. The cookie's id is not stored (only its hash), and the CSRF token
// is derived from the id (HMAC), so the table holds nothing a request
// could be made with.
type Sessions struct {
	st  *store.Store
	now func() time.Time
	max int // MaxSessions; less in tests
}

type session struct {
	tokenHash string
	csrf      string
	opened    time.Time
}

// NewSessions returns the sessions kept in st.
func NewSessions(st *store.Store) *Sessions {
	return &Sessions{st: st, now: time.Now, max: MaxSessions}
}

// OpenedSession is what a new session's owner is given.
type OpenedSession struct {
	ID        string // the cookie's value
	CSRF      string
	ExpiresAt time.Time // at the latest
}

// Open starts a session for the token p was authenticated with.
func (s *Sessions) Open(ctx context.Context, p Principal) (OpenedSession, error) {
	if p.tokenHash == "" {
		return OpenedSession{}, fmt.Errorf("open a session: the caller was not authenticated by a token")
	}
	id, err := randomString()
	if err != nil {
		return OpenedSession{}, err
	}
	now := s.now().UTC()
	if err := s.st.PruneSessions(ctx, now.Add(-SessionIdle), now.Add(-SessionMax)); err != nil {
		return OpenedSession{}, err
	}
	cs := store.ConsoleSession{IDHash: sessionKey(id), TokenHash: p.tokenHash, OpenedAt: now, SeenAt: now}
	if err := s.st.OpenSession(ctx, cs, s.max); err != nil {
		return OpenedSession{}, err
	}
	return OpenedSession{ID: id, CSRF: csrfOf(id), ExpiresAt: now.Add(SessionMax)}, nil
}

// Close ends the session of a cookie value; it reports whether there was one.
func (s *Sessions) Close(ctx context.Context, id string) (bool, error) {
	return s.st.CloseSession(ctx, sessionKey(id))
}

// Len is the number of sessions kept.
func (s *Sessions) Len(ctx context.Context) (int64, error) {
	return s.st.CountSessions(ctx)
}

// use returns the live session of a cookie value and marks it used.
func (s *Sessions) use(ctx context.Context, id string) (session, bool, error) {
	k := sessionKey(id)
	cs, err := s.st.SessionByHash(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, err
	}
	now := s.now().UTC()
	if now.Sub(cs.SeenAt) >= SessionIdle || now.Sub(cs.OpenedAt) >= SessionMax {
		if _, err := s.st.CloseSession(ctx, k); err != nil {
			return session{}, false, err
		}
		return session{}, false, nil
	}
	if now.Sub(cs.SeenAt) >= sessionTouch {
		if err := s.st.TouchSession(ctx, k, now); err != nil {
			return session{}, false, err
		}
	}
	return session{tokenHash: cs.TokenHash, csrf: csrfOf(id), opened: cs.OpenedAt}, true, nil
}

// sessionKey is how an id is kept: its hash, so the table holds no
// usable cookie and a lookup's timing tells nothing about the ids held.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// csrfOf is a session's CSRF token: an HMAC keyed by the cookie's id,
// which a page of another site cannot read (HttpOnly) and the store does
// not hold; any manager computes the same from the cookie.
func csrfOf(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("dorismanager console CSRF token"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
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
