// Package doris holds what the FE, BE and BROKER role plugins know about
// Apache Doris (0.15 through 2.x): package layouts, conf files and ports,
// start scripts and pid files, health probes, and the SQL that joins nodes
// to a cluster. The role plugins compose it; it talks to hosts only through
// sdk.Host.
//
// Facts the roles report (Result.Facts; booleans "true"/"false"):
//   - Precheck: maxMapCount, swap (on|off), openFiles (the limit starts will
//     use: min(65536, agent hard limit)), java, javaVersion.
//   - Install: installDir (the role home, e.g. /opt/doris/fe), packageUrl,
//     packageSha256, version (from the package's folder name).
//   - Configure: installDir, port.<key> for every port key (the role's known
//     ports with Doris defaults, plus other enabled *_port keys), metaDir
//     (FE), storageRootPath (BE, ';'-joined paths).
//   - Start: installDir, port.<key>, running, healthy, pid, openFiles (when
//     it started the process), master (FE follower/observer).
//   - Status: running, healthy, pid, port.<key>; from the cluster's SHOW
//     FRONTENDS/BACKENDS/BROKER (when an FE answers): registered, alive,
//     decommissioning (BE), version (else the version the home was
//     installed from).
//   - Register: registered=true, alive=true, master, brokerName (BROKER).
//   - Unregister: registered=false, alive=false (BE: after the decommission
//     finished; decommissioning=false).
//   - Remove: running=false, healthy=false.
//   - Upgrade: version, running, healthy, pid, registered, alive, packageUrl.
//   - Reconfigure: port.<key>, restartNeeded; Result.Changes.
//
// Day-2 (scale-in, upgrade, reconfigure, remove): scalein.go (replicas and
// follower quorum), upgrade.go, reconfigure.go with liveconfig.go (how FE
// and BE change settings live), remove.go.
//
// Params read (declared in Info.Params, so the manager checks them and
// fills in the defaults): javaHome, minOpenFiles, minFreeDiskGB,
// startTimeout, stopTimeout, aliveTimeout (Spec.Params); BE unregisterMode
// (decommission|drop, drop is the same as Request.Force); BROKER
// brokerName. Durations are "90s" or plain seconds.
package doris

