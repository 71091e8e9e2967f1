package doris

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// ProbeScript gathers, in one run, what prechecks need to know about a
// host. Data arrives only as positional arguments: $1 a directory whose
// file system is measured (walked up to an existing parent), $2 a
// JAVA_HOME to prefer ("" for the agent's JAVA_HOME or PATH), $3... ports
// to test for listeners. It prints key=value lines.
const ProbeScript = `dir=$1; javahome=$2; shift 2
` + kernelProbe + `d=$dir; while [ -n "$d" ] && [ ! -e "$d" ]; do d=$(dirname "$d"); done
echo "disk_path=$d"
echo "disk_avail_kb=$(df -Pk "$d" 2>/dev/null | awk 'NR==2 {print $4}')"
java=""
if [ -n "$javahome" ]; then java="$javahome/bin/java"
elif [ -n "${JAVA_HOME:-}" ]; then java="$JAVA_HOME/bin/java"
else java=$(command -v java 2>/dev/null); fi
echo "java=$java"
if [ -n "$java" ] && [ -x "$java" ]; then
  echo "java_version=$("$java" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
fi
` + listenLoop

// kernelProbe prints what a role's start depends on besides its ports:
// vm.max_map_count, the swap devices and the open-files limits. Shell
// builtins where they do: every program run is a fork and an exec, which
// on a busy host costs more than the reading itself.
const kernelProbe = `mmc=""; { read -r mmc < /proc/sys/vm/max_map_count; } 2>/dev/null
echo "max_map_count=$mmc"
if [ -r /proc/swaps ]; then
  { read -r _; while read -r dev _; do if [ -n "$dev" ]; then echo "swap=$dev"; fi; done; } < /proc/swaps
fi
echo "nofile_hard=$(ulimit -Hn)"
echo "nofile_soft=$(ulimit -Sn)"
`

// listenLoop prints port_busy=<p> for every port in "$@" that has a TCP
// listener on any address (from /proc/net/tcp and tcp6, so it needs no ss
// or netstat on the host), reading those files once for all ports. Its
// exit status is awk's: a host that cannot run it fails the probe rather
// than reporting every port free.
const listenLoop = `if [ $# -gt 0 ]; then
  files=()
  for f in /proc/net/tcp /proc/net/tcp6; do if [ -r "$f" ]; then files+=("$f"); fi; done
  if [ ${#files[@]} -gt 0 ]; then
    awk -v ports="$*" 'BEGIN {n = split(ports, p, " "); for (i = 1; i <= n; i++) want[sprintf("%04X", p[i])] = p[i]}
      FNR > 1 && $4 == "0A" {k = split($2, a, ":"); h = a[k]; if ((h in want) && !(h in seen)) {seen[h] = 1; print "port_busy=" want[h]}}' "${files[@]}"
  fi
fi
`

// ListenArgv builds an argv that prints port_busy=<p> for listening ports.
func ListenArgv(ports ...int) []string {
	argv := []string{"bash", "-c", listenLoop, "doris-listen"}
	for _, p := range ports {
		argv = append(argv, strconv.Itoa(p))
	}
	return argv
}

// Listening reports which of ports have a TCP listener on h.
func Listening(ctx context.Context, h sdk.Host, ports ...int) (map[int]bool, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: ListenArgv(ports...)})
	if err != nil {
		return nil, fmt.Errorf("check listening ports: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("check listening ports: exit %d: %s", res.ExitCode, clip(res.Output))
	}
	p, _ := ParseProbe("max_map_count=\n" + res.Output)
	return p.BusyPorts, nil
}

// ProbeArgv builds the argv that runs ProbeScript.
func ProbeArgv(dir, javaHome string, ports ...int) []string {
	argv := []string{"bash", "-c", ProbeScript, "doris-probe", dir, javaHome}
	for _, p := range ports {
		argv = append(argv, strconv.Itoa(p))
	}
	return argv
}

// Probe is what ProbeScript reported.
type Probe struct {
	MaxMapCount   int64
	Swaps         []string
	NoFileHard    uint64 // 0: unlimited
	NoFileSoft    uint64
	DiskPath      string
	DiskAvailKB   int64
	Java          string
	JavaVersion   string
	BusyPorts     map[int]bool
	HardUnlimited bool
}

// ParseProbe reads ProbeScript's output.
func ParseProbe(out string) (Probe, error) {
	p := Probe{BusyPorts: map[int]bool{}, MaxMapCount: -1, DiskAvailKB: -1}
	seen := false
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "max_map_count":
			seen = true
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p.MaxMapCount = n
			}
		case "swap":
			p.Swaps = append(p.Swaps, v)
		case "nofile_hard":
			p.NoFileHard, p.HardUnlimited = parseLimit(v)
		case "nofile_soft":
			p.NoFileSoft, _ = parseLimit(v)
		case "disk_path":
			p.DiskPath = v
		case "disk_avail_kb":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p.DiskAvailKB = n
			}
		case "java":
			p.Java = v
		case "java_version":
			p.JavaVersion = v
		case "port_busy":
			if n, err := strconv.Atoi(v); err == nil {
				p.BusyPorts[n] = true
			}
		}
	}
	if !seen {
		return p, fmt.Errorf("host probe printed nothing usable: %q", clip(out))
	}
	return p, nil
}

