package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
	"github.com/hashicorp/go-hclog"
)

// Principal is the caller of an API request: a token, its user and role,
// and the clusters the user is granted.
type Principal struct {
	User    store.User
	TokenID int64
	Role    Role
	// Clusters is the user's grants (nil for an admin, who needs none).
	Clusters map[int64]bool

	tokenHash string // the token's stored form, for opening a session
	session   *session
}

// Session reports whether p came through the console's session cookie,
// and that session's CSRF token.
func (p Principal) Session() (csrf string, ok bool) {
	if p.session == nil {
		return "", false
	}
	return p.session.csrf, true
}

// SessionExpires is when p's session ends at the latest (zero without one).
func (p Principal) SessionExpires() time.Time {
	if p.session == nil {
		return time.Time{}
	}
	return p.session.opened.Add(SessionMax)
}

// Can reports whether p may act with role need on cluster (0: on no
// particular cluster).
func (p Principal) Can(need Role, cluster int64) bool {
	if p.Role == Admin {
		return true
	}
	if !p.Role.AtLeast(need) || need == Admin {
		return false
	}
	return cluster == 0 || p.Clusters[cluster]
}

// GrantedIDs returns the clusters p is granted.
func (p Principal) GrantedIDs() []int64 {
	out := make([]int64, 0, len(p.Clusters))
	for id := range p.Clusters {
		out = append(out, id)
	}
	return out
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of a request context.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Refusal is a refused authentication: 401 (no, unknown, expired or
// revoked token) or 429 (the address is blocked). Who holds what is known
// of the caller (the user and token of an expired or revoked token).
type Refusal struct {
	Err *httpx.Error
	Who Principal
}

func (r *Refusal) Error() string { return r.Err.Msg }

// Unwrap lets httpx.Fail find the status.
func (r *Refusal) Unwrap() error { return r.Err }

// Authenticator checks the bearer token of API requests, or the web
// console's session cookie.
type Authenticator struct {
	st       *store.Store
	lim      *netguard.AuthLimiter
	log      hclog.Logger
	now      func() time.Time
	sessions *Sessions
}

// NewAuthenticator checks tokens against st. lim (nil for none) counts
// refusals per client address and blocks an address with too many.
// sessions (nil for none) are the console sessions whose cookie stands
// for a token.
func NewAuthenticator(st *store.Store, lim *netguard.AuthLimiter, sessions *Sessions, log hclog.Logger) *Authenticator {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Authenticator{st: st, lim: lim, log: log, now: time.Now, sessions: sessions}
}

// touchEvery is how often a token's last use is written.
const touchEvery = time.Minute

// Check returns the caller of r: the bearer token's, else the session
// cookie's (a state-changing request through the cookie needs the
// session's CSRF token, see checkCSRF). A refusal is a *Refusal; its
// headers (WWW-Authenticate, Retry-After) are set on w, nothing is
// written. Any other error is the store failing.
func (a *Authenticator) Check(w http.ResponseWriter, r *http.Request) (Principal, error) {
	if msg, blocked := a.lim.Blocked(w, r); blocked {
		return Principal{}, &Refusal{Err: httpx.Errorf(http.StatusTooManyRequests, "%s", msg)}
	}
	// invalid: a token was sent but is not accepted (RFC 6750's invalid_token).
	refuse := func(who Principal, invalid bool, format string, args ...any) (Principal, error) {
		a.lim.Failed(r)
		hdr := `Bearer realm="dorismanager"`
		if invalid {
			hdr += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", hdr)
		return Principal{}, &Refusal{Err: httpx.Errorf(http.StatusUnauthorized, format, args...), Who: who}
	}
	hash := ""
	var sess *session
	authz := r.Header.Get("Authorization")
	if c, err := r.Cookie(SessionCookie); err == nil && authz == "" && a.sessions != nil {
		s, ok, err := a.sessions.use(r.Context(), c.Value)
		if err != nil {
			return Principal{}, fmt.Errorf("check the console session: %w", err)
		}
		if !ok {
			return refuse(Principal{}, false, "the console session has ended (signed out or timed out): sign in again with an API token")
		}
		if err := checkCSRF(r, s.csrf); err != nil {
			// Not counted as a failed authentication: any page the
			// user visits could send such requests, and would get the
			// user's own address blocked.
			return Principal{}, &Refusal{Err: err.(*httpx.Error)}
		}
		hash, sess = s.tokenHash, &s
	} else {
		scheme, tok, ok := strings.Cut(authz, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return refuse(Principal{}, false, "missing API token: send the header \"Authorization: Bearer <token>\" (the admin token is in <data-dir>/admin.token)")
		}
		hash = HashToken(tok)
	}
	t, u, err := a.st.TokenByHash(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(Principal{}, true, "unknown API token")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("check API token: %w", err)
	}
	who := Principal{User: u, TokenID: t.ID, Role: Role(t.Role), tokenHash: hash, session: sess}
	now := a.now()
	switch {
	case t.RevokedAt != nil:
		return refuse(who, true, "API token %d of %s was revoked at %s: ask an admin for a new one", t.ID, u.Name, t.RevokedAt.UTC().Format(httpx.TimeLayout))
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return refuse(who, true, "API token %d of %s expired at %s: ask an admin for a new one", t.ID, u.Name, t.ExpiresAt.UTC().Format(httpx.TimeLayout))
	case who.Role.rank() == 0:
		return refuse(who, true, "API token %d of %s has no valid role (%q): ask an admin for a new one", t.ID, u.Name, t.Role)
	}
	if who.Role != Admin {
		ids, err := a.st.GrantsOf(r.Context(), u.ID)
		if err != nil {
			return Principal{}, err
		}
		who.Clusters = make(map[int64]bool, len(ids))
		for _, id := range ids {
			who.Clusters[id] = true
		}
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if err := a.st.TouchToken(r.Context(), t.ID, now, touchEvery); err != nil {
			a.log.Warn("last use of an API token not recorded", "token", t.ID, "error", err)
		}
	}
	return who, nil
}