import (
	"path"
	"strconv"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// Port is a conf key naming a port and Doris's default for it.
type Port struct {
	Key     string
	Default int
}

// Spec describes one Doris role as its release package lays it out.
type Spec struct {
	Role        string // RoleFE, RoleBE, RoleBroker
	Dir         string // folder name in the package and under installDir
	StartScript string // bin/<StartScript>
	StopScript  string
	ConfFile    string // conf/<ConfFile>
	PidFile     string // in PID_DIR, which defaults to <home>/bin
	HomeVar     string // the variable the scripts export for the role home
	Ports       []Port
	// Logs are the role's own logs relative to LOG_DIR, most useful first.
	Logs []string
	// NeedsJava: the start script refuses to run without java.
	NeedsJava bool
	// KernelStrict: the start script refuses a host with swap on or a low
	// vm.max_map_count (start_be.sh); for other roles these are warnings.
	KernelStrict bool
	// MinOpenFiles the start script insists on (0: none).
	MinOpenFiles uint64
	// Markers are substrings of the role's command line, used to tell a
	// live Doris process from an unrelated one that reuses a stale pid.
	Markers []string
	// StartTimeout is how long Start waits for health by default.
	StartTimeout time.Duration
	// Order is how the manager sequences the role's nodes (Info.Order).
	Order sdk.Order
	// Description is the role's one line in the manager's catalogue.
	Description string
}

// The three Doris roles.
var (
	FE = Spec{
		Role: RoleFE, Dir: "fe", StartScript: "start_fe.sh", StopScript: "stop_fe.sh",
		ConfFile: "fe.conf", PidFile: "fe.pid", HomeVar: "DORIS_HOME",
		Ports: []Port{{"http_port", 8030}, {"rpc_port", 9020}, {"query_port", 9030}, {"edit_log_port", 9010}},
		Logs:  []string{"fe.log", "fe.out", "fe.warn.log"}, NeedsJava: true,
		Markers:      []string{"DorisFE", "PaloFe", "doris", "palo"},
		StartTimeout: 10 * time.Minute,
		// Followers and observers join the master one by one.
		Order:       sdk.Order{OneAtATime: true},
		Description: "Apache Doris frontend (FE): metadata, SQL and cluster membership",
	}
	BE = Spec{
		Role: RoleBE, Dir: "be", StartScript: "start_be.sh", StopScript: "stop_be.sh",
		ConfFile: "be.conf", PidFile: "be.pid", HomeVar: "DORIS_HOME",
		Ports: []Port{{"be_port", 9060}, {"webserver_port", 8040}, {"heartbeat_service_port", 9050}, {"brpc_port", 8060}},
		Logs:  []string{"be.INFO", "be.out", "be.WARNING"}, KernelStrict: true, MinOpenFiles: 60000,
		Markers:      []string{"doris_be", "palo_be", "doris", "palo"},
		StartTimeout: 5 * time.Minute,
		Order:        sdk.Order{After: []string{RoleFE}},
		Description:  "Apache Doris backend (BE): storage and query execution",
	}
	Broker = Spec{
		Role: RoleBroker, Dir: "apache_hdfs_broker", StartScript: "start_broker.sh", StopScript: "stop_broker.sh",
		ConfFile: "apache_hdfs_broker.conf", PidFile: "apache_hdfs_broker.pid", HomeVar: "BROKER_HOME",
		Ports:        []Port{{"broker_ipc_port", 8000}},
		Logs:         []string{"apache_hdfs_broker.log", "apache_hdfs_broker.out"},
		NeedsJava:    true,
		Markers:      []string{"BrokerBootstrap", "broker", "doris", "palo"},
		StartTimeout: 5 * time.Minute,
		Order:        sdk.Order{After: []string{RoleFE}},
		Description:  "Apache Doris HDFS broker: access to remote file systems for load and export",
	}
)

// Params are the params every Doris role reads, with the defaults the role
// applies when none is given (the manager passes them explicitly).
func (s Spec) Params() []sdk.Param {
	minFiles := sdk.Param{Name: ParamMinOpenFiles, Type: sdk.ParamInt,
		Description: "refuse a host whose open-files limit for the role is below this (0: only warn below 65536)"}
	if s.MinOpenFiles > 0 {
		minFiles.Default = strconv.FormatUint(s.MinOpenFiles, 10)
	}
	return []sdk.Param{
		{Name: ParamJavaHome, Type: sdk.ParamString,
			Description: "JAVA_HOME to check and to start the role with; default: the agent's JAVA_HOME or java on its PATH"},
		minFiles,
		{Name: ParamMinFreeDiskGB, Type: sdk.ParamString, Default: "5",
			Description: "free space required under installDir, in GB (a decimal number)"},
		{Name: ParamStartTimeout, Type: sdk.ParamDuration, Default: s.StartTimeout.String(),
			Description: "how long Start waits for the role to answer its health check"},
		{Name: ParamStopTimeout, Type: sdk.ParamDuration, Default: DefaultStopTimeout.String(),
			Description: "how long Stop waits for the process to exit"},
		{Name: ParamAliveTimeout, Type: sdk.ParamDuration, Default: DefaultAliveTimeout.String(),
			Description: "how long Register waits for the cluster to report the nodes alive"},
	}
}

// Home is the role's folder under installDir, e.g. /opt/doris/fe.
func (s Spec) Home(installDir string) string { return path.Join(installDir, s.Dir) }

// ConfPath is the role's conf file under home.
func (s Spec) ConfPath(home string) string { return path.Join(home, "conf", s.ConfFile) }

// DefaultPort returns Doris's default for a port key of this role, or 0.
func (s Spec) DefaultPort(key string) int {
	for _, p := range s.Ports {
		if p.Key == key {
			return p.Default
		}
	}
	return 0
}

// NodePort is the port a node uses for key: what its Configure reported,
// else Doris's default.
func (s Spec) NodePort(n sdk.Node, key string) int {
	if p := n.Ports[key]; p > 0 {
		return p
	}
	return s.DefaultPort(key)
}

// DefaultPorts lists the role's ports by key with Doris's defaults.
func (s Spec) DefaultPorts() map[string]int {
	m := make(map[string]int, len(s.Ports))
	for _, p := range s.Ports {
		m[p.Key] = p.Default
	}
	return m
}

// PortFacts turns ports into Result facts "port.<key>".
func PortFacts(ports map[string]int, facts map[string]string) {
	for k, v := range ports {
		facts["port."+k] = strconv.Itoa(v)
	}
}
