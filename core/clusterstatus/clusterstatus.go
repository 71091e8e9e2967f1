// Package clusterstatus keeps the state of every node of every cluster,
// refreshed in the background by asking each node's role plugin for its
// Status through the node's agent, so GET /api/cluster/{id}/status answers
// from memory at once, with when each node was last checked. What the
// cluster says of a node's membership is written to the node's record
// when it changes, which roleList shows.
//
// With several managers on one database one of them asks (the leader of
// the job "cluster-status", core/leader) and records the answers in the
// store (store.NodeObservation); every manager reads them from there each
// Interval, so the nodes are asked once, not once per manager. A refresh
// kicked after an operation runs on the manager that ran it, and is
// recorded the same way.
package clusterstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/leader"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// Node statuses.
const (
	StatusUp              = "UP"
	StatusDown            = "DOWN"
	StatusStopped         = "STOPPED"
	StatusDecommissioning = "DECOMMISSIONING"
	StatusUnknown         = "UNKNOWN"
)

// Defaults of Config.
const (
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 10 * time.Second
)

// Plugins hands out a cluster's role plugins (core/pluginhost).
type Plugins interface {
	Role(ctx context.Context, clusterID int64, role string, taskLog io.Writer) (sdk.Remote, error)
}

// Config wires a Cache.
type Config struct {
	Store   *store.Store
	Exec    *roleexec.Executor
	Plugins Plugins
	// Interval between refreshes of every cluster (DefaultInterval).
	Interval time.Duration
	// Timeout bounds one node's Status call (DefaultTimeout).
	Timeout time.Duration
	// Parallel bounds the Status calls in flight (default 8).
	Parallel int
	// Leader elects the manager that refreshes every cluster each
	// Interval; nil: this one always does (tests).
	Leader *leader.Elector
	Logger hclog.Logger
}

// Cache is the status of the nodes as last seen. It is safe for
// concurrent use; Run refreshes it.
type Cache struct {
	cfg     Config
	log     hclog.Logger
	mu      sync.Mutex
	seen    map[nodeKey]observation
	clients map[hostKey]*agentclient.Client
	kick    chan int64
}

type nodeKey struct {
	cluster    int64
	host, role string
}

type hostKey struct {
	cluster int64
	host    string
}

// observation is one Status call's outcome.
type observation struct {
	facts sdk.Facts // nil when the call failed
	err   string
	asked time.Time // when the call began
	at    time.Time // when it ended
}

// New returns a Cache; nothing is asked until Run.
func New(cfg Config) *Cache {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Cache{cfg: cfg, log: cfg.Logger, seen: map[nodeKey]observation{}, clients: map[hostKey]*agentclient.Client{},
		kick: make(chan int64, 64)}
}

// Kick asks for a refresh of one cluster soon (after an operation changed
// it); it never blocks.
func (c *Cache) Kick(clusterID int64) {
	select {
	case c.kick <- clusterID:
	default:
	}
}

// JobName is the periodic job whose leader refreshes every cluster.
const JobName = "cluster-status"

// Run refreshes every cluster every Interval when this manager leads the
// job, else reads what was recorded (by the leader, or any manager's
// kicked refresh) every Interval, and refreshes a kicked cluster at once,
// until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	if c.cfg.Leader != nil {
		defer c.cfg.Leader.Close()
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	c.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.tick(ctx)
		case id := <-c.kick:
			c.Refresh(ctx, id)
		}
	}
}

// tick refreshes every cluster on the leader; the others read what it
// (or a kicked refresh anywhere) recorded. The leader reads nothing back:
// its own refresh is the newest there is, and on SQLite it is alone.
func (c *Cache) tick(ctx context.Context) {
	if c.cfg.Leader == nil || c.cfg.Leader.Leading(ctx) {
		c.refreshAll(ctx)
		return
	}
	c.load(ctx)
}

