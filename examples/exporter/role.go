package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// The role as the manager sees it.
const (
	roleName = "EXPORTER"
	homeName = "node_exporter"
	binName  = "node_exporter"
	pidFile  = "run/node_exporter.pid" // relative to the role home
)

// Parameters an operator may pass in installService's "params".
const (
	paramListenPort   = "listenPort"
	paramStartTimeout = "startTimeout"
	paramStopTimeout  = "stopTimeout"
)

// portName is the name under which the role reports its port
// (fact "port.http").
const portName = "http"

// Exporter runs the Prometheus node exporter on a host. It keeps its own
// files under the role home:
//
//	<home>/pkg/        the unpacked release (node_exporter-<v>.linux-<arch>/node_exporter)
//	<home>/bin/node_exporter   a link to the release's binary
//	<home>/conf/flags  the command-line flags, one per line (Configure)
//	<home>/run/node_exporter.pid
//	<home>/log/node_exporter.log
type Exporter struct {
	version string
	// poll is the pause between health probes.
	poll time.Duration
}

var _ sdk.Role = (*Exporter)(nil)

// New returns the role reporting version.
func New(version string) *Exporter { return &Exporter{version: version, poll: 500 * time.Millisecond} }

// Info declares the role's catalogue entry. It has no cluster membership,
// so the manager never gives it an ADD_ task.
func (e *Exporter) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name: "doris-role-exporter", Role: roleName, Version: e.version,
		APIMajor: sdk.APIMajor, APIMinor: sdk.APIMinor,
		Home: homeName, PidFile: pidFile,
		Params: []sdk.Param{
			{Name: paramListenPort, Type: sdk.ParamInt, Default: "9100", Description: "port of /metrics when the conf does not set --web.listen-address"},
			{Name: paramStartTimeout, Type: sdk.ParamDuration, Default: "30s", Description: "how long Start waits for /metrics to answer"},
			{Name: paramStopTimeout, Type: sdk.ParamDuration, Default: "30s", Description: "how long Stop waits for the process to exit"},
		},
		Description: "Prometheus node exporter on every host of the cluster",
	}, nil
}

// layout is where the role's files are on the host.
type layout struct {
	home, pkg, bin, flags, pid, log string
}

func layoutOf(req sdk.Request) (layout, error) {
	home := req.Node.Home
	if home == "" && req.Node.InstallDir != "" {
		home = path.Join(req.Node.InstallDir, homeName)
	}
	home = path.Clean(home)
	if !path.IsAbs(home) || strings.Count(home, "/") < 2 {
		return layout{}, sdk.Failf("role home %q must be an absolute path at least two levels deep, such as /opt/doris/%s: check installDir", req.Node.Home, homeName)
	}
	return layout{
		home: home, pkg: path.Join(home, "pkg"), bin: path.Join(home, "bin", binName),
		flags: path.Join(home, "conf", "flags"), pid: path.Join(home, pidFile), log: path.Join(home, "log", binName+".log"),
	}, nil
}

// param reads a parameter; the manager has validated it and filled in
// defaults, but a direct caller may not have.
func param(req sdk.Request, name, def string) string {
	if v, ok := req.Params[name]; ok && v != "" {
		return v
	}
	return def
}

func durationParam(req sdk.Request, name, def string) (time.Duration, error) {
	d, err := time.ParseDuration(param(req, name, def))
	if err != nil || d <= 0 {
		return 0, sdk.Failf("param %s %q: use a duration such as 30s", name, param(req, name, def))
	}
	return d, nil
}

func portParam(req sdk.Request) (int, error) {
	v := param(req, paramListenPort, "9100")
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, sdk.Failf("param %s %q: use a port 1-65535", paramListenPort, v)
	}
	return p, nil
}

// run executes argv and fails on a non-zero exit, with its output.
func run(ctx context.Context, h sdk.Host, what string, argv ...string) (string, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: argv})
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if res.ExitCode != 0 {
		return res.Output, &sdk.Failure{Summary: fmt.Sprintf("%s failed (exit %d)", what, res.ExitCode), Detail: res.Output}
	}
	return res.Output, nil
}

