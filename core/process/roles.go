package process

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// Catalogue lists the roles that have an accepted plugin, each with the
// Info of the plugin version the cluster uses or would use
// (core/pluginhost.Manager). It must not pin versions: the wizard asks it
// to validate requests that may still be refused.
type Catalogue interface {
	Catalogue(ctx context.Context, clusterID int64) (map[string]sdk.Info, error)
}

// The Doris roles and FE node types of the API document. The wizard knows
// them for what the document fixes: installInfos' feNodeType and master,
// buildCluster's feHosts and beHosts, the task type ADD_BACKEND, and the
// rules of the master FE. Everything else about a role comes from its
// plugin's Info.
const (
	RoleFE     = "FE"
	RoleBE     = "BE"
	RoleBroker = "BROKER"
	FEFollower = "FOLLOWER"
	FEObserver = "OBSERVER"
)

// Labels of an FE node: the API document's feNodeType and master fields
// as role plugins see them (sdk.Node.Labels).
const (
	LabelFENodeType = "feNodeType"
	LabelMaster     = "master"
)

// Task types.
const (
	TaskInstallAgent = "INSTALL_AGENT"
	TaskAddFE        = "ADD_FE"
	TaskAddBackend   = "ADD_BACKEND"
	TaskAddBroker    = "ADD_BROKER"
	// TaskSecureCluster ends BUILD_CLUSTER of a cluster with FEs: it sets
	// the admin password (core/clusteradmin).
	TaskSecureCluster = "SECURE_CLUSTER"
)

// reserved are role names whose task types would be taken for another
// task's: INSTALL_AGENT, BE's ADD_BACKEND, and START_NODE of day-2
// operations (core/ops).
var reserved = map[string]string{"AGENT": TaskInstallAgent, "BACKEND": TaskAddBackend, "NODE": "START_NODE"}

// InstallTask, DeployTask and StartTask name a role's task of steps 1-3,
// e.g. INSTALL_FE, DEPLOY_BE_CONFIG, START_BROKER.
func InstallTask(role string) string { return "INSTALL_" + role }
func DeployTask(role string) string  { return "DEPLOY_" + role + "_CONFIG" }
func StartTask(role string) string   { return "START_" + role }

// AddTask is the BUILD_CLUSTER task type of a role with cluster membership
// (sdk.CapMembership): ADD_BACKEND for BE, as the API document spells it,
// ADD_<ROLE> for every other role.
func AddTask(role string) string {
	if role == RoleBE {
		return TaskAddBackend
	}
	return "ADD_" + role
}

// RoleTaskStep tells which wizard step a role task type belongs to
// (INSTALL_<ROLE> 1, DEPLOY_<ROLE>_CONFIG 2, START_<ROLE> 3, ADD_<ROLE>
// 4), and false for any other type. Role names have no '_' (sdk.ValidRoleName),
// so the role part is never ambiguous.
func RoleTaskStep(taskType string) (int, bool) {
	role := func(r string, ok bool) bool { return ok && sdk.ValidRoleName(r) == nil && reserved[r] == "" }
	switch {
	case taskType == TaskInstallAgent:
		return 0, false
	case taskType == TaskAddBackend:
		return StepBuildCluster, true
	}
	if r, ok := strings.CutPrefix(taskType, "INSTALL_"); role(r, ok) {
		return StepInstallService, true
	}
	if r, ok := strings.CutPrefix(taskType, "DEPLOY_"); ok {
		if r, ok := strings.CutSuffix(r, "_CONFIG"); role(r, ok) {
			return StepDeployConfig, true
		}
	}
	if r, ok := strings.CutPrefix(taskType, "START_"); role(r, ok) {
		return StepStartService, true
	}
	if r, ok := strings.CutPrefix(taskType, "ADD_"); role(r, ok) {
		return StepBuildCluster, true
	}
	return 0, false
}

// Home is a role's home on a host: its folder (Info.HomeDir, one path
// element) under the operator's installDir. This is the only place it is
// computed; it is recorded in store.AgentRole.InstallDir, and the base is
// always its parent folder.
func Home(installDir string, info sdk.Info) string { return path.Join(installDir, info.HomeDir()) }

// Labels turns the API document's FE placement into node labels (none
// for other roles, whose feNodeType is empty and master false).
func Labels(feNodeType string, master bool) map[string]string {
	if feNodeType == "" && !master {
		return nil
	}
	l := map[string]string{}
	if feNodeType != "" {
		l[LabelFENodeType] = feNodeType
	}
	if master {
		l[LabelMaster] = "true"
	}
	return l
}

// catalogue is the roles a cluster can use, as the wizard reads them.
type catalogue map[string]sdk.Info

func (e *Engine) catalogue(ctx context.Context, clusterID int64) (catalogue, error) {
	if e.cat == nil {
		return nil, fmt.Errorf("no role catalogue is configured: the manager has no role plugins")
	}
	m, err := e.cat.Catalogue(ctx, clusterID)
	if err != nil {
		return nil, fmt.Errorf("role catalogue of cluster %d: %w", clusterID, err)
	}
	return m, nil
}

