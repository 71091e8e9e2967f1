package topology

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/dorismanager/dorismanager/cli/rest"
)

// Roles as the API names them.
const (
	RoleFE     = "FE"
	RoleBE     = "BE"
	RoleBroker = "BROKER"
)

// Plan is what the wizard sends for a topology: the request bodies
// without a processId.
type Plan struct {
	Cluster        string
	Agent          rest.InstallAgent // ClusterID and ProcessID left to the caller
	Install        rest.InstallService
	Configs        []rest.DeployConfig
	Starts         []rest.HostRole
	FEHosts        []string
	BEHosts        []string
	Nodes          []rest.InstallInfo // every node, FEs first, in file order
	DefaultSSHPort int
}

// Doris's default ports, as its own conf files ship them.
var (
	FEPorts     = [][2]string{{"http_port", "8030"}, {"rpc_port", "9020"}, {"query_port", "9030"}, {"edit_log_port", "9010"}}
	BEPorts     = [][2]string{{"be_port", "9060"}, {"webserver_port", "8040"}, {"heartbeat_service_port", "9050"}, {"brpc_port", "8060"}}
	BrokerPorts = [][2]string{{"broker_ipc_port", "8000"}}
)

// Render builds the plan of the nodes keep accepts (all when nil): scale-out
// leaves out the nodes a cluster has already. Confs are Doris's defaults
// (ports, dirs under each role's home in installDir, priority_networks of
// the host's own address) with the file's overrides on top; hosts whose
// confs come out the same share one deployConfig entry.
func (t *Topology) Render(keep func(host, role string) bool) Plan {
	if keep == nil {
		keep = func(string, string) bool { return true }
	}
	f := &t.File
	p := Plan{Cluster: f.Cluster, DefaultSSHPort: f.SSH.Port}
	hostKeys := map[string]string{}
	for ref, fp := range f.SSH.HostKeys {
		hostKeys[t.hostOf(ref)] = fp
	}
	hostSet := map[string]bool{}
	add := func(info rest.InstallInfo) {
		p.Nodes = append(p.Nodes, info)
		hostSet[info.Host] = true
		p.Starts = append(p.Starts, rest.HostRole{Host: info.Host, Role: info.Role})
		switch info.Role {
		case RoleFE:
			p.FEHosts = append(p.FEHosts, info.Host)
		case RoleBE:
			p.BEHosts = append(p.BEHosts, info.Host)
		}
	}
	all := allKept(t, keep)
	for _, fe := range f.FE {
		host := t.hostOf(fe.Host)
		if !keep(host, RoleFE) {
			continue
		}
		// The file's master is sent only with every FE of the file (a new
		// cluster; the manager takes the first FOLLOWER otherwise): the FEs
		// of a scale-out join the cluster's running master.
		add(rest.InstallInfo{Host: host, Role: RoleFE, FENodeType: fe.Type, Master: fe.Master && all})
	}
	for _, n := range f.BE {
		if h := t.hostOf(n.Host); keep(h, RoleBE) {
			add(rest.InstallInfo{Host: h, Role: RoleBE})
		}
	}
	for _, n := range f.Broker {
		if h := t.hostOf(n.Host); keep(h, RoleBroker) {
			add(rest.InstallInfo{Host: h, Role: RoleBroker})
		}
	}
	var hosts []string
	for _, h := range f.Hosts {
		if hostSet[h.Address] {
			hosts = append(hosts, h.Address)
		}
	}
	var pins map[string]string
	for _, h := range hosts {
		if fp := hostKeys[h]; fp != "" {
			if pins == nil {
				pins = map[string]string{}
			}
			pins[h] = fp
		}
	}
	p.Agent = rest.InstallAgent{Hosts: hosts, User: f.SSH.User, SSHPort: f.SSH.Port, SSHKey: t.SSHKey, Passphrase: t.Passphrase,
		HostKeyFingerprints: pins, StrictHostKeys: f.SSH.StrictHostKeys, PackageURL: f.Package.URL, InstallDir: f.InstallDir}
	p.Install = rest.InstallService{InstallInfos: p.Nodes, PackageSha256: strings.ToLower(f.Package.SHA256),
		AllowUnverifiedPackage: f.Package.AllowUnverified, AutoFix: f.AutoFix, Params: f.Params}
	p.Configs = t.configs(p.Nodes)
	return p
}

