package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
)

// Overview is the data of GET /api/plugins.
type Overview struct {
	Dir      string         `json:"pluginsDir"`
	Roles    []RoleVersions `json:"roles"`
	Refused  []RefusedFile  `json:"refused"`
	Clusters []ClusterPin   `json:"clusters"`
	// TrustedKeys are the keys plugins must be signed by; KeyProblems says
	// why some (or all) key files were not used.
	TrustedKeys []TrustedKey `json:"trustedKeys"`
	KeyProblems []string     `json:"keyProblems,omitempty"`
}

// TrustedKey is one trusted plugin signing key.
type TrustedKey struct {
	Fingerprint string `json:"fingerprint"`
	File        string `json:"file"`
}

// RoleVersions lists the accepted versions of one role, highest first.
type RoleVersions struct {
	Role     string        `json:"role"`
	Versions []VersionInfo `json:"versions"`
}

// VersionInfo is one accepted plugin binary.
type VersionInfo struct {
	Version      string   `json:"version"`
	APIVersion   string   `json:"apiVersion"` // "1.0"
	SHA256       string   `json:"sha256"`
	File         string   `json:"file"`   // relative to the plugins dir
	Signer       string   `json:"signer"` // fingerprint of the key that signed it
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
}

// RefusedFile is a file that is not used, and why.
type RefusedFile struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// ClusterPin is the version a cluster uses for a role. Pinned is false when
// nothing is recorded yet and the cluster would get the highest version;
// Constraint is the rule of an operator's pin ("" for a pin made at first
// use); Problem says why the pinned version cannot run (refused or not
// installed), "" when it can.
type ClusterPin struct {
	ClusterID   int64  `json:"clusterId"`
	ClusterName string `json:"clusterName"`
	Role        string `json:"role"`
	Version     string `json:"version"`
	Pinned      bool   `json:"pinned"`
	Constraint  string `json:"constraint,omitempty"`
	SHA256      string `json:"sha256,omitempty"` // the binary pinned
	Problem     string `json:"problem,omitempty"`
}

// Overview reports the plugins, refused files, trusted keys and every
// cluster's versions.
func (m *Manager) Overview(ctx context.Context) (Overview, error) {
	l := m.List()
	out := Overview{Dir: m.cfg.Dir, Roles: []RoleVersions{}, Refused: []RefusedFile{}, Clusters: []ClusterPin{}, TrustedKeys: []TrustedKey{}}
	m.mu.Lock()
	keys := m.keys
	m.mu.Unlock()
	for _, k := range keys.List() {
		out.TrustedKeys = append(out.TrustedKeys, TrustedKey{Fingerprint: k.Fingerprint, File: k.File})
	}
	if err := keys.Err(); err != nil {
		out.KeyProblems = append(out.KeyProblems, "no key is trusted: "+err.Error())
	}
	out.KeyProblems = append(out.KeyProblems, keys.Problems()...)
	highest := map[string]string{}
	for _, p := range l.Plugins {
		if len(out.Roles) == 0 || out.Roles[len(out.Roles)-1].Role != p.Role {
			out.Roles = append(out.Roles, RoleVersions{Role: p.Role})
			highest[p.Role] = p.Version
		}
		caps := p.Info.Capabilities
		if caps == nil {
			caps = []string{}
		}
		rv := &out.Roles[len(out.Roles)-1]
		rv.Versions = append(rv.Versions, VersionInfo{Version: p.Version, APIVersion: fmt.Sprintf("%d.%d", p.APIMajor, p.APIMinor),
			SHA256: p.SHA256, File: p.File(m.cfg.Dir), Signer: p.Signer, Name: p.Info.Name, Capabilities: caps})
	}
	for _, r := range l.Refused {
		out.Refused = append(out.Refused, RefusedFile{File: relTo(m.cfg.Dir, r.Path), Reason: r.Reason})
	}
	if m.cfg.Store == nil {
		return out, nil
	}
	clusters, err := m.cfg.Store.ListClusters(ctx)
	if err != nil {
		return out, fmt.Errorf("list clusters: %w", err)
	}
	pins, err := m.cfg.Store.ListPins(ctx)
	if err != nil {
		return out, err
	}
	pinned := map[int64]map[string]store.PluginPin{}
	for _, p := range pins {
		if pinned[p.ClusterID] == nil {
			pinned[p.ClusterID] = map[string]store.PluginPin{}
		}
		pinned[p.ClusterID][p.Role] = p
	}
	for _, c := range clusters {
		roles := sortedKeys(highest)
		for _, role := range sortedKeys(pinned[c.ID]) {
			if highest[role] == "" {
				roles = append(roles, role) // pinned to a role no longer installed
			}
		}
		for _, role := range roles {
			cp := ClusterPin{ClusterID: c.ID, ClusterName: c.Name, Role: role, Version: highest[role]}
			if p, ok := pinned[c.ID][role]; ok {
				cp.Version, cp.Pinned, cp.Constraint, cp.SHA256 = p.Version, true, p.Constraint, p.SHA256
				switch _, err := m.pinned(p); {
				case errors.Is(err, ErrBinaryChanged):
					cp.Problem = err.Error() + "; put the pinned build back, or pin the cluster again to use this one"
				case err != nil:
					cp.Problem = strings.TrimPrefix(err.Error(), ErrNoPlugin.Error()+": ") + "; pin the cluster to an accepted version"
				}
			}
			out.Clusters = append(out.Clusters, cp)
		}
	}
	return out, nil
}