// load replaces the cache with the observations recorded in the store,
// keeping this manager's own where they are newer (not yet visible, or
// recorded after the read began).
func (c *Cache) load(ctx context.Context) {
	recs, err := c.cfg.Store.Observations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("read the nodes' status recorded by the managers", "error", err)
		}
		return
	}
	seen := make(map[nodeKey]observation, len(recs))
	for _, r := range recs {
		o := observation{err: r.Error, asked: r.AskedAt, at: r.CheckedAt}
		if r.Facts != "" {
			if err := json.Unmarshal([]byte(r.Facts), &o.facts); err != nil {
				o.facts, o.err = nil, fmt.Sprintf("recorded status unreadable: %v", err)
			}
		}
		seen[nodeKey{r.ClusterID, r.Host, r.Role}] = o
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, mine := range c.seen {
		if o, ok := seen[k]; ok && mine.at.After(o.at) {
			seen[k] = mine
		}
	}
	c.seen = seen
}

func (c *Cache) refreshAll(ctx context.Context) {
	ids, err := c.cfg.Store.ClustersWithRoles(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("list clusters to refresh their status", "error", err)
		}
		return
	}
	for _, id := range ids {
		c.Refresh(ctx, id)
	}
	if ctx.Err() == nil {
		if err := c.cfg.Store.KeepObservations(ctx, ids); err != nil {
			c.log.Warn("forget the status of clusters gone", "error", err)
		}
	}
}

// Refresh asks every node of a cluster for its Status now and waits for
// the answers (each bounded by Timeout).
func (c *Cache) Refresh(ctx context.Context, clusterID int64) {
	cl, err := c.cfg.Exec.ClusterView(ctx, clusterID, 0)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("cluster status", "cluster", clusterID, "error", err)
		}
		return
	}
	sem := make(chan struct{}, c.cfg.Parallel)
	var wg sync.WaitGroup
	recs := make([]store.NodeObservation, len(cl.Nodes))
	for i, n := range cl.Nodes {
		wg.Add(1)
		go func(n sdk.Node) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o := c.ask(ctx, cl, n)
			if ctx.Err() != nil {
				return
			}
			k := nodeKey{clusterID, n.Host, n.Role}
			c.mu.Lock()
			c.seen[k] = o
			c.mu.Unlock()
			c.recordMembership(ctx, k, n, o)
			recs[i] = record(n, o)
		}(n)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	if err := c.cfg.Store.SaveObservations(ctx, clusterID, recs); err != nil {
		c.log.Warn("record the nodes' status for the other managers", "cluster", clusterID, "error", err)
	}
	// Forget nodes that left the cluster.
	keep := map[nodeKey]bool{}
	for _, n := range cl.Nodes {
		keep[nodeKey{clusterID, n.Host, n.Role}] = true
	}
	c.mu.Lock()
	for k := range c.seen {
		if k.cluster == clusterID && !keep[k] {
			delete(c.seen, k)
		}
	}
	c.mu.Unlock()
}

// record is an observation as the store keeps it.
func record(n sdk.Node, o observation) store.NodeObservation {
	r := store.NodeObservation{Host: n.Host, Role: n.Role, Error: o.err, AskedAt: o.asked, CheckedAt: o.at}
	if o.facts != nil {
		b, _ := json.Marshal(o.facts) // a map of strings always encodes
		r.Facts = string(b)
	}
	return r
}

