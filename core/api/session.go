package api

import (
	"net/http"
	"sort"
	"time"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/httpx"
)

// sessionView is what /api/session answers: who the caller is and, for
// the console's session, its CSRF token.
type sessionView struct {
	User      string      `json:"user"`
	Role      string      `json:"role"`
	TokenID   int64       `json:"tokenId"`
	Clusters  []int64     `json:"clusters"` // null for an admin: every cluster
	Session   bool        `json:"session"`
	CSRFToken *string     `json:"csrfToken"`
	CSRFName  string      `json:"csrfHeader"`
	ExpiresAt *httpx.Time `json:"expiresAt"`
}

func viewOf(p auth.Principal, csrf string, expires time.Time) sessionView {
	v := sessionView{User: p.User.Name, Role: string(p.Role), TokenID: p.TokenID, CSRFName: auth.CSRFHeader}
	if p.Role != auth.Admin {
		v.Clusters = p.GrantedIDs()
		sort.Slice(v.Clusters, func(i, j int) bool { return v.Clusters[i] < v.Clusters[j] })
	}
	if csrf != "" {
		v.Session = true
		v.CSRFToken = &csrf
		v.ExpiresAt = httpx.NewTime(&expires)
	}
	return v
}

// openSession signs the caller in to the web console: the guard checked
// its token as for any call (role, expiry, revocation, the failure
// block); the answer sets the session cookie, which stands for that
// token, and carries the session's CSRF token. The token itself goes
// nowhere.
func openSession(sessions *auth.Sessions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := caller(r)
		if c, err := r.Cookie(auth.SessionCookie); err == nil {
			// A new sign-in replaces the old session.
			if _, err := sessions.Close(r.Context(), c.Value); err != nil {
				fail(w, err)
				return
			}
		}
		s, err := sessions.Open(r.Context(), p)
		if err != nil {
			fail(w, err)
			return
		}
		http.SetCookie(w, auth.SessionCookieFor(r, s.ID, 0))
		note(r.Context(), "console session opened for token %d", p.TokenID)
		httpx.OK(w, viewOf(p, s.CSRF, s.ExpiresAt))
	}
}

// sessionInfo answers who the caller is (and the CSRF token of its
// console session).
func sessionInfo(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	csrf, _ := p.Session()
	httpx.OK(w, viewOf(p, csrf, p.SessionExpires()))
}

// closeSession signs out: the session of the cookie ends and the cookie
// is deleted.
func closeSession(sessions *auth.Sessions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ended := false
		if c, err := r.Cookie(auth.SessionCookie); err == nil {
			var err error
			if ended, err = sessions.Close(r.Context(), c.Value); err != nil {
				fail(w, err)
				return
			}
		}
		http.SetCookie(w, auth.SessionCookieFor(r, "", -1))
		if ended {
			note(r.Context(), "console session closed")
		} else {
			note(r.Context(), "no console session to close")
		}
		httpx.OK(w, map[string]bool{"ended": ended})
	}
}
