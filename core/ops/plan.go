package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/sdk"
)

// Doris's order. Rolling work (restart, upgrade, scale-in) goes one node
// at a time: BEs, then brokers (and other roles), then FE observers, then
// followers, the master last, so the cluster keeps serving and changes its
// master once at most. Starting goes the other way round: the master FE
// first, the other FEs one at a time, then the rest; stopping a whole
// cluster stops the master last.

// rollingRank orders nodes for rolling work.
func rollingRank(r store.AgentRole, master string) int {
	switch {
	case r.Role == process.RoleBE:
		return 0
	case r.Role == process.RoleBroker:
		return 1
	case r.Role != process.RoleFE:
		return 2
	case r.Host == master:
		return 5
	case r.FENodeType == process.FEObserver:
		return 3
	}
	return 4
}

func sortRolling(rs []store.AgentRole, master string) []store.AgentRole {
	out := append([]store.AgentRole(nil), rs...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rollingRank(out[i], master), rollingRank(out[j], master)
		if ri != rj {
			return ri < rj
		}
		return out[i].Host < out[j].Host
	})
	return out
}

// planner builds the tasks of one operation in one lane (TaskRole ""),
// ordered by Seq: tasks of the same Seq run together.
type planner struct {
	c     cluster
	seq   int
	tasks []store.Task
}

func (p *planner) add(taskType string, r store.AgentRole, seq int, in Input) {
	in.ClusterID, in.Host, in.Role = p.c.ID, r.Host, r.Role
	in.Order = roleexec.RestoreOrder(r.Role, r.Host == p.c.master && r.Role == process.RoleFE)
	b, _ := json.Marshal(in)
	p.tasks = append(p.tasks, store.Task{Host: r.Host, TaskType: taskType, Seq: seq, Input: string(b)})
	if seq >= p.seq {
		p.seq = seq + 1
	}
}

// oneAtATime adds a task per node, each with its own Seq, in rolling order.
func (p *planner) oneAtATime(taskType string, rs []store.AgentRole, in Input) {
	base := p.seq
	for i, r := range sortRolling(rs, p.c.master) {
		p.add(taskType, r, base+i, in)
	}
}

// stop adds STOP_NODE tasks: everything but FEs at once, then the FEs
// other than the master, then the master.
func (p *planner) stop(rs []store.AgentRole) {
	base := p.seq
	for _, r := range rs {
		rank := rollingRank(r, p.c.master)
		seq := base
		switch {
		case rank == 5:
			seq = base + 2
		case rank >= 3:
			seq = base + 1
		}
		p.add(TaskStop, r, seq, Input{})
	}
}

// start adds START_NODE tasks: the master FE, each other FE on its own,
// then everything else at once.
func (p *planner) start(rs []store.AgentRole) {
	base := p.seq
	sorted := sortRolling(rs, p.c.master)
	var fes, rest []store.AgentRole
	for _, r := range sorted {
		if r.Role == process.RoleFE {
			fes = append(fes, r)
		} else {
			rest = append(rest, r)
		}
	}
	// The master, then the followers (the metadata's quorum), then observers.
	startRank := func(r store.AgentRole) int {
		switch {
		case r.Host == p.c.master:
			return 0
		case r.FENodeType == process.FEObserver:
			return 2
		}
		return 1
	}
	sort.SliceStable(fes, func(i, j int) bool { return startRank(fes[i]) < startRank(fes[j]) })
	seq := base
	for _, r := range fes {
		p.add(TaskStart, r, seq, Input{})
		seq++
	}
	for _, r := range rest {
		p.add(TaskStart, r, seq, Input{})
	}
}

// Stop stops the named roles (every role when none is named).
func (e *Engine) Stop(ctx context.Context, userID, clusterID int64, nodes []Node) (int64, error) {
	return e.create(ctx, userID, clusterID, OpStop, func(c cluster) (plan, error) {
		rs, err := c.nodes("nodes", nodes)
		if err != nil {
			return plan{}, err
		}
		p := &planner{c: c}
		p.stop(rs)
		return plan{tasks: p.tasks}, nil
	})
}

// Start starts the named roles (every role when none is named), each
// healthy before the next: the master FE first.
func (e *Engine) Start(ctx context.Context, userID, clusterID int64, nodes []Node) (int64, error) {
	return e.create(ctx, userID, clusterID, OpStart, func(c cluster) (plan, error) {
		rs, err := c.nodes("nodes", nodes)
		if err != nil {
			return plan{}, err
		}
		p := &planner{c: c}
		p.start(rs)
		return plan{tasks: p.tasks}, nil
	})
}

// Restart restarts the named roles: rolling (one node at a time, each
// healthy and alive in the cluster before the next, in Doris's order), or
// all at once (stop all, then start all).
func (e *Engine) Restart(ctx context.Context, userID, clusterID int64, nodes []Node, rolling bool) (int64, error) {
	return e.create(ctx, userID, clusterID, OpRestart, func(c cluster) (plan, error) {
		rs, err := c.nodes("nodes", nodes)
		if err != nil {
			return plan{}, err
		}
		p := &planner{c: c}
		if rolling {
			p.oneAtATime(TaskRestart, rs, Input{Rolling: true})
		} else {
			p.stop(rs)
			p.start(rs)
		}
		return plan{tasks: p.tasks}, nil
	})
}

