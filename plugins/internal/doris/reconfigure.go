package doris

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// LiveConfig is how a running role is asked which settings it can change
// live, and told to change one. Doris answers for itself (FE SHOW FRONTEND
// CONFIG's IsMutable, BE /api/show_config), so no list is kept here.
type LiveConfig interface {
	// Current returns every key the running process knows: its value and
	// whether it can change it live.
	Current(ctx context.Context, h sdk.Host, host string, d Deployed) (map[string]LiveItem, error)
	// Set changes one key of the running process (not persisted by it).
	Set(ctx context.Context, h sdk.Host, host string, d Deployed, key, value string) error
}

// LiveItem is one setting of a running process.
type LiveItem struct {
	Mutable bool
	Value   string
}

// DiffConf lists the keys whose value differs between two conf files (the
// last line of a key wins, as in Doris), sorted by key. Impact is left
// empty.
func DiffConf(old, new *Conf) []sdk.Change {
	values := func(c *Conf) map[string]string {
		m := map[string]string{}
		if c != nil {
			for _, e := range c.Entries {
				m[e.Key] = e.Value
			}
		}
		return m
	}
	o, n := values(old), values(new)
	var out []sdk.Change
	for k, ov := range o {
		if nv, ok := n[k]; !ok {
			out = append(out, sdk.Change{Key: k, Old: ov})
		} else if nv != ov {
			out = append(out, sdk.Change{Key: k, Old: ov, New: nv})
		}
	}
	for k, nv := range n {
		if _, ok := o[k]; !ok {
			out = append(out, sdk.Change{Key: k, New: nv})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Impact decides how a change takes effect: live only when the process
// runs and says the key is mutable, the key is a setting (lower case; the
// UPPER-case keys are the start scripts' environment), it is set rather
// than removed (a removed key goes back to its default at the next start),
// and its value expands (${VAR}) to one line.
func Impact(c sdk.Change, running bool, current map[string]LiveItem, vars map[string]string) (impact, value string) {
	if !running || c.New == "" || strings.ToUpper(c.Key) == c.Key || !current[c.Key].Mutable {
		return sdk.ImpactRestart, ""
	}
	v, err := Expand(c.New, vars)
	if err != nil || strings.ContainsAny(v, "\r\n\x00") {
		return sdk.ImpactRestart, ""
	}
	return sdk.ImpactLive, v
}

// identityKeys are the keys the cluster knows a node by: changing them
// would make the node a stranger to its cluster.
var identityKeys = map[string][]string{
	RoleFE:     {"edit_log_port", "meta_dir"},
	RoleBE:     {"heartbeat_service_port"},
	RoleBroker: {"broker_ipc_port"},
}

// checkChanges refuses changes that would cut a node off from its cluster
// or lose data: FE edit_log_port and meta_dir, BE heartbeat_service_port
// and the removal of a storage root, broker broker_ipc_port. It returns
// the storage roots a BE change adds.
func checkChanges(s Spec, old, new Deployed, changes []sdk.Change) ([]string, error) {
	var refused []string
	for _, c := range changes {
		for _, k := range identityKeys[s.Role] {
			if c.Key == k {
				refused = append(refused, fmt.Sprintf("%s (%q -> %q)", c.Key, c.Old, c.New))
			}
		}
	}
	if len(refused) > 0 {
		return nil, sdk.Failf("%s cannot change %s: the cluster knows the node by it (or its data is there); scale the node in and out instead",
			s.Role, strings.Join(refused, ", "))
	}
	if s.Role != RoleBE {
		return nil, nil
	}
	before, err := DataDirs(s, old)
	if err != nil {
		return nil, err
	}
	after, err := DataDirs(s, new)
	if err != nil {
		return nil, err
	}
	var added, dropped []string
	for _, p := range before {
		if !contains(after, p) {
			dropped = append(dropped, p)
		}
	}
	for _, p := range after {
		if !contains(before, p) {
			added = append(added, p)
		}
	}
	if len(dropped) > 0 {
		return nil, sdk.Failf("BE cannot drop storage root %s: the replicas on it would be lost; decommission the BE (scale-in) first", strings.Join(dropped, ", "))
	}
	return added, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ReconfigureWith compares req.Conf with the deployed conf and reports each
// changed key with its impact. With req.DryRun it changes nothing.
// Otherwise it applies the live keys to the running process (live; nil:
// none is live), creates added BE storage roots, and writes the file;
// FactRestartNeeded says whether a key needs a restart of the running
// process. A key that fails to apply live is rolled back on the process
// and nothing is written, so a retry starts over.
func (b *Base) ReconfigureWith(ctx context.Context, h sdk.Host, req sdk.Request, live LiveConfig) (sdk.Result, error) {
	s := b.Spec
	if req.Conf == "" {
		return sdk.Result{}, sdk.Failf("no conf given: pass the whole new %s text", s.ConfFile)
	}
	old, err := b.Load(ctx, h, req)
	if err != nil {
		return sdk.Result{}, err
	}
	nd, err := s.deployed(old.Home, req.Conf)
	if err != nil {
		return sdk.Result{}, sdk.Failf("%v", err)
	}
	if err := checkHostPortClash(s, req, nd.Ports); err != nil {
		return sdk.Result{}, err
	}
	changes := DiffConf(old.Conf, nd.Conf)
	added, err := checkChanges(s, old, nd, changes)
	if err != nil {
		return sdk.Result{}, err
	}
	proc, err := s.ReadProc(ctx, h, old.Home, old.PidDir)
	if err != nil {
		return sdk.Result{}, err
	}
	running := proc.Running()
	current := map[string]LiveItem{}
	if running && live != nil && len(changes) > 0 {
		if current, err = live.Current(ctx, h, req.Node.Host, old); err != nil {
			if ctx.Err() != nil {
				return sdk.Result{}, ctx.Err()
			}
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("cannot ask the running %s on %s which settings it can change live", s.Role, req.Node.Host),
				Detail: err.Error(), Retryable: true}
		}
	}
	liveValues := map[string]string{}
	restart := false
	var lines []string
	for i, c := range changes {
		impact, v := Impact(c, running, current, nd.Vars)
		changes[i].Impact = impact
		if impact == sdk.ImpactLive {
			liveValues[c.Key] = v
		} else {
			restart = true
		}
		lines = append(lines, fmt.Sprintf("%s: %q -> %q (%s)", c.Key, c.Old, c.New, impact))
	}
	for _, l := range lines {
		h.Logf("%s %s", s.ConfFile, l)
	}
	var warn []string
	if s.Role == RoleBE && len(changes) > 0 {
		warn = shadowedByCustomConf(ctx, h, nd, changes)
	}
	detail := joinNonEmpty(strings.Join(lines, "\n"), strings.Join(warn, "\n"))
	count := fmt.Sprintf("%d changed (%d live, %d at restart)", len(changes), len(liveValues), len(changes)-len(liveValues))
	if req.DryRun {
		return sdk.Result{Summary: fmt.Sprintf("%s on %s: %s; dry run, nothing changed", s.ConfFile, req.Node.Host, count),
			Detail: detail, Changes: changes}, nil
	}
	facts := sdk.Facts{}
	PortFacts(nd.Ports, facts)
	facts.SetBool(sdk.FactRestartNeeded, running && restart)

	var applied []sdk.Change
	for _, c := range changes {
		if c.Impact != sdk.ImpactLive {
			continue
		}
		if err := live.Set(ctx, h, req.Node.Host, old, c.Key, liveValues[c.Key]); err != nil {
			undo := b.undoLive(ctx, h, req, live, old, current, applied)
			return sdk.Result{}, &sdk.Failure{
				Summary:   fmt.Sprintf("%s on %s refused %s = %q live: %v", s.Role, req.Node.Host, c.Key, liveValues[c.Key], err),
				Detail:    joinNonEmpty(undo, "nothing was written to "+old.ConfPath),
				Retryable: true,
			}
		}
		h.Logf("set %s = %q on the running %s", c.Key, liveValues[c.Key], s.Role)
		applied = append(applied, c)
	}
	if len(added) > 0 {
		res, err := h.Exec(ctx, sdk.Command{Argv: append([]string{"mkdir", "-p", "--"}, added...)})
		if err != nil {
			return sdk.Result{}, fmt.Errorf("create %s: %w", strings.Join(added, ", "), err)
		}
		if res.ExitCode != 0 {
			return sdk.Result{}, sdk.Failf("cannot create storage root %s on %s: %s", strings.Join(added, ", "), req.Node.Host, strings.TrimSpace(res.Output))
		}
	}
	if err := h.WriteFile(ctx, old.ConfPath, []byte(req.Conf), 0o644); err != nil {
		return sdk.Result{}, fmt.Errorf("write %s: %w", old.ConfPath, err)
	}
	sum := fmt.Sprintf("%s on %s: %s", s.ConfFile, req.Node.Host, count)
	switch {
	case len(changes) == 0:
		sum = fmt.Sprintf("%s on %s: no setting changed", s.ConfFile, req.Node.Host)
	case running && restart:
		sum += "; restart needed"
	case !running:
		sum += "; not running, it starts with them"
	}
	return sdk.Result{Summary: sum, Detail: detail, Changes: changes, Facts: facts}, nil
}

// undoLive puts back the values the process had before of the keys
// already applied live.
func (b *Base) undoLive(ctx context.Context, h sdk.Host, req sdk.Request, live LiveConfig, old Deployed, before map[string]LiveItem, applied []sdk.Change) string {
	var out []string
	for _, c := range applied {
		v := before[c.Key].Value
		if err := live.Set(ctx, h, req.Node.Host, old, c.Key, v); err != nil {
			out = append(out, fmt.Sprintf("%s stays %q on the running process (could not put back %q: %v)", c.Key, c.New, v, err))
		} else {
			out = append(out, fmt.Sprintf("%s put back to %q", c.Key, v))
		}
	}
	return strings.Join(out, "\n")
}

// shadowedByCustomConf warns about changed keys that be_custom.conf (what
// /api/update_config?persist=true wrote) also sets: it is read after
// be.conf and wins at the next start.
func shadowedByCustomConf(ctx context.Context, h sdk.Host, d Deployed, changes []sdk.Change) []string {
	dir := path.Join(d.Home, "conf")
	if v, ok := d.Conf.Get("custom_config_dir"); ok && v != "" {
		if e, err := Expand(v, d.Vars); err == nil && path.IsAbs(e) {
			dir = e
		}
	}
	p := path.Join(dir, "be_custom.conf")
	data, err := h.ReadFile(ctx, p, 0)
	if err != nil {
		if !errors.Is(err, sdk.ErrNotExist) {
			h.Logf("could not read %s: %v", p, err)
		}
		return nil
	}
	custom, _ := ParseConf(p, string(data))
	var out []string
	for _, c := range changes {
		if v, ok := custom.Get(c.Key); ok {
			msg := fmt.Sprintf("warning: %s also sets %s = %q, which wins over be.conf at the next start: remove it there", p, c.Key, v)
			h.Logf("%s", msg)
			out = append(out, msg)
		}
	}
	return out
}