// PinRequest is the body of POST /api/plugins/pin. Version is an exact
// version or a rule (~1.2, ^1.2, ">=1.2 <2"), resolved at once to the
// highest accepted version it matches.
type PinRequest struct {
	ClusterID int64  `json:"clusterId"`
	Role      string `json:"role"`
	Version   string `json:"version"`
}

// Handler serves /api/plugins (mount it there, behind auth; every route is
// for admins only: pins choose the code that runs as the manager):
//
//	GET    /                        Overview
//	POST   /pin                     PinRequest -> PinInfo; 409 while the cluster has a running task
//	DELETE /pin/{clusterId}/{role}  unpin; 409 while the cluster has a running task, 404 without a pin
//	POST   /rescan                  re-reads the plugins dir, answers the new Overview
func (m *Manager) Handler() http.Handler {
	r := chi.NewRouter()
	r.Get("/", m.serveOverview)
	r.Post("/pin", m.servePin)
	r.Delete("/pin/{clusterId}/{role}", m.serveUnpin)
	r.Post("/rescan", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Rescan(r.Context()); err != nil {
			httpx.Fail(w, err)
			return
		}
		m.serveOverview(w, r)
	})
	return r
}

func (m *Manager) serveOverview(w http.ResponseWriter, r *http.Request) {
	o, err := m.Overview(r.Context())
	if err != nil {
		httpx.Fail(w, err)
		return
	}
	httpx.OK(w, o)
}

func (m *Manager) servePin(w http.ResponseWriter, r *http.Request) {
	var req PinRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Fail(w, err)
		return
	}
	req.Role = strings.ToUpper(strings.TrimSpace(req.Role))
	switch {
	case req.ClusterID <= 0:
		httpx.Fail(w, httpx.BadRequest("clusterId must be a positive cluster id"))
		return
	case req.Role == "":
		httpx.Fail(w, httpx.BadRequest("role is required (FE, BE, BROKER...)"))
		return
	}
	if _, err := ParseConstraint(req.Version); err != nil {
		httpx.Fail(w, httpx.BadRequest("version: %v", err))
		return
	}
	if !m.clusterExists(w, r, req.ClusterID) {
		return
	}
	pin, err := m.Pin(r.Context(), req.ClusterID, req.Role, req.Version)
	if err != nil {
		failPin(w, err)
		return
	}
	httpx.OK(w, pin)
}

func (m *Manager) serveUnpin(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "clusterId"), 10, 64)
	if err != nil || id <= 0 {
		httpx.Fail(w, httpx.BadRequest("cluster id %q must be a positive number", chi.URLParam(r, "clusterId")))
		return
	}
	role := strings.ToUpper(strings.TrimSpace(chi.URLParam(r, "role")))
	if !m.clusterExists(w, r, id) {
		return
	}
	if err := m.Unpin(r.Context(), id, role); err != nil {
		failPin(w, err)
		return
	}
	httpx.OK(w, nil)
}

// clusterExists answers 404 for a cluster that does not exist.
func (m *Manager) clusterExists(w http.ResponseWriter, r *http.Request, id int64) bool {
	if m.cfg.Store == nil {
		return true
	}
	_, err := m.cfg.Store.GetCluster(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpx.Fail(w, httpx.NotFound("cluster %d does not exist", id))
		return false
	case err != nil:
		httpx.Fail(w, err)
		return false
	}
	return true
}

func failPin(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBusy):
		httpx.Fail(w, httpx.Conflict("%v", err))
	case errors.Is(err, ErrNoPlugin), errors.Is(err, ErrNotPinned):
		httpx.Fail(w, httpx.NotFound("%v", err))
	case errors.Is(err, ErrBadVersion):
		httpx.Fail(w, httpx.BadRequest("%v", err))
	default:
		httpx.Fail(w, err)
	}
}
