// Package doristest wires an sdktest.FakeHost to answer the host scripts of
// package doris the way a Linux host with Doris installed would, so role
// plugin tests read as scenarios.
package doristest

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// Host is a FakeHost plus the state of one machine.
type Host struct {
	*sdktest.FakeHost

	mu          sync.Mutex
	MaxMapCount int64
	Swaps       []string
	NoFileHard  uint64
	DiskAvailKB int64
	Java        string // "" for none
	Busy        map[int]bool
	procs       map[string]int // pid file -> pid of a live process
	nextPID     int
	// StartExit, when non-zero, makes start scripts fail with StartOutput.
	StartExit   int
	StartOutput string
	// OnStart runs after a start script succeeded (argv of the call).
	OnStart func(argv []string)
}

// New returns a healthy host: swap off, max_map_count 2000000, hard
// nofile 65536, 100 GB free, java 17, no ports busy, nothing running.
func New() *Host {
	h := &Host{
		FakeHost: sdktest.NewFakeHost(), MaxMapCount: 2000000, NoFileHard: 65536,
		DiskAvailKB: 100 << 20, Java: "/usr/lib/jvm/java-17/bin/java", Busy: map[int]bool{},
		procs: map[string]int{}, nextPID: 4000,
	}
	h.HandleExec(h.probe, "bash", "-c", doris.ProbeScript)
	h.HandleExec(h.listen, "bash", "-c", doris.ListenArgv()[2])
	h.HandleExec(h.proc, "bash", "-c", doris.ProcScript)
	h.HandleExec(h.procProbe, "bash", "-c", doris.ProcProbeScript)
	h.HandleExec(h.startProbe, "bash", "-c", doris.StartProbeScript)
	h.ExecExit(2, "getent: not found", "getent")
	h.ExecOK("", "mkdir")
	for _, s := range []doris.Spec{doris.FE, doris.BE, doris.Broker} {
		s := s
		h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) { return h.start(s, cmd) }, "bash", "/opt/doris/"+s.Dir+"/bin/"+s.StartScript)
		h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) { return h.stop(s, cmd) }, "bash", "/opt/doris/"+s.Dir+"/bin/"+s.StopScript)
	}
	return h
}

// Install puts a role's start script and conf (may be empty) under /opt/doris.
func (h *Host) Install(s doris.Spec, conf string) {
	home := s.Home("/opt/doris")
	h.SetFile(path.Join(home, "bin", s.StartScript), []byte("#!/usr/bin/env bash\n"), 0o755)
	h.SetFile(s.ConfPath(home), []byte(conf), 0o644)
}

// SetRunning marks the role's process alive (pid > 0) or gone (0).
func (h *Host) SetRunning(s doris.Spec, pid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := path.Join(s.Home("/opt/doris"), "bin", s.PidFile)
	if pid == 0 {
		delete(h.procs, f)
	} else {
		h.procs[f] = pid
	}
}

// SetExited leaves the role's pid file naming pid, a process that is gone:
// what a Doris daemon that died leaves behind.
func (h *Host) SetExited(s doris.Spec, pid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procs[path.Join(s.Home("/opt/doris"), "bin", s.PidFile)] = -pid
}

// Running reports whether the role's process is alive.
func (h *Host) Running(s doris.Spec) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.procs[path.Join(s.Home("/opt/doris"), "bin", s.PidFile)] > 0
}

func (h *Host) probe(cmd sdk.Command) (sdk.ExecResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sdk.ExecResult{Output: h.probeLines(cmd.Argv[6:])}, nil
}

// procProbe answers ProcProbeArgv(pidFile, dir, javaHome, ports...).
func (h *Host) procProbe(cmd sdk.Command) (sdk.ExecResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sdk.ExecResult{Output: "[proc]\n" + h.procLines(cmd.Argv[4]) + "[probe]\n" + h.probeLines(cmd.Argv[7:])}, nil
}

// startProbe answers StartProbeArgv(pidFile, ports...).
func (h *Host) startProbe(cmd sdk.Command) (sdk.ExecResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sdk.ExecResult{Output: "[proc]\n" + h.procLines(cmd.Argv[4]) + "[probe]\n" + h.kernelLines() + h.busyLines(cmd.Argv[5:])}, nil
}

func (h *Host) kernelLines() string {
	var b strings.Builder
	fmt.Fprintf(&b, "max_map_count=%d\n", h.MaxMapCount)
	for _, s := range h.Swaps {
		fmt.Fprintf(&b, "swap=%s\n", s)
	}
	fmt.Fprintf(&b, "nofile_hard=%d\nnofile_soft=1024\n", h.NoFileHard)
	return b.String()
}

func (h *Host) probeLines(ports []string) string {
	var b strings.Builder
	b.WriteString(h.kernelLines())
	fmt.Fprintf(&b, "disk_path=/opt\ndisk_avail_kb=%d\njava=%s\n", h.DiskAvailKB, h.Java)
	if h.Java != "" {
		b.WriteString("java_version=17.0.9\n")
	}
	b.WriteString(h.busyLines(ports))
	return b.String()
}

func (h *Host) busyLines(ports []string) string {
	var b strings.Builder
	for _, a := range ports {
		if p, _ := strconv.Atoi(a); h.Busy[p] {
			fmt.Fprintf(&b, "port_busy=%d\n", p)
		}
	}
	return b.String()
}

