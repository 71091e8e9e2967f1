package api

import (
	"context"
	"net/http"

	"github.com/dorismanager/dorismanager/core/httpx"
)

// AdminAccounts reveals and sets the database admin accounts of clusters
// (core/clusteradmin.Admin). Refusals are *process.Error.
type AdminAccounts interface {
	// Reveal returns the generated password once.
	Reveal(ctx context.Context, clusterID int64) (user, password string, err error)
	// SetAccount records an account after a login with it worked.
	SetAccount(ctx context.Context, clusterID int64, user, password string) error
}

// revealAdminPassword answers POST /api/cluster/{clusterId}/adminPassword/reveal:
// the only answer of the API that carries a password, so no cache keeps it.
func revealAdminPassword(admin AdminAccounts) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if admin == nil {
			fail(w, noAdminAccounts())
			return
		}
		id, err := pathID(r, "clusterId")
		if err != nil {
			fail(w, err)
			return
		}
		user, password, err := admin.Reveal(r.Context(), id)
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.OK(w, map[string]any{"clusterId": id, "user": user, "password": password})
	}
}

// setCredentials answers PUT /api/cluster/{clusterId}/credentials
// {"user","password"}: the account is recorded once a login with it works.
func setCredentials(admin AdminAccounts) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if admin == nil {
			fail(w, noAdminAccounts())
			return
		}
		id, err := pathID(r, "clusterId")
		if err != nil {
			fail(w, err)
			return
		}
		var body struct {
			User     string `json:"user"`
			Password string `json:"password"`
		}
		if err := httpx.Decode(w, r, &body); err != nil {
			fail(w, err)
			return
		}
		if body.User == "" {
			fail(w, httpx.BadRequest("user is required: the cluster's admin account (root unless you use another)"))
			return
		}
		if err := admin.SetAccount(r.Context(), id, body.User, body.Password); err != nil {
			fail(w, err)
			return
		}
		httpx.OK(w, map[string]any{"clusterId": id, "user": body.User})
	}
}

// noAdminAccounts answers when the server runs without cluster admin
// accounts (an API built without them, as in some tests).
func noAdminAccounts() error {
	return httpx.Errorf(http.StatusServiceUnavailable, "cluster admin accounts are not available on this server")
}
