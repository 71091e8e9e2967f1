package pkgrelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/redact"
)

// Authenticate maps a request on the agent endpoint to the agent whose
// certificate made it (core/agents.Registry.Authenticate); its errors are
// httpx errors.
type Authenticate func(*http.Request) (store.Agent, error)

// packageInput is what a task's input says of its package (task.Role and
// the day-2 operations' input share these names).
type packageInput struct {
	ClusterID     int64  `json:"clusterId"`
	Host          string `json:"host"`
	PackageURL    string `json:"packageUrl"`
	PackageSHA256 string `json:"packageSha256"`
	PackageSHA512 string `json:"packageSha512"`
}

// Handler serves GET <prefix>/<sha256>?task=<id> (wire.PackagesPath) on
// the agent endpoint: the package of a RUNNING task, to the agent of that
// task's host and cluster only, so the relay fetches nothing but the
// package URLs of processes and hands them to nobody else. Range requests
// are answered (an interrupted transfer resumes). A manager that does not
// keep the package fetches it first (with several managers, each at most once).
func (r *Relay) Handler(auth Authenticate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			httpx.Fail(w, httpx.Errorf(http.StatusMethodNotAllowed, "use GET"))
			return
		}
		a, err := auth(req)
		if err != nil {
			httpx.Fail(w, err)
			return
		}
		sum := norm(path.Base(req.URL.Path))
		if err := (Sums{SHA256: sum}).check(); err != nil || sum == "" {
			httpx.Fail(w, httpx.Errorf(http.StatusBadRequest, "the path must end in the package's sha256 (64 hex digits)"))
			return
		}
		taskID, err := strconv.ParseInt(req.URL.Query().Get("task"), 10, 64)
		if err != nil || taskID <= 0 {
			httpx.Fail(w, httpx.Errorf(http.StatusBadRequest, "task: the id of the task the package is for is required"))
			return
		}
		in, err := r.allowed(req, a, taskID, sum)
		if err != nil {
			r.log.Warn("refused a package request", "host", a.Host, "cluster", a.ClusterID, "task", taskID, "error", err)
			httpx.Fail(w, err)
			return
		}
		f, e, done, err := r.open(sum)
		if err != nil {
			// The task's input keeps the URL's password sealed.
			url, err := secret.OpenURLPassword(r.cfg.Secrets, in.PackageURL)
			if err != nil {
				r.log.Error("cannot fetch a package for the hosts", "task", taskID, "error", err)
				httpx.Fail(w, httpx.Errorf(http.StatusInternalServerError, "task %d: %v", taskID, err))
				return
			}
			if _, err := r.Fetch(req.Context(), url, Sums{sum, in.PackageSHA512}, taskID); err != nil {
				httpx.Fail(w, httpx.Errorf(http.StatusBadGateway, "%s", redact.String(err.Error())))
				return
			}
			if f, e, done, err = r.open(sum); err != nil {
				httpx.Fail(w, httpx.Errorf(http.StatusServiceUnavailable, "package %s was removed (cache size limit): ask again", sum))
				return
			}
		}
		defer done()
		if in.PackageSHA512 != "" && norm(in.PackageSHA512) != e.SHA512 {
			httpx.Fail(w, httpx.Errorf(http.StatusConflict, "the kept package %s does not have the task's SHA-512", sum))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+sum+`"`)
		http.ServeContent(w, req, "", time.Time{}, f)
	})
}

// allowed checks that task taskID is RUNNING on the agent's host in its
// cluster and installs a package that may be sum.
func (r *Relay) allowed(req *http.Request, a store.Agent, taskID int64, sum string) (packageInput, error) {
	refuse := httpx.Errorf(http.StatusForbidden, "task %d is not a running task of %s with a package %s", taskID, a.Host, sum)
	t, err := r.cfg.Store.GetTask(req.Context(), taskID)
	if errors.Is(err, store.ErrNotFound) {
		return packageInput{}, refuse
	}
	if err != nil {
		return packageInput{}, fmt.Errorf("task %d: %w", taskID, err)
	}
	var in packageInput
	if json.Unmarshal([]byte(t.Input), &in) != nil {
		return in, refuse
	}
	switch {
	case t.Status != store.StatusRunning, t.Host != a.Host, in.ClusterID != a.ClusterID, in.PackageURL == "",
		in.PackageSHA256 != "" && norm(in.PackageSHA256) != sum:
		return in, refuse
	}
	return in, nil
}