// ScaleInRequest is the body of scaleIn.
type ScaleInRequest struct {
	Nodes []Node
	Force bool // unregister even when the cluster cannot move the node's data away
	Purge bool // remove the data dirs too
}

// ScaleIn takes the named roles out of the cluster one at a time (the
// cluster moves their data away first), stops them and removes their files.
func (e *Engine) ScaleIn(ctx context.Context, userID, clusterID int64, r ScaleInRequest) (int64, error) {
	return e.create(ctx, userID, clusterID, OpScaleIn, func(c cluster) (plan, error) {
		if len(r.Nodes) == 0 {
			return plan{}, invalid("nodes: list the {host, role} to remove (to remove the whole cluster, use destroy)")
		}
		rs, err := c.nodes("nodes", r.Nodes)
		if err != nil {
			return plan{}, err
		}
		if err := c.canRemove(rs); err != nil {
			return plan{}, err
		}
		p := &planner{c: c}
		p.oneAtATime(TaskScaleIn, rs, Input{Force: r.Force, Purge: r.Purge})
		return plan{tasks: p.tasks}, nil
	})
}

// canRemove refuses to remove the master FE or the last FE follower: the
// cluster would lose its metadata's quorum.
func (c cluster) canRemove(rs []store.AgentRole) error {
	gone := map[string]bool{}
	for _, r := range rs {
		if r.Role == process.RoleFE {
			if r.Host == c.master {
				return invalid("nodes: FE on %s is the master: it cannot be removed (restart it so another follower becomes master, then scale it in)", r.Host)
			}
			gone[r.Host] = true
		}
	}
	if len(gone) == 0 {
		return nil
	}
	followers, left := 0, 0
	for _, r := range c.roles {
		if r.Role == process.RoleFE && r.FENodeType != process.FEObserver {
			followers++
			if !gone[r.Host] {
				left++
			}
		}
	}
	if left == 0 {
		return invalid("nodes: removing them leaves no FE follower, and the cluster's metadata needs one")
	}
	return nil
}

