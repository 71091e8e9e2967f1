package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dorismanager/dorismanager/core/clusterstatus"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/ops"
)

// Day-2 operations: /api/cluster/{clusterId}/status and the operations
// (stop, start, restart, scaleIn, upgrade, config, destroy), each a
// process whose tasks show in currentTasks like the wizard's.

// Operations serves the day-2 endpoints.
type Operations struct {
	Engine *ops.Engine
	// Status answers from the status cache (never waits on agents).
	Status func(ctx context.Context, clusterID int64) (clusterstatus.View, error)
}

func (o *Operations) routes(r chi.Router) {
	r.Get("/cluster/{clusterId}/status", o.status)
	r.Post("/cluster/{clusterId}/stop", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *nodesBody) (int64, error) {
		return e.Stop(ctx, user, id, b.nodes())
	}, o))
	r.Post("/cluster/{clusterId}/start", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *nodesBody) (int64, error) {
		return e.Start(ctx, user, id, b.nodes())
	}, o))
	r.Post("/cluster/{clusterId}/restart", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *restartBody) (int64, error) {
		rolling := b.Rolling == nil || *b.Rolling
		return e.Restart(ctx, user, id, b.nodes(), rolling)
	}, o))
	r.Post("/cluster/{clusterId}/scaleIn", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *scaleInBody) (int64, error) {
		return e.ScaleIn(ctx, user, id, ops.ScaleInRequest{Nodes: b.nodes(), Force: b.Force, Purge: b.Purge})
	}, o))
	r.Post("/cluster/{clusterId}/upgrade", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *upgradeBody) (int64, error) {
		return e.Upgrade(ctx, user, id, ops.UpgradeRequest{PackageURL: b.PackageURL, PackageSHA256: b.PackageSHA256,
			AllowUnverifiedPackage: b.AllowUnverifiedPackage, Nodes: b.nodes()})
	}, o))
	r.Post("/cluster/{clusterId}/config", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *configBody) (int64, error) {
		return e.Config(ctx, user, id, ops.ConfigRequest{Role: b.Role, Hosts: b.Hosts, Conf: b.Conf, DryRun: b.DryRun})
	}, o))
	r.Post("/cluster/{clusterId}/destroy", operation(func(ctx context.Context, e *ops.Engine, user, id int64, b *destroyBody) (int64, error) {
		return e.Destroy(ctx, user, id, ops.DestroyRequest{Confirm: b.Confirm, Purge: b.Purge})
	}, o))
}

type nodesBody struct {
	Nodes []struct {
		Host string `json:"host"`
		Role string `json:"role"`
	} `json:"nodes"`
}

func (b *nodesBody) nodes() []ops.Node {
	out := make([]ops.Node, 0, len(b.Nodes))
	for _, n := range b.Nodes {
		out = append(out, ops.Node{Host: n.Host, Role: n.Role})
	}
	return out
}

type restartBody struct {
	nodesBody
	Rolling *bool `json:"rolling"` // default true
}

type scaleInBody struct {
	nodesBody
	Force bool `json:"force"`
	Purge bool `json:"purge"`
}

type upgradeBody struct {
	nodesBody
	PackageURL             string `json:"packageUrl"`
	PackageSHA256          string `json:"packageSha256"`
	AllowUnverifiedPackage bool   `json:"allowUnverifiedPackage"`
}

type configBody struct {
	Role   string   `json:"role"`
	Hosts  []string `json:"hosts"`
	Conf   string   `json:"conf"`
	DryRun bool     `json:"dryRun"`
}

type destroyBody struct {
	Confirm string `json:"confirm"`
	Purge   bool   `json:"purge"`
}

// operation answers an operation's POST: the cluster from the path, the
// body (an empty one is {}), and {"processId": N}.
func operation[B any](run func(ctx context.Context, e *ops.Engine, userID, clusterID int64, body *B) (int64, error), o *Operations) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "clusterId")
		if err != nil {
			fail(w, err)
			return
		}
		var body B
		if r.ContentLength != 0 {
			if err := httpx.Decode(w, r, &body); err != nil {
				fail(w, err)
				return
			}
		}
		pid, err := run(r.Context(), o.Engine, user(r), id, &body)
		if err != nil {
			fail(w, err)
			return
		}
		noteProcess(r.Context(), pid)
		httpx.OK(w, map[string]int64{"processId": pid})
	}
}

// StatusView is a cluster's status as the API shows it.
type StatusView struct {
	ClusterID int64            `json:"clusterId"`
	Name      string           `json:"name"`
	Destroyed bool             `json:"destroyed"`
	Nodes     []NodeStatusView `json:"nodes"`
}

// NodeStatusView is one node's status.
type NodeStatusView struct {
	Host        string         `json:"host"`
	Role        string         `json:"role"`
	FENodeType  *string        `json:"feNodeType"`
	Master      bool           `json:"master"`
	Status      string         `json:"status"`
	Alive       *bool          `json:"alive"`
	Version     *string        `json:"version"`
	Ports       map[string]int `json:"ports"`
	Agent       string         `json:"agent"`
	LastChecked *httpx.Time    `json:"lastChecked"`
	Detail      *string        `json:"detail"`
}

func (o *Operations) status(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "clusterId")
	if err != nil {
		fail(w, err)
		return
	}
	v, err := o.Status(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	out := StatusView{ClusterID: v.ClusterID, Name: v.Name, Destroyed: v.Destroyed, Nodes: make([]NodeStatusView, 0, len(v.Nodes))}
	for _, n := range v.Nodes {
		ports := n.Ports
		if ports == nil {
			ports = map[string]int{}
		}
		out.Nodes = append(out.Nodes, NodeStatusView{Host: n.Host, Role: n.Role, FENodeType: nullable(n.FENodeType), Master: n.Master,
			Status: n.Status, Alive: n.Alive, Version: nullable(n.Version), Ports: ports, Agent: n.Agent,
			LastChecked: httpx.NewTime(n.LastChecked), Detail: nullable(n.Detail)})
	}
	httpx.OK(w, out)
}