func (h *Host) listen(cmd sdk.Command) (sdk.ExecResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sdk.ExecResult{Output: h.busyLines(cmd.Argv[4:])}, nil
}

func (h *Host) proc(cmd sdk.Command) (sdk.ExecResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sdk.ExecResult{Output: h.procLines(cmd.Argv[4])}, nil
}

func (h *Host) procLines(pidFile string) string {
	pid, ok := h.procs[pidFile]
	if !ok {
		return ""
	}
	if pid < 0 { // a pid file naming a dead process
		return fmt.Sprintf("pid=%d\n", -pid)
	}
	return fmt.Sprintf("pid=%d\nstate=S\ncmdline=/opt/doris/java org.apache.doris.DorisFE\n", pid)
}

func (h *Host) start(s doris.Spec, cmd sdk.Command) (sdk.ExecResult, error) {
	h.mu.Lock()
	if h.StartExit != 0 {
		defer h.mu.Unlock()
		return sdk.ExecResult{ExitCode: h.StartExit, Output: h.StartOutput}, nil
	}
	f := path.Join(s.Home("/opt/doris"), "bin", s.PidFile)
	if h.procs[f] > 0 {
		h.mu.Unlock()
		return sdk.ExecResult{ExitCode: 1, Output: "running as process. Stop it first."}, nil
	}
	h.nextPID++
	h.procs[f] = h.nextPID
	for _, p := range s.Ports {
		h.Busy[p.Default] = true
	}
	on := h.OnStart
	h.mu.Unlock()
	if on != nil {
		on(cmd.Argv)
	}
	return sdk.ExecResult{}, nil
}

func (h *Host) stop(s doris.Spec, _ sdk.Command) (sdk.ExecResult, error) {
	h.SetRunning(s, 0)
	return sdk.ExecResult{}, nil
}

// FrontendsRows renders SHOW FRONTENDS in Doris 2.x columns.
// Each fe is "host:editLogPort:queryPort:ROLE:isMaster:alive".
func FrontendsRows(fes ...string) sdk.Rows {
	r := sdk.Rows{Columns: []string{"Name", "Host", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "Role", "IsMaster", "ClusterId", "Join", "Alive", "ErrMsg"}}
	for i, fe := range fes {
		p := strings.Split(fe, ":")
		r.Values = append(r.Values, []string{fmt.Sprintf("fe%d", i), p[0], p[1], "8030", p[2], "9020", p[3], p[4], "1", "true", p[5], ""})
	}
	return r
}

// BackendsRows renders SHOW BACKENDS: each be is
// "host:heartbeatPort:alive[:decommissioned:tabletNum[:version]]".
func BackendsRows(bes ...string) sdk.Rows {
	r := sdk.Rows{Columns: []string{"BackendId", "Host", "HeartbeatPort", "BePort", "HttpPort", "BrpcPort", "Alive",
		"SystemDecommissioned", "TabletNum", "ErrMsg", "Version"}}
	for i, be := range bes {
		p := []string{"", "", "", "false", "0", "doris-2.1.7-rc03-443e87e203"}
		copy(p, strings.Split(be, ":"))
		r.Values = append(r.Values, []string{strconv.Itoa(10000 + i), p[0], p[1], "9060", "8040", "8060", p[2], p[3], p[4], "", p[5]})
	}
	return r
}

// CatalogRows answers the SHOW PROC queries of doris.MaxReplication for one
// database "db" whose tables (named t0, t1...) have the given
// replication_num; install it with HandleQuery("SHOW PROC '/dbs", ...).
func CatalogRows(replication ...int) sdktest.QueryFunc {
	return func(_, sql string) (sdk.Rows, error) {
		switch {
		case strings.Contains(sql, "'/dbs'"):
			return sdk.Rows{Columns: []string{"DbId", "DbName"}, Values: [][]string{{"10001", "db"}}}, nil
		case strings.Contains(sql, "/partitions'"):
			id := strings.Split(strings.Trim(strings.TrimPrefix(sql, "SHOW PROC "), "'"), "/")[3]
			n, _ := strconv.Atoi(id)
			return sdk.Rows{Columns: []string{"PartitionId", "PartitionName", "Buckets", "ReplicationNum"},
				Values: [][]string{{"1", "p", "10", strconv.Itoa(replication[n-20000])}}}, nil
		case strings.Contains(sql, "'/dbs/10001'"):
			r := sdk.Rows{Columns: []string{"TableId", "TableName", "Type"}}
			for i := range replication {
				r.Values = append(r.Values, []string{strconv.Itoa(20000 + i), fmt.Sprintf("t%d", i), "OLAP"})
			}
			r.Values = append(r.Values, []string{"29999", "v", "VIEW"})
			return r, nil
		}
		return sdk.Rows{}, fmt.Errorf("errCode = 2, detailMessage = Proc path %s doesn't exist", sql)
	}
}

// BrokersRows renders SHOW BROKER: each is "name:host:port:alive".
func BrokersRows(bs ...string) sdk.Rows {
	r := sdk.Rows{Columns: []string{"Name", "Host", "Port", "Alive", "LastStartTime", "LastUpdateTime", "ErrMsg"}}
	for _, b := range bs {
		p := strings.Split(b, ":")
		r.Values = append(r.Values, []string{p[0], p[1], p[2], p[3], "", "", ""})
	}
	return r
}