// names lists the usable roles, sorted.
func (c catalogue) names() string {
	var out []string
	for r := range c {
		if reserved[r] == "" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return "none (install role plugins: dorismanager plugins install FILE)"
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// role upper-cases a role name and checks that a plugin provides it.
func (c catalogue) role(field, r string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(r))
	if u == "" {
		return "", invalid("%s is required: one of the installed roles (%s)", field, c.names())
	}
	if _, ok := c[u]; !ok {
		return "", invalid("%s %q is unknown: the installed roles are %s", field, r, c.names())
	}
	if t := reserved[u]; t != "" {
		return "", invalid("%s %q cannot be used: its task types would be taken for %s; rename the role in its plugin", field, r, t)
	}
	return u, nil
}

// member reports whether the role has cluster membership.
func (c catalogue) member(role string) bool { return c[role].Has(sdk.CapMembership) }

// oneAtATime reports whether the role's nodes start and join one by one.
func (c catalogue) oneAtATime(role string) bool { return c[role].Order.OneAtATime }

// ordered reports whether a role takes part in BUILD_CLUSTER ordering:
// it names roles to come after, or another role names it.
func (c catalogue) ordered(role string) bool {
	if len(c[role].Order.After) > 0 {
		return true
	}
	for _, info := range c {
		for _, a := range info.Order.After {
			if a == role {
				return true
			}
		}
	}
	return false
}

// params checks installService's params against the Info.Params of the
// roles listed, and returns each role's own: the values given for the
// params it declares (in their canonical form) and its defaults for the
// rest. A name no listed role declares is refused, naming those that are
// accepted.
func (c catalogue) params(given map[string]string, roles []string) (map[string]map[string]string, error) {
	declared := map[string][]string{} // param name -> roles declaring it
	for _, r := range roles {
		for _, p := range c[r].Params {
			declared[p.Name] = append(declared[p.Name], r)
		}
	}
	for _, k := range sortedKeys(given) {
		if len(declared[k]) > 0 {
			continue
		}
		if len(declared) == 0 {
			return nil, invalid("params.%s is unknown: %s take no params", k, strings.Join(roles, ", "))
		}
		return nil, invalid("params.%s is unknown: %s accept %s", k, strings.Join(roles, ", "), strings.Join(sortedKeys(declared), ", "))
	}
	out := make(map[string]map[string]string, len(roles))
	for _, r := range roles {
		var own map[string]string
		for _, p := range c[r].Params {
			v, ok := given[p.Name]
			if v == "" { // not given, or given empty: the default
				v, ok = p.Default, false
			}
			if v == "" {
				continue
			}
			canon, err := p.Parse(v)
			if err != nil {
				if ok {
					return nil, invalid("params.%s: %v (type %s for %s)", p.Name, err, p.Type, r)
				}
				return nil, fmt.Errorf("role %s declares param %s with a default that does not parse: %w", r, p.Name, err)
			}
			if own == nil {
				own = map[string]string{}
			}
			own[p.Name] = canon
		}
		out[r] = own
	}
	return out, nil
}

// addSeqs gives each role's BUILD_CLUSTER tasks their lane (TaskRole) and
// first Seq from the roles' Info.Order. Roles that take part in ordering
// share lane "" (as the API document shows ADD_ tasks); a role's first Seq
// is where the roles it comes after end; a OneAtATime role takes one Seq
// per node, others one for all. A role without ordering runs in its own
// lane, so it neither waits for nor holds up the others. counts is the
// number of tasks of each role in the request.
func (c catalogue) addSeqs(counts map[string]int) (lane map[string]string, first map[string]int, err error) {
	lane, first = map[string]string{}, map[string]int{}
	end := map[string]int{}
	const visiting = -1
	var visit func(role string, path []string) (int, error)
	visit = func(role string, path []string) (int, error) {
		if e, ok := end[role]; ok {
			if e == visiting {
				return 0, invalid("the roles' plugins order them in a circle (%s -> %s): fix Order.After in their Info", strings.Join(path, " -> "), role)
			}
			return e, nil
		}
		end[role] = visiting
		start := 0
		for _, a := range c[role].Order.After {
			e, err := visit(a, append(path, role))
			if err != nil {
				return 0, err
			}
			start = max(start, e)
		}
		n := counts[role]
		if n > 0 && !c.oneAtATime(role) {
			n = 1
		}
		first[role] = start
		end[role] = start + n
		return end[role], nil
	}
	for _, r := range sortedKeys(counts) {
		if !c.ordered(r) {
			lane[r], first[r] = r, 0
			continue
		}
		lane[r] = ""
		if _, err := visit(r, nil); err != nil {
			return nil, nil, err
		}
	}
	return lane, first, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
