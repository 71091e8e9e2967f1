package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dorismanager/dorismanager/core/audit"
	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
)

// Admin endpoints: tokens, grants and the audit log.

// TokenView is a token as the API shows it: never its secret or hash
// (Token is set once, in the answer that creates it).
type TokenView struct {
	ID           int64       `json:"id"`
	User         string      `json:"user"`
	Role         string      `json:"role"`
	Clusters     []int64     `json:"clusters"` // the user's grants
	CreateTime   *httpx.Time `json:"createTime"`
	ExpireTime   *httpx.Time `json:"expireTime"`
	LastUsedTime *httpx.Time `json:"lastUsedTime"`
	RevokeTime   *httpx.Time `json:"revokeTime"`
	Token        string      `json:"token,omitempty"`
}

func tokenView(t store.TokenRow) TokenView {
	cs := t.Grants
	if cs == nil {
		cs = []int64{}
	}
	return TokenView{ID: t.ID, User: t.UserName, Role: t.Role, Clusters: cs, CreateTime: httpx.NewTime(&t.CreatedAt),
		ExpireTime: httpx.NewTime(t.ExpiresAt), LastUsedTime: httpx.NewTime(t.LastUsedAt), RevokeTime: httpx.NewTime(t.RevokedAt)}
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request) {
	rows, err := a.st.ListTokens(r.Context(), strings.TrimSpace(r.URL.Query().Get("user")))
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]TokenView, 0, len(rows))
	for _, t := range rows {
		out = append(out, tokenView(t))
	}
	httpx.OK(w, out)
}

type createTokenReq struct {
	User     string `json:"user"`
	Role     string `json:"role"`
	Clusters []ID   `json:"clusters"`
	// Expires is "90d", "12h" or "never"; empty: the role's default.
	Expires string `json:"expires"`
}

// createToken answers the new token once; it is stored only hashed.
func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	var req createTokenReq
	if err := httpx.Decode(w, r, &req); err != nil {
		fail(w, err)
		return
	}
	spec, err := tokenSpec(req)
	if err != nil {
		fail(w, err)
		return
	}
	tok, rec, err := auth.CreateToken(r.Context(), a.st, spec)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, httpx.NotFound("%v: grant only clusters that exist", err))
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	note(r.Context(), "token %d for %s, role %s", rec.ID, spec.User, spec.Role)
	rows, err := a.st.ListTokens(r.Context(), spec.User)
	if err != nil {
		fail(w, err)
		return
	}
	v := TokenView{ID: rec.ID, User: spec.User, Role: rec.Role, Clusters: []int64{}}
	for _, row := range rows {
		if row.ID == rec.ID {
			v = tokenView(row)
		}
	}
	v.Token = tok
	httpx.OK(w, v)
}

func tokenSpec(req createTokenReq) (auth.TokenSpec, error) {
	if req.User == "" {
		return auth.TokenSpec{}, httpx.BadRequest("user is required")
	}
	if err := auth.ValidUserName(req.User); err != nil {
		return auth.TokenSpec{}, httpx.BadRequest("user: %v", err)
	}
	if req.Role == "" {
		return auth.TokenSpec{}, httpx.BadRequest("role is required: admin, operator or viewer")
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return auth.TokenSpec{}, httpx.BadRequest("%v", err)
	}
	life := auth.DefaultLifetime(role)
	if req.Expires != "" {
		if life, err = auth.ParseLifetime(req.Expires); err != nil {
			return auth.TokenSpec{}, httpx.BadRequest("%v", err)
		}
	}
	spec := auth.TokenSpec{User: req.User, Role: role, Lifetime: life}
	for i, c := range req.Clusters {
		if c <= 0 {
			return auth.TokenSpec{}, httpx.BadRequest("clusters[%d] must be a positive cluster id", i)
		}
		spec.Clusters = append(spec.Clusters, int64(c))
	}
	if role == auth.Admin && len(spec.Clusters) > 0 {
		return auth.TokenSpec{}, httpx.BadRequest("clusters: an admin token reaches every cluster; grant clusters to operators and viewers")
	}
	return spec, nil
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "tokenId")
	if err != nil {
		fail(w, err)
		return
	}
	changed, err := a.st.RevokeToken(r.Context(), id, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		fail(w, httpx.NotFound("token %d does not exist", id))
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	if changed {
		note(r.Context(), "token %d revoked", id)
	} else {
		note(r.Context(), "token %d was revoked already", id)
	}
	httpx.OK(w, nil)
}

