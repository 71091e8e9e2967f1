// Package doris holds what the FE, BE and BROKER role plugins know about
// Apache Doris (0.15 through 2.x): package layouts, conf files and ports,
// start scripts and pid files, health probes, and the SQL that joins nodes
// to a cluster. The role plugins compose it; it talks to hosts only through
// sdk.Host.
//
// Facts the roles report (Result.Facts):
//   - Precheck: maxMapCount, swap (on|off), openFiles (the limit starts will
//     use: min(65536, agent hard limit)), java, javaVersion.
//   - Install: installDir (the role home, e.g. /opt/doris/fe), packageUrl,
//     packageSha256.
//   - Configure: installDir, port.<key> for every port key (the role's known
//     ports with Doris defaults, plus other enabled *_port keys), metaDir
//     (FE), storageRootPath (BE, ';'-joined paths).
//   - Start: installDir, port.<key>, running, healthy, pid, openFiles (when
//     it started the process), master (FE follower/observer).
//   - Status: running, healthy, pid, port.<key>.
//   - Register: registered=YES, master, brokerName (BROKER).
//   - Unregister: registered=NO (BE decommission: DECOMMISSIONING).
//
// Params read (all optional strings): javaHome, minOpenFiles,
// minFreeDiskGB, startTimeout, stopTimeout, aliveTimeout (durations like
// "90s" or plain seconds); BE unregisterMode (decommission|drop); BROKER
// brokerName.
package doris

import (
	"path"
	"strconv"

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
}

// The three Doris roles.
var (
	FE = Spec{
		Role: RoleFE, Dir: "fe", StartScript: "start_fe.sh", StopScript: "stop_fe.sh",
		ConfFile: "fe.conf", PidFile: "fe.pid", HomeVar: "DORIS_HOME",
		Ports: []Port{{"http_port", 8030}, {"rpc_port", 9020}, {"query_port", 9030}, {"edit_log_port", 9010}},
		Logs:  []string{"fe.log", "fe.out", "fe.warn.log"}, NeedsJava: true,
		Markers: []string{"DorisFE", "PaloFe", "doris", "palo"},
	}
	BE = Spec{
		Role: RoleBE, Dir: "be", StartScript: "start_be.sh", StopScript: "stop_be.sh",
		ConfFile: "be.conf", PidFile: "be.pid", HomeVar: "DORIS_HOME",
		Ports: []Port{{"be_port", 9060}, {"webserver_port", 8040}, {"heartbeat_service_port", 9050}, {"brpc_port", 8060}},
		Logs:  []string{"be.INFO", "be.out", "be.WARNING"}, KernelStrict: true, MinOpenFiles: 60000,
		Markers: []string{"doris_be", "palo_be", "doris", "palo"},
	}
	Broker = Spec{
		Role: RoleBroker, Dir: "apache_hdfs_broker", StartScript: "start_broker.sh", StopScript: "stop_broker.sh",
		ConfFile: "apache_hdfs_broker.conf", PidFile: "apache_hdfs_broker.pid", HomeVar: "BROKER_HOME",
		Ports:     []Port{{"broker_ipc_port", 8000}},
		Logs:      []string{"apache_hdfs_broker.log", "apache_hdfs_broker.out"},
		NeedsJava: true,
		Markers:   []string{"BrokerBootstrap", "broker", "doris", "palo"},
	}
)

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