func parseLimit(v string) (uint64, bool) {
	if v == "unlimited" {
		return 0, true
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n, false
}

// NoFile is the open-files limit the plugin asks for when it starts a
// role: 65536, capped at the hard limit the agent runs under.
func (p Probe) NoFile() uint64 {
	const want = 65536
	if p.HardUnlimited || p.NoFileHard >= want {
		return want
	}
	return p.NoFileHard
}

// RunProbe runs ProbeScript on h.
func RunProbe(ctx context.Context, h sdk.Host, dir, javaHome string, ports ...int) (Probe, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: ProbeArgv(dir, javaHome, ports...)})
	if err != nil {
		return Probe{}, fmt.Errorf("probe host: %w", err)
	}
	if res.ExitCode != 0 {
		return Probe{}, fmt.Errorf("probe host: exit %d: %s", res.ExitCode, clip(res.Output))
	}
	return ParseProbe(res.Output)
}

// procFunc defines procinfo, which prints the process named by the pid
// file $1: pid, state (the /proc/<pid>/stat state letter) and command
// line, the latter on one line (NULs and newlines become spaces), so
// nothing a process puts in its argv can pose as another line. The pid
// file and stat are read with builtins (health polls run this often).
const procFunc = `procinfo() {
  local pid="" s=""
  [ -f "$1" ] || return 0
  IFS= read -r -d '' pid < "$1"
  pid=${pid//[!0-9]/}
  echo "pid=$pid"
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 0
  { IFS= read -r -d '' s < "/proc/$pid/stat"; } 2>/dev/null
  s=${s##*) }
  echo "state=${s%% *}"
  echo "cmdline=$(tr '\0\n' '  ' < "/proc/$pid/cmdline" 2>/dev/null)"
}
`

// ProcScript reports the process named by a pid file. $1 is the pid file.
const ProcScript = procFunc + `procinfo "$1"
`

// ProcArgv builds the argv that runs ProcScript.
func ProcArgv(pidFile string) []string {
	return []string{"bash", "-c", ProcScript, "doris-proc", pidFile}
}

// ProcProbeScript is ProcScript and ProbeScript in one run, for the
// places that need both (a precheck, a start): each exec is a fork of the
// agent's helper and a bash, which costs more on a busy host than the
// scripts themselves. $1 is the pid file; $2... are ProbeScript's
// arguments. It prints a "[proc]" line, ProcScript's lines, a "[probe]"
// line and ProbeScript's lines.
const ProcProbeScript = procFunc + `echo "[proc]"
procinfo "$1"
shift
echo "[probe]"
` + ProbeScript

// ProcProbeArgv builds the argv that runs ProcProbeScript.
func ProcProbeArgv(pidFile, dir, javaHome string, ports ...int) []string {
	argv := []string{"bash", "-c", ProcProbeScript, "doris-proc-probe", pidFile, dir, javaHome}
	for _, p := range ports {
		argv = append(argv, strconv.Itoa(p))
	}
	return argv
}

// StartProbeScript is ProcProbeScript for a start: the role's process,
// the kernel settings and the ports, without the free space and the java
// check a start does not use (running java -version starts a JVM, and
// the role's own start script checks java again). $1 is the pid file;
// $2... are the ports. It prints what ProcProbeScript prints, less the
// disk and java lines.
const StartProbeScript = procFunc + `echo "[proc]"
procinfo "$1"
shift
echo "[probe]"
` + kernelProbe + listenLoop

// StartProbeArgv builds the argv that runs StartProbeScript.
func StartProbeArgv(pidFile string, ports ...int) []string {
	argv := []string{"bash", "-c", StartProbeScript, "doris-start-probe", pidFile}
	for _, p := range ports {
		argv = append(argv, strconv.Itoa(p))
	}
	return argv
}

// ProcProbe is what ProcProbeScript reported.
type ProcProbe struct {
	Proc  Proc
	Probe Probe
	// ProbeErr says the probe part is unusable; Proc still is. A caller
	// that needs no probe (the role already runs) may ignore it.
	ProbeErr error
}