// listeningScript prints "busy" when something listens on TCP port $1,
// from /proc/net/tcp{,6} (no ss or netstat needed).
const listeningScript = `hex=$(printf '%04X' "$1")
for f in /proc/net/tcp /proc/net/tcp6; do
  [ -r "$f" ] || continue
  while read -r _ local _ state _; do
    [ "$state" = 0A ] && [ "${local##*:}" = "$hex" ] && { echo busy; exit 0; }
  done < "$f"
done
echo free`

func portBusy(ctx context.Context, h sdk.Host, port int) (bool, error) {
	out, err := run(ctx, h, "check port "+strconv.Itoa(port), "sh", "-c", listeningScript, "exporter-port", strconv.Itoa(port))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "busy", nil
}

// Precheck checks that the port is free, unless the exporter already runs
// there (a precheck repeated after Start).
func (e *Exporter) Precheck(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	port, err := portParam(req)
	if err != nil {
		return sdk.Result{}, err
	}
	busy, err := portBusy(ctx, h, port)
	if err != nil {
		return sdk.Result{}, err
	}
	if busy {
		pid, running, err := e.running(ctx, h, l)
		if err != nil {
			return sdk.Result{}, err
		}
		if running {
			return sdk.Result{Summary: fmt.Sprintf("node exporter already runs on %s (pid %d, port %d)", req.Node.Host, pid, port)}, nil
		}
		return sdk.Result{}, sdk.Failf("port %d is in use on %s: stop what listens there or set param %s", port, req.Node.Host, paramListenPort)
	}
	return sdk.Result{Summary: fmt.Sprintf("port %d is free on %s", port, req.Node.Host)}, nil
}

// Install unpacks the release under <home>/pkg and links its binary.
// Releases keep their files under a top folder
// (node_exporter-1.8.2.linux-amd64/), which the unpack keeps.
func (e *Exporter) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if req.PackageURL == "" {
		return sdk.Result{}, sdk.Failf("packageUrl is empty: give the URL of a node_exporter release (node_exporter-<version>.linux-amd64.tar.gz)")
	}
	d, err := h.Download(ctx, sdk.Download{URL: req.PackageURL, SHA256: req.PackageSHA256, SHA512: req.PackageSHA512, Dest: l.pkg, Unpack: true})
	if err != nil {
		return sdk.Result{}, &sdk.Failure{Summary: "download " + req.PackageURL + " on " + req.Node.Host, Detail: err.Error(), Retryable: true}
	}
	out, err := run(ctx, h, "find the node_exporter binary", "find", l.pkg, "-mindepth", "1", "-maxdepth", "2", "-type", "f", "-name", binName)
	if err != nil {
		return sdk.Result{}, err
	}
	found := strings.Fields(out)
	if len(found) != 1 {
		return sdk.Result{}, sdk.Failf("the package from %s has %d files named %s (want one, at its top or in its top folder): is it a node_exporter release?", req.PackageURL, len(found), binName)
	}
	if _, err := run(ctx, h, "link the binary", "mkdir", "-p", path.Dir(l.bin), path.Dir(l.pid), path.Dir(l.log)); err != nil {
		return sdk.Result{}, err
	}
	if _, err := run(ctx, h, "link the binary", "ln", "-sfn", found[0], l.bin); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: fmt.Sprintf("installed %s on %s", found[0], req.Node.Host), Facts: sdk.Facts{"sha256": d.SHA256}}, nil
}

// Configure writes the flags file. The conf is the exporter's command-line
// flags, one per line ("--collector.textfile.directory=/var/lib/textfile");
// blank lines and lines starting with # are ignored. Without
// --web.listen-address the port comes from param listenPort.
func (e *Exporter) Configure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	flags, port, err := parseFlags(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := h.WriteFile(ctx, l.flags, []byte(strings.Join(flags, "\n")+"\n"), 0o644); err != nil {
		return sdk.Result{}, fmt.Errorf("write %s on %s: %w", l.flags, req.Node.Host, err)
	}
	return sdk.Result{Summary: fmt.Sprintf("wrote %d flags to %s; /metrics on port %d", len(flags), l.flags, port),
		Facts: sdk.Facts{sdk.PortFact(portName): strconv.Itoa(port)}}, nil
}