// recordMembership writes what the cluster says of a node's membership
// (Status's registered fact) to its record when the record says otherwise
// (n is the record as the refresh began): roleList's register and the
// registered fact later plugin calls get follow the cluster, not what the
// manager once did, and nobody waits for a host to read them. A record a
// task changed after the question was asked is left alone (the task knows
// better than an older answer); the next refresh asks again.
func (c *Cache) recordMembership(ctx context.Context, k nodeKey, n sdk.Node, o observation) {
	reg, known := o.facts.Bool(sdk.FactRegistered)
	if !known {
		return
	}
	if was, ok := n.Facts.Bool(sdk.FactRegistered); ok && was == reg {
		return
	}
	key := store.RoleKey{ClusterID: k.cluster, Host: k.host, Role: k.role}
	_, err := c.cfg.Store.RecordMembership(ctx, key, reg, o.asked)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The node left the manager's records meanwhile (scale-in).
	case err != nil && ctx.Err() == nil:
		c.log.Warn("record what the cluster says of a node's membership", "node", key.String(), "error", err)
	}
}

// ask calls one node's Status.
func (c *Cache) ask(ctx context.Context, cl sdk.Cluster, n sdk.Node) observation {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	now := time.Now().UTC()
	client, err := c.client(ctx, cl.ID, n.Host)
	if err != nil {
		return observation{err: err.Error(), asked: now, at: now}
	}
	rm, err := c.cfg.Plugins.Role(ctx, cl.ID, n.Role, nil)
	if err != nil {
		return observation{err: err.Error(), asked: now, at: now}
	}
	res, err := rm.Status(ctx, c.cfg.Exec.ProbeHost(client, cl), sdk.Request{Node: n, Cluster: cl, Targets: []sdk.Node{n}})
	if err != nil {
		var gone *agentclient.AgentGoneError
		if errors.As(err, &gone) || errors.Is(err, agentclient.ErrHandshake) {
			c.dropClient(cl.ID, n.Host) // the agent may come back elsewhere (a reinstall)
		}
		return observation{err: err.Error(), asked: now, at: time.Now().UTC()}
	}
	if res.Facts == nil {
		res.Facts = sdk.Facts{}
	}
	return observation{facts: res.Facts, asked: now, at: time.Now().UTC()}
}

// client keeps one agent client per host, so probes reuse connections.
func (c *Cache) client(ctx context.Context, clusterID int64, host string) (*agentclient.Client, error) {
	k := hostKey{clusterID, host}
	c.mu.Lock()
	cl, ok := c.clients[k]
	c.mu.Unlock()
	if ok {
		return cl, nil
	}
	cl, err := c.cfg.Exec.AgentClient(ctx, clusterID, host)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.clients[k] = cl
	c.mu.Unlock()
	return cl, nil
}

func (c *Cache) dropClient(clusterID int64, host string) {
	c.mu.Lock()
	delete(c.clients, hostKey{clusterID, host})
	c.mu.Unlock()
}

// Master returns the host of the cluster's master FE as last seen; ok is
// false when no FE said.
func (c *Cache) Master(clusterID int64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, o := range c.seen {
		if k.cluster == clusterID && k.role == process.RoleFE {
			if m, known := isMaster(o.facts, k.host); known && m {
				return k.host, true
			}
		}
	}
	return "", false
}

// isMaster reads an FE's "master" fact: "true"/"false", or the master's
// address (host or host:port).
func isMaster(f sdk.Facts, host string) (master, known bool) {
	v, ok := f["master"]
	if !ok || v == "" {
		return false, false
	}
	if b, ok := f.Bool("master"); ok {
		return b, true
	}
	if h, _, err := net.SplitHostPort(v); err == nil {
		v = h
	}
	return v == host, true
}

// View is a cluster's status.
type View struct {
	ClusterID int64
	Name      string
	Destroyed bool
	Nodes     []Node
}

// Node is one node's status.
type Node struct {
	Host        string
	Role        string
	FENodeType  string
	Master      bool
	Status      string
	Alive       *bool // as the cluster sees the node, when reported
	Version     string
	Ports       map[string]int
	Agent       string     // the agent's state: RUNNING, STOP, or NONE
	LastChecked *time.Time // the last Status call; nil before the first
	Detail      string     // why a node is not UP, when known
}

