package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	File         string   `json:"file"` // relative to the plugins dir
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
}

// RefusedFile is a file that is not used, and why.
type RefusedFile struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// ClusterPin is the version a cluster uses for a role. Pinned is false when
// nothing is recorded yet and the cluster would get the highest version.
type ClusterPin struct {
	ClusterID   int64  `json:"clusterId"`
	ClusterName string `json:"clusterName"`
	Role        string `json:"role"`
	Version     string `json:"version"`
	Pinned      bool   `json:"pinned"`
}

// Overview reports the plugins, refused files and every cluster's versions.
func (m *Manager) Overview(ctx context.Context) (Overview, error) {
	l := m.List()
	out := Overview{Dir: m.cfg.Dir, Roles: []RoleVersions{}, Refused: []RefusedFile{}, Clusters: []ClusterPin{}}
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
			SHA256: p.SHA256, File: p.File(m.cfg.Dir), Name: p.Info.Name, Capabilities: caps})
	}
	for _, r := range l.Refused {
		out.Refused = append(out.Refused, RefusedFile{File: relTo(m.cfg.Dir, r.Path), Reason: r.Reason})
	}
	if m.cfg.DB == nil {
		return out, nil
	}
	var clusters []store.Cluster
	if err := m.cfg.DB.WithContext(ctx).Order("id").Find(&clusters).Error; err != nil {
		return out, fmt.Errorf("list clusters: %w", err)
	}
	pins, err := m.Pins(ctx)
	if err != nil {
		return out, err
	}
	pinned := map[[2]string]string{}
	for _, p := range pins {
		pinned[[2]string{fmt.Sprint(p.ClusterID), p.Role}] = p.Version
	}
	for _, c := range clusters {
		roles := sortedKeys(highest)
		for _, p := range pins {
			if p.ClusterID == c.ID && highest[p.Role] == "" {
				roles = append(roles, p.Role) // pinned to a role no longer installed
			}
		}
		for _, role := range roles {
			cp := ClusterPin{ClusterID: c.ID, ClusterName: c.Name, Role: role, Version: highest[role]}
			if v, ok := pinned[[2]string{fmt.Sprint(c.ID), role}]; ok {
				cp.Version, cp.Pinned = v, true
			}
			out.Clusters = append(out.Clusters, cp)
		}
	}
	return out, nil
}

// PinRequest is the body of POST /api/plugins/pin.
type PinRequest struct {
	ClusterID int64  `json:"clusterId"`
	Role      string `json:"role"`
	Version   string `json:"version"`
}

// Handler serves /api/plugins (mount it there, behind auth):
//
//	GET  /        Overview
//	POST /pin     PinRequest -> 409 while the cluster has a running task
//	POST /rescan  re-reads the plugins dir, answers the new Overview
func (m *Manager) Handler() http.Handler {
	r := chi.NewRouter()
	r.Get("/", m.serveOverview)
	r.Post("/pin", m.servePin)
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
	case !validSemver(req.Version):
		httpx.Fail(w, httpx.BadRequest("version %q is not a semantic version like 1.2.0", req.Version))
		return
	}
	if m.cfg.DB != nil {
		var n int64
		if err := m.cfg.DB.WithContext(r.Context()).Model(&store.Cluster{}).Where("id = ?", req.ClusterID).Count(&n).Error; err != nil {
			httpx.Fail(w, err)
			return
		}
		if n == 0 {
			httpx.Fail(w, httpx.NotFound("cluster %d does not exist", req.ClusterID))
			return
		}
	}
	err := m.Pin(r.Context(), req.ClusterID, req.Role, req.Version)
	switch {
	case errors.Is(err, ErrBusy):
		httpx.Fail(w, httpx.Conflict("%v", err))
	case errors.Is(err, ErrNoPlugin):
		httpx.Fail(w, httpx.NotFound("%v", err))
	case err != nil:
		httpx.Fail(w, err)
	default:
		httpx.OK(w, PinInfo{ClusterID: req.ClusterID, Role: req.Role, Version: req.Version})
	}
}