// parseFlags validates the conf and returns the flags to run with and the
// port they listen on.
func parseFlags(req sdk.Request) ([]string, int, error) {
	var flags []string
	port := 0
	for i, line := range strings.Split(req.Conf, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		if !strings.HasPrefix(name, "--") || len(name) < 3 || strings.ContainsAny(name, " \t\x00") || strings.ContainsRune(value, 0) {
			return nil, 0, sdk.Failf("conf line %d %q: write one flag per line as --name=value", i+1, line)
		}
		if name == "--web.listen-address" {
			p, err := listenPort(value)
			if err != nil {
				return nil, 0, sdk.Failf("conf line %d: %v", i+1, err)
			}
			port = p
		}
		flags = append(flags, line)
	}
	if port == 0 {
		p, err := portParam(req)
		if err != nil {
			return nil, 0, err
		}
		port = p
		flags = append(flags, "--web.listen-address=:"+strconv.Itoa(port))
	}
	return flags, port, nil
}

func listenPort(addr string) (int, error) {
	i := strings.LastIndex(addr, ":")
	p, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("--web.listen-address %q: use [host]:port, such as :9100", addr)
	}
	return p, nil
}

// running reads the pid file and checks that the pid is our exporter (its
// executable is the role's binary), not a stranger that reused the pid. A
// missing pid file means not running; other errors (a done context, an
// unreachable host) are returned.
func (e *Exporter) running(ctx context.Context, h sdk.Host, l layout) (int, bool, error) {
	raw, err := h.ReadFile(ctx, l.pid, 64)
	if errors.Is(err, sdk.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", l.pid, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, false, nil
	}
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"readlink", "-f", "/proc/" + strconv.Itoa(pid) + "/exe", l.bin}})
	if err != nil {
		return 0, false, fmt.Errorf("check pid %d: %w", pid, err)
	}
	// readlink prints what it resolved and exits non-zero when the process
	// is gone; two equal lines mean the pid runs our binary.
	lines := strings.Fields(res.Output)
	return pid, res.ExitCode == 0 && len(lines) == 2 && lines[0] == lines[1], nil
}

// startScript runs the exporter with the flags file's lines as arguments
// and its output in its own log. $1 is the binary, $2 the flags file, $3
// the log; it replaces itself with the exporter, so the pid is the
// exporter's.
const startScript = `bin=$1 flags=$2 log=$3
set --
while IFS= read -r f; do [ -n "$f" ] && set -- "$@" "$f"; done < "$flags"
exec "$bin" "$@" >>"$log" 2>&1 </dev/null`

// Start runs the exporter detached, records its pid and waits until
// /metrics answers.
func (e *Exporter) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	timeout, err := durationParam(req, paramStartTimeout, "30s")
	if err != nil {
		return sdk.Result{}, err
	}
	_, port, err := parseFlags(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if p := req.Node.Ports[portName]; p != 0 {
		port = p // what Configure reported wins over the request's conf
	}
	facts := sdk.Facts{sdk.PortFact(portName): strconv.Itoa(port)}
	pid, ok, err := e.running(ctx, h, l)
	if err != nil {
		return sdk.Result{}, err
	}
	if ok {
		h.Logf("node exporter already runs (pid %d)", pid)
	} else {
		// A detached Exec returns when the process exits or after its
		// Timeout with Running set: one second tells a crash at start from
		// a process that keeps running.
		res, err := h.Exec(ctx, sdk.Command{Argv: []string{"sh", "-c", startScript, "exporter-start", l.bin, l.flags, l.log},
			Dir: l.home, Detach: true, Timeout: time.Second})
		if err != nil {
			return sdk.Result{}, fmt.Errorf("start node exporter on %s: %w", req.Node.Host, err)
		}
		if !res.Running {
			tail, _ := h.ReadFile(ctx, l.log, 4096)
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("node exporter on %s exited at start (exit %d): see %s", req.Node.Host, res.ExitCode, l.log),
				Detail: string(tail), Retryable: true}
		}
		if err := h.WriteFile(ctx, l.pid, []byte(strconv.Itoa(res.Pid)+"\n"), 0o644); err != nil {
			return sdk.Result{}, fmt.Errorf("write %s: %w", l.pid, err)
		}
		h.Logf("node exporter started on %s (pid %d)", req.Node.Host, res.Pid)
	}
	deadline := time.Now().Add(timeout)
	for {
		ok, why := e.healthy(ctx, h, req.Node.Host, port)
		if ok {
			facts.SetBool(sdk.FactRunning, true)
			facts.SetBool(sdk.FactHealthy, true)
			return sdk.Result{Summary: fmt.Sprintf("node exporter serves /metrics on %s:%d", req.Node.Host, port), Facts: facts}, nil
		}
		if time.Now().After(deadline) {
			tail, _ := h.ReadFile(ctx, l.log, 4096)
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("node exporter on %s did not answer /metrics within %s (%s): raise param %s or see %s",
				req.Node.Host, timeout, why, paramStartTimeout, l.log), Detail: string(tail), Retryable: true}
		}
		select {
		case <-ctx.Done():
			return sdk.Result{}, ctx.Err()
		case <-time.After(e.poll):
		}
	}
}