// UpgradeRequest is the body of upgrade.
type UpgradeRequest struct {
	PackageURL    string
	PackageSHA256 string // else the checksum published beside the package
	// AllowUnverifiedPackage lets the package be installed unchecked when
	// no checksum is given or published.
	AllowUnverifiedPackage bool
	Nodes                  []Node
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Upgrade installs a new package on the named roles (every role whose
// plugin can upgrade, when none is named), one node at a time in Doris's
// order, stopping at the first failure.
func (e *Engine) Upgrade(ctx context.Context, userID, clusterID int64, r UpgradeRequest) (int64, error) {
	if err := checkPackageURL(r.PackageURL); err != nil {
		return 0, err
	}
	if r.PackageSHA256 != "" && !sha256Hex.MatchString(r.PackageSHA256) {
		return 0, invalid("packageSha256 must be 64 hex digits (the package's SHA-256), or left out")
	}
	return e.create(ctx, userID, clusterID, OpUpgrade, func(c cluster) (plan, error) {
		rs, err := c.nodes("nodes", r.Nodes)
		if err != nil {
			return plan{}, err
		}
		if len(r.Nodes) == 0 {
			if rs, err = e.onlyCapable(ctx, c.ID, rs, sdk.CapUpgrade); err != nil {
				return plan{}, err
			}
			if len(rs) == 0 {
				return plan{}, invalid("no role of cluster %d has a plugin that can upgrade", c.ID)
			}
		} else if err := e.capable(ctx, c.ID, rs, sdk.CapUpgrade, "upgrade"); err != nil {
			return plan{}, err
		}
		// Last of the checks: it goes over the network.
		sums, err := process.PackageChecksums(ctx, e.sums, e.log.With("cluster", c.ID), r.PackageURL, strings.ToLower(r.PackageSHA256), r.AllowUnverifiedPackage)
		if err != nil {
			return plan{}, err
		}
		// Stored with its password sealed; the UPGRADE_NODE task opens it.
		stored, err := process.SealPackageURL(e.sealer, "packageUrl", r.PackageURL)
		if err != nil {
			return plan{}, err
		}
		p := &planner{c: c}
		p.oneAtATime(TaskUpgrade, rs, Input{PackageURL: stored, PackageSHA256: sums.SHA256, PackageSHA512: sums.SHA512,
			PackageSumFrom: sums.From, PackageUnverified: sums.Unverified})
		return plan{tasks: p.tasks, packageURL: stored}, nil
	})
}

func (e *Engine) onlyCapable(ctx context.Context, clusterID int64, rs []store.AgentRole, capability string) ([]store.AgentRole, error) {
	if e.catalogue == nil {
		return nil, fmt.Errorf("no role catalogue is configured")
	}
	cat, err := e.catalogue(ctx, clusterID)
	if err != nil {
		return nil, fmt.Errorf("role plugins of cluster %d: %w", clusterID, err)
	}
	var out []store.AgentRole
	for _, r := range rs {
		if hasCapability(cat[r.Role], capability) {
			out = append(out, r)
		}
	}
	return out, nil
}

func checkPackageURL(s string) error {
	switch {
	case s == "":
		return invalid("packageUrl is required: the http(s) URL of the new package")
	case len(s) > 2048:
		return invalid("packageUrl is longer than 2048 characters")
	case !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://"):
		return invalid("packageUrl %q must be an http:// or https:// URL", redact.String(s))
	case strings.ContainsAny(s, " \t\r\n\x00"):
		return invalid("packageUrl must not contain spaces or control characters")
	}
	host := strings.SplitN(strings.SplitN(s, "://", 2)[1], "/", 2)[0]
	if host == "" {
		return invalid("packageUrl %q has no host", redact.String(s))
	}
	if secret.IsSealedURL(s) {
		return invalid("packageUrl %q: its password begins with %q, which marks a password the manager sealed: send the URL with its own password", redact.String(s), secret.SealedPrefix)
	}
	return nil
}

// ConfigRequest is the body of config.
type ConfigRequest struct {
	Role   string
	Hosts  []string // none: every host of the role
	Conf   string   // the whole new config file
	DryRun bool
}

// Config changes a role's config on some hosts: each node's diff against
// what is deployed, keys the role can change live applied live and written
// to the file, then a rolling restart of the nodes whose change needs one.
// DryRun reports the diff and each key's impact and changes nothing.
func (e *Engine) Config(ctx context.Context, userID, clusterID int64, r ConfigRequest) (int64, error) {
	role := strings.ToUpper(strings.TrimSpace(r.Role))
	if role == "" {
		return 0, invalid("role is required: the role whose config changes (FE, BE, BROKER...)")
	}
	if strings.TrimSpace(r.Conf) == "" {
		return 0, invalid("conf is required: the whole new content of the %s config file", role)
	}
	if len(r.Conf) > process.MaxConf {
		return 0, invalid("conf is %d bytes: at most %d (256 KiB)", len(r.Conf), process.MaxConf)
	}
	return e.create(ctx, userID, clusterID, OpConfig, func(c cluster) (plan, error) {
		var nodes []Node
		for _, h := range r.Hosts {
			nodes = append(nodes, Node{Host: h, Role: role})
		}
		if len(nodes) == 0 {
			for _, x := range c.roles {
				if x.Role == role {
					nodes = append(nodes, Node{Host: x.Host, Role: role})
				}
			}
			if len(nodes) == 0 {
				return plan{}, invalid("role: cluster %d has no %s (see roleList)", c.ID, role)
			}
		}
		rs, err := c.nodes("hosts", nodes)
		if err != nil {
			return plan{}, err
		}
		if err := e.capable(ctx, c.ID, rs, sdk.CapReconfigure, "change its config"); err != nil {
			return plan{}, err
		}
		p := &planner{c: c}
		for _, x := range sortRolling(rs, c.master) {
			p.add(TaskReconfigure, x, 0, Input{Conf: r.Conf, DryRun: r.DryRun})
		}
		if !r.DryRun {
			p.oneAtATime(TaskRestart, rs, Input{Rolling: true, IfRestartNeeded: true})
		}
		return plan{tasks: p.tasks}, nil
	})
}

// DestroyRequest is the body of destroy.
type DestroyRequest struct {
	Confirm string // the cluster's name
	Purge   bool   // remove the data dirs too
}

// Destroy stops every role, removes the roles' folders and the agents, and
// marks the cluster destroyed.
func (e *Engine) Destroy(ctx context.Context, userID, clusterID int64, r DestroyRequest) (int64, error) {
	return e.create(ctx, userID, clusterID, OpDestroy, func(c cluster) (plan, error) {
		switch {
		case r.Confirm == "":
			return plan{}, invalid("confirm is required: the cluster's name, %q, to show you mean it", c.Name)
		case r.Confirm != c.Name:
			return plan{}, invalid("confirm %q is not the name of cluster %d: send %q", truncate(r.Confirm, 64), c.ID, c.Name)
		}
		p := &planner{c: c}
		p.stop(c.roles)
		removeSeq := p.seq
		for _, x := range c.roles {
			p.add(TaskRemove, x, removeSeq, Input{Purge: r.Purge})
		}
		agentSeq := p.seq
		for _, a := range c.agents {
			b, _ := json.Marshal(Input{ClusterID: c.ID, Host: a.Host})
			p.tasks = append(p.tasks, store.Task{Host: a.Host, TaskType: TaskRemoveAgent, Seq: agentSeq, Input: string(b)})
		}
		b, _ := json.Marshal(Input{ClusterID: c.ID})
		p.tasks = append(p.tasks, store.Task{TaskType: TaskDestroy, Seq: agentSeq + 1, Input: string(b)})
		return plan{tasks: p.tasks}, nil
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