// Status answers from the cache and the store: it never calls an agent.
func (c *Cache) Status(ctx context.Context, clusterID int64) (View, error) {
	cl, err := c.cfg.Store.GetCluster(ctx, clusterID)
	if err != nil {
		return View{}, fmt.Errorf("cluster %d: %w", clusterID, err)
	}
	roles, err := c.cfg.Store.ListRoles(ctx, clusterID)
	if err != nil {
		return View{}, fmt.Errorf("roles of cluster %d: %w", clusterID, err)
	}
	agents, err := c.cfg.Store.ListAgents(ctx, clusterID)
	if err != nil {
		return View{}, fmt.Errorf("agents of cluster %d: %w", clusterID, err)
	}
	byHost := map[string]store.Agent{}
	for _, a := range agents {
		byHost[a.Host] = a
	}
	master, masterKnown := c.Master(clusterID)
	v := View{ClusterID: cl.ID, Name: cl.Name, Destroyed: cl.DestroyedAt != nil, Nodes: []Node{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range roles {
		n := Node{Host: r.Host, Role: r.Role, FENodeType: r.FENodeType, Agent: "NONE"}
		if r.Role == process.RoleFE {
			n.Master = r.Master
			if masterKnown {
				n.Master = r.Host == master
			}
		}
		if r.Ports != "" {
			_ = json.Unmarshal([]byte(r.Ports), &n.Ports)
		}
		var proc *wire.Process
		if a, ok := byHost[r.Host]; ok {
			n.Agent = a.Status
			proc = processOf(a, r.Role)
		}
		o, seen := c.seen[nodeKey{clusterID, r.Host, r.Role}]
		if seen {
			at := o.at
			n.LastChecked = &at
			if alive, ok := o.facts.Bool(sdk.FactAlive); ok {
				n.Alive = &alive
			}
			n.Version = o.facts[sdk.FactVersion]
		}
		n.Status, n.Detail = judge(o, seen, proc, n.Agent)
		v.Nodes = append(v.Nodes, n)
	}
	sort.SliceStable(v.Nodes, func(i, j int) bool {
		if v.Nodes[i].Host != v.Nodes[j].Host {
			return v.Nodes[i].Host < v.Nodes[j].Host
		}
		return v.Nodes[i].Role < v.Nodes[j].Role
	})
	return v, nil
}

// processOf is the agent's last report on a role's process.
func processOf(a store.Agent, role string) *wire.Process {
	var ps []wire.Process
	if json.Unmarshal([]byte(a.Processes), &ps) != nil {
		return nil
	}
	for i := range ps {
		if ps[i].Role == role {
			return &ps[i]
		}
	}
	return nil
}

// judge turns what is known of a node into its status: the role's own
// Status facts first, the agent's process report when those are missing.
func judge(o observation, seen bool, proc *wire.Process, agent string) (string, string) {
	stoppedOnPurpose := proc != nil && proc.Desired == wire.DesiredStopped
	if !seen || o.facts == nil {
		why := "not checked yet"
		if seen {
			why = o.err
		}
		switch {
		case agent == "STOP" || agent == "NONE":
			return StatusUnknown, "the agent does not answer: " + why
		case proc != nil && !proc.Running && stoppedOnPurpose:
			return StatusStopped, ""
		}
		return StatusUnknown, why
	}
	f := o.facts
	if d, _ := f.Bool(sdk.FactDecommissioning); d {
		return StatusDecommissioning, ""
	}
	running, _ := f.Bool(sdk.FactRunning)
	healthy, _ := f.Bool(sdk.FactHealthy)
	alive, aliveKnown := f.Bool(sdk.FactAlive)
	switch {
	case !running && stoppedOnPurpose:
		return StatusStopped, ""
	case !running:
		return StatusDown, "not running"
	case !healthy:
		return StatusDown, "running but not healthy"
	case aliveKnown && !alive:
		return StatusDown, "running and healthy, but the cluster does not see it alive"
	}
	return StatusUp, ""
}