// healthy probes /metrics: 200 with the exporter's own build metric.
func (e *Exporter) healthy(ctx context.Context, h sdk.Host, host string, port int) (bool, string) {
	resp, err := h.HTTPGet(ctx, fmt.Sprintf("http://%s:%d/metrics", host, port))
	switch {
	case err != nil:
		return false, err.Error()
	case resp.Status != 200:
		return false, fmt.Sprintf("HTTP %d", resp.Status)
	case !strings.Contains(string(resp.Body), "node_exporter_build_info"):
		return false, "the answer is not a node exporter's metrics"
	}
	return true, ""
}

// Stop sends SIGTERM and waits until the process is gone.
func (e *Exporter) Stop(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	timeout, err := durationParam(req, paramStopTimeout, "30s")
	if err != nil {
		return sdk.Result{}, err
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRunning, false)
	facts.SetBool(sdk.FactHealthy, false)
	pid, ok, err := e.running(ctx, h, l)
	if err != nil {
		return sdk.Result{}, err
	}
	if !ok {
		return sdk.Result{Summary: "node exporter is not running on " + req.Node.Host, Facts: facts}, nil
	}
	if _, err := run(ctx, h, "stop node exporter", "kill", "-TERM", strconv.Itoa(pid)); err != nil {
		return sdk.Result{}, err
	}
	deadline := time.Now().Add(timeout)
	for {
		_, ok, err := e.running(ctx, h, l)
		if err != nil {
			return sdk.Result{}, err
		}
		if !ok {
			return sdk.Result{Summary: fmt.Sprintf("stopped node exporter on %s (pid %d)", req.Node.Host, pid), Facts: facts}, nil
		}
		if time.Now().After(deadline) {
			return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("node exporter on %s (pid %d) still runs %s after SIGTERM", req.Node.Host, pid, timeout), Retryable: true}
		}
		select {
		case <-ctx.Done():
			return sdk.Result{}, ctx.Err()
		case <-time.After(e.poll):
		}
	}
}

// Status reports whether the exporter runs and answers.
func (e *Exporter) Status(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	facts := sdk.Facts{}
	pid, running, err := e.running(ctx, h, l)
	if err != nil {
		return sdk.Result{}, err
	}
	facts.SetBool(sdk.FactRunning, running)
	if !running {
		facts.SetBool(sdk.FactHealthy, false)
		return sdk.Result{Summary: "node exporter is not running on " + req.Node.Host, Facts: facts}, nil
	}
	port := req.Node.Ports[portName]
	if port == 0 {
		if port, err = portParam(req); err != nil {
			return sdk.Result{}, err
		}
	}
	ok, why := e.healthy(ctx, h, req.Node.Host, port)
	facts.SetBool(sdk.FactHealthy, ok)
	if !ok {
		return sdk.Result{Summary: fmt.Sprintf("node exporter runs on %s (pid %d) but /metrics does not answer: %s", req.Node.Host, pid, why), Facts: facts}, nil
	}
	return sdk.Result{Summary: fmt.Sprintf("node exporter runs on %s (pid %d)", req.Node.Host, pid), Facts: facts}, nil
}

// Remove deletes the role home; the exporter keeps no data elsewhere, so
// Purge changes nothing.
func (e *Exporter) Remove(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	l, err := layoutOf(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if pid, ok, err := e.running(ctx, h, l); err != nil {
		return sdk.Result{}, err
	} else if ok {
		return sdk.Result{}, sdk.Failf("node exporter still runs on %s (pid %d): stop it first", req.Node.Host, pid)
	}
	if _, err := run(ctx, h, "remove "+l.home, "rm", "-rf", "--", l.home); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "removed " + l.home + " on " + req.Node.Host}, nil
}