// allKept is true when every node of the file is kept (a new cluster).
func allKept(t *Topology, keep func(host, role string) bool) bool {
	for _, fe := range t.FE {
		if !keep(t.hostOf(fe.Host), RoleFE) {
			return false
		}
	}
	return true
}

func (t *Topology) configs(nodes []rest.InstallInfo) []rest.DeployConfig {
	var out []rest.DeployConfig
	for _, role := range []string{RoleFE, RoleBE, RoleBroker} {
		byConf := map[string]int{} // conf -> index in out
		for _, n := range nodes {
			if n.Role != role {
				continue
			}
			conf := t.Conf(role, n.Host)
			i, ok := byConf[conf]
			if !ok {
				out = append(out, rest.DeployConfig{Role: role, Conf: conf})
				i = len(out) - 1
				byConf[conf] = i
			}
			out[i].Hosts = append(out[i].Hosts, n.Host)
		}
	}
	return out
}

const feJavaOpts = `"-Xss4m -Xmx8192m -XX:+UseG1GC -XX:+HeapDumpOnOutOfMemoryError"`

// Conf renders the conf of one role on one host.
func (t *Topology) Conf(role, host string) string {
	var base [][2]string
	var over map[string]string
	switch role {
	case RoleFE:
		base = append([][2]string{
			{"LOG_DIR", "${DORIS_HOME}/log"},
			// One value for every JDK the start scripts pick options for
			// (JAVA_OPTS: JDK 8; 2.0 on JDK 9+; 2.1+ on JDK 17).
			{"JAVA_OPTS", feJavaOpts},
			{"JAVA_OPTS_FOR_JDK_9", feJavaOpts},
			{"JAVA_OPTS_FOR_JDK_17", feJavaOpts},
			{"sys_log_level", "INFO"},
			{"meta_dir", "${DORIS_HOME}/doris-meta"},
		}, FEPorts...)
		base = append(base, [2]string{"priority_networks", t.priorityNetworks(host)})
		over = t.Config.FE
	case RoleBE:
		base = append([][2]string{
			{"PPROF_TMPDIR", `"$DORIS_HOME/log/"`},
			{"sys_log_level", "INFO"},
			{"storage_root_path", "${DORIS_HOME}/storage"},
		}, BEPorts...)
		base = append(base, [2]string{"priority_networks", t.priorityNetworks(host)})
		over = t.Config.BE
	default:
		base = append([][2]string{}, BrokerPorts...)
		base = append(base, [2]string{"client_expire_seconds", "300"})
		over = t.Config.Broker
	}
	if jh := t.Params["javaHome"]; jh != "" && role != RoleBroker {
		base = append(base, [2]string{"JAVA_HOME", jh})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s conf rendered by dorismanager cluster deploy\n", role)
	done := map[string]bool{}
	for _, kv := range base {
		v := kv[1]
		if o, ok := over[kv[0]]; ok {
			v = o
		}
		done[kv[0]] = true
		fmt.Fprintf(&b, "%s = %s\n", kv[0], v)
	}
	keys := make([]string, 0, len(over))
	for k := range over {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, over[k])
	}
	return b.String()
}

// priorityNetworks is the CIDR Doris picks the host's address from: the
// host's own given one, else exactly its address (/32, /128), so a host
// with several interfaces announces the one the manager installed it for.
func (t *Topology) priorityNetworks(host string) string {
	h := t.byRef[host]
	if h != nil && h.PriorityNetworks != "" {
		return h.PriorityNetworks
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return ""
	}
	if ip.To4() != nil {
		return ip.String() + "/32"
	}
	return ip.String() + "/128"
}