// ParseProcProbe reads ProcProbeScript's output. Each section's keys
// count only in their own section. Without a "[proc]" line nothing can
// be trusted and the error is returned; a missing or empty probe section
// is only ProbeErr.
func ParseProcProbe(out string) (ProcProbe, error) {
	var proc, probe strings.Builder
	var cur *strings.Builder
	seenProc := false
	for _, line := range strings.Split(out, "\n") {
		// The sections come once each, in this order; a header anywhere
		// else is an ordinary (and ignored) line.
		switch h := strings.TrimSpace(line); {
		case h == "[proc]" && cur == nil:
			cur, seenProc = &proc, true
			continue
		case h == "[probe]" && cur == &proc:
			cur = &probe
			continue
		}
		if cur != nil {
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
	}
	if !seenProc {
		return ProcProbe{}, fmt.Errorf("process and host probe printed nothing usable: %q", clip(out))
	}
	var r ProcProbe
	r.Proc = ParseProc(proc.String())
	r.Probe, r.ProbeErr = ParseProbe(probe.String())
	if r.ProbeErr != nil {
		r.ProbeErr = fmt.Errorf("probe host: %w", r.ProbeErr)
	}
	return r, nil
}

// Proc is the state of a role's process.
type Proc struct {
	PID     int
	State   string
	Cmdline string
}

// Running: the process exists and is neither a zombie nor dead (a killed
// daemon can linger as a zombie until it is reaped).
func (p Proc) Running() bool {
	return p.PID > 0 && p.State != "" && p.State != "Z" && p.State != "X" && p.State != "x"
}

// ParseProc reads ProcScript's output.
func ParseProc(out string) Proc {
	var p Proc
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "pid":
			p.PID, _ = strconv.Atoi(strings.TrimSpace(v))
		case "state":
			p.State = strings.TrimSpace(v)
		case "cmdline":
			p.Cmdline = strings.TrimSpace(v)
		}
	}
	return p
}

// ReadProc inspects the role's pid file. A live process whose command
// line names neither the role home nor a Doris marker is a stale pid
// reused by something else, and is reported as not running.
func (s Spec) ReadProc(ctx context.Context, h sdk.Host, home, pidDir string) (Proc, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: ProcArgv(path.Join(pidDir, s.PidFile))})
	if err != nil {
		return Proc{}, fmt.Errorf("read %s process state: %w", s.Role, err)
	}
	return s.owned(ParseProc(res.Output), home), nil
}

// owned reports p as not running when it is a stale pid reused by a
// process that is not this role.
func (s Spec) owned(p Proc, home string) Proc {
	if p.Running() && p.Cmdline != "" && !s.ownsCmdline(home, p.Cmdline) {
		p.State = ""
	}
	return p
}

// ReadProcProbe is ReadProc and RunProbe in one exec: the role's process
// from the pid file in pidDir, and the host probe of dir, javaHome and
// ports. The error is for the process part (and the exec); the probe's
// own failure is in ProbeErr.
func (s Spec) ReadProcProbe(ctx context.Context, h sdk.Host, home, pidDir, dir, javaHome string, ports ...int) (ProcProbe, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: ProcProbeArgv(path.Join(pidDir, s.PidFile), dir, javaHome, ports...)})
	if err != nil {
		return ProcProbe{}, fmt.Errorf("read %s process state and probe host: %w", s.Role, err)
	}
	return s.procProbeResult(res, home)
}

// procProbeResult reads the answer of ProcProbeScript or StartProbeScript.
func (s Spec) procProbeResult(res sdk.ExecResult, home string) (ProcProbe, error) {
	r, err := ParseProcProbe(res.Output)
	if err != nil {
		return ProcProbe{}, fmt.Errorf("read %s process state: %w", s.Role, err)
	}
	if res.ExitCode != 0 && r.ProbeErr == nil {
		r.ProbeErr = fmt.Errorf("probe host: exit %d: %s", res.ExitCode, clip(res.Output))
	}
	r.Proc = s.owned(r.Proc, home)
	return r, nil
}

// ReadStartProbe is ReadProcProbe for a start (StartProbeScript): the
// role's process from the pid file in pidDir, the kernel settings and
// which of ports are taken; no disk or java (Probe.DiskAvailKB -1,
// Probe.Java "").
func (s Spec) ReadStartProbe(ctx context.Context, h sdk.Host, home, pidDir string, ports ...int) (ProcProbe, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: StartProbeArgv(path.Join(pidDir, s.PidFile), ports...)})
	if err != nil {
		return ProcProbe{}, fmt.Errorf("read %s process state and probe host: %w", s.Role, err)
	}
	return s.procProbeResult(res, home)
}

func (s Spec) ownsCmdline(home, cmdline string) bool {
	if strings.Contains(cmdline, home) {
		return true
	}
	low := strings.ToLower(cmdline)
	for _, m := range s.Markers {
		if strings.Contains(low, strings.ToLower(m)) {
			return true
		}
	}
	return false
}

// TailLogs returns the last lines of the role's own logs that exist.
func (s Spec) TailLogs(ctx context.Context, h sdk.Host, logDir string, lines int) string {
	var b strings.Builder
	for _, name := range s.Logs {
		p := path.Join(logDir, name)
		data, err := h.ReadFile(ctx, p, 16<<10)
		if err != nil {
			if !errors.Is(err, sdk.ErrNotExist) && ctx.Err() == nil {
				fmt.Fprintf(&b, "==> %s: %v\n", p, err)
			}
			continue
		}
		text := strings.TrimRight(string(data), "\n")
		if text == "" {
			continue
		}
		ls := strings.Split(text, "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", p, strings.Join(ls, "\n"))
	}
	return strings.TrimRight(b.String(), "\n")
}