// grantTarget reads the user and cluster of a grant route.
func (a *api) grantTarget(r *http.Request) (store.User, int64, error) {
	name := chi.URLParam(r, "user")
	if err := auth.ValidUserName(name); err != nil {
		return store.User{}, 0, httpx.BadRequest("user: %v", err)
	}
	id, err := pathID(r, "clusterId")
	if err != nil {
		return store.User{}, 0, err
	}
	u, err := a.st.RequireUser(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, 0, httpx.NotFound("%v", err)
	}
	return u, id, err
}

func (a *api) grant(w http.ResponseWriter, r *http.Request) {
	u, id, err := a.grantTarget(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := a.st.AddGrant(r.Context(), u.ID, id); errors.Is(err, store.ErrNotFound) {
		fail(w, httpx.NotFound("cluster %d does not exist", id))
		return
	} else if err != nil {
		fail(w, err)
		return
	}
	note(r.Context(), "cluster %d granted to %s", id, u.Name)
	httpx.OK(w, nil)
}

func (a *api) revokeGrant(w http.ResponseWriter, r *http.Request) {
	u, id, err := a.grantTarget(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := a.st.RemoveGrant(r.Context(), u.ID, id); errors.Is(err, store.ErrNotFound) {
		fail(w, httpx.NotFound("%s is not granted cluster %d", u.Name, id))
		return
	} else if err != nil {
		fail(w, err)
		return
	}
	note(r.Context(), "cluster %d no longer granted to %s", id, u.Name)
	httpx.OK(w, nil)
}

// AuditView is an audit entry as the API shows it.
type AuditView struct {
	ID               int64       `json:"id"`
	Time             *httpx.Time `json:"time"`
	User             string      `json:"user"`
	TokenID          int64       `json:"tokenId"`
	Role             string      `json:"role"`
	Remote           string      `json:"remote"`
	Method           string      `json:"method"`
	Route            string      `json:"route"`
	ClusterID        int64       `json:"clusterId"`
	ProcessID        int64       `json:"processId"`
	TaskID           int64       `json:"taskId"`
	Hosts            string      `json:"hosts"`
	Status           int         `json:"status"`
	Reason           string      `json:"reason"`
	CreatedProcessID int64       `json:"createdProcessId"`
}

// AuditViewOf converts a stored entry.
func AuditViewOf(e store.AuditEntry) AuditView {
	return AuditView{ID: e.ID, Time: httpx.NewTime(&e.At), User: e.UserName, TokenID: e.TokenID, Role: e.Role, Remote: e.Remote,
		Method: e.Method, Route: e.Route, ClusterID: e.ClusterID, ProcessID: e.ProcessID, TaskID: e.TaskID, Hosts: e.Hosts,
		Status: e.Status, Reason: e.Reason, CreatedProcessID: e.CreatedProcessID}
}

// listAudit answers one page of entries, newest first; next is the
// "before" of the following page (null on the last).
func (a *api) listAudit(w http.ResponseWriter, r *http.Request) {
	q, err := audit.ParseQuery(r.URL.Query().Get, time.Now())
	if err != nil {
		fail(w, err)
		return
	}
	es, err := a.st.ListAudit(r.Context(), q)
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Entries []AuditView `json:"entries"`
		Next    *int64      `json:"next"`
	}{Entries: make([]AuditView, 0, len(es))}
	for _, e := range es {
		out.Entries = append(out.Entries, AuditViewOf(e))
	}
	limit := q.Limit
	if limit == 0 {
		limit = store.DefaultAuditPage
	}
	if len(es) == limit {
		next := es[len(es)-1].ID
		out.Next = &next
	}
	httpx.OK(w, out)
}
