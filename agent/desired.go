package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// The agent keeps the state the manager wants each role on its host in
// (data/desired.json) and, when it starts, starts every role that should
// run and does not, in the order the manager gave (the FE master first),
// with the command that last started it. So a rebooted host brings its
// roles back without the manager, and a role an operator stopped stays
// stopped.

const desiredFile = "desired.json"

var roleNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,15}$`)

// bootWait bounds how long a started role may take to show a live pid
// before the agent goes on with the next one.
const bootWait = 2 * time.Minute

func (a *Agent) desiredPath() string { return filepath.Join(a.cfg.DataDir, desiredFile) }

// loadDesired reads the records; a missing file is none.
func (a *Agent) loadDesired() (map[string]wire.DesiredRole, error) {
	out := map[string]wire.DesiredRole{}
	b, err := os.ReadFile(a.desiredPath())
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read desired role states: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("desired role states %s: %w", a.desiredPath(), err)
	}
	return out, nil
}

func validDesired(d wire.DesiredRole) error {
	if !roleNameRe.MatchString(d.Role) {
		return badRequest("role %q: want an upper-case role name (FE, BE, BROKER...)", d.Role)
	}
	switch d.State {
	case wire.DesiredRunning, wire.DesiredStopped, wire.DesiredAbsent:
	default:
		return badRequest("state %q: want running, stopped or absent", d.State)
	}
	if d.PidFile != "" && (!filepath.IsAbs(d.PidFile) || filepath.Clean(d.PidFile) != d.PidFile) {
		return badRequest("pidFile %q must be a clean absolute path", d.PidFile)
	}
	if s := d.Start; s != nil {
		if len(s.Argv) == 0 || s.Argv[0] == "" {
			return badRequest("start.argv is empty")
		}
		if s.Dir != "" && !filepath.IsAbs(s.Dir) {
			return badRequest("start.dir %q must be absolute", s.Dir)
		}
	}
	return nil
}

// setDesired records one role's desired state (a full replacement of its
// record, except that a missing start command or pid file keeps the
// recorded one). Repeating it changes nothing, so it needs no request id.
func (a *Agent) setDesired(w http.ResponseWriter, r *http.Request) {
	var d wire.DesiredRole
	if err := decode(w, r, &d, 1<<20); err != nil {
		fail(w, err)
		return
	}
	if err := validDesired(d); err != nil {
		fail(w, err)
		return
	}
	a.desiredMu.Lock()
	defer a.desiredMu.Unlock()
	all, err := a.loadDesired()
	if err != nil {
		fail(w, err)
		return
	}
	if d.State == wire.DesiredAbsent {
		delete(all, d.Role)
	} else {
		old := all[d.Role]
		if d.Start == nil {
			d.Start = old.Start
		}
		if d.PidFile == "" {
			d.PidFile = old.PidFile
		}
		all[d.Role] = d
	}
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := writeAtomic(a.desiredPath(), b, 0o600); err != nil {
		fail(w, fmt.Errorf("record desired state of %s: %w", d.Role, err))
		return
	}
	a.log.Info("desired role state recorded", "role", d.Role, "state", d.State, "order", d.Order)
	ok(w, nil)
}

// pidFileOf is the recorded pid file of a role, else the one the manager
// named for it in its last answer (the agent reports the role's process
// from it).
func (a *Agent) pidFileOf(d wire.DesiredRole) string {
	if d.PidFile != "" {
		return d.PidFile
	}
	if files := a.pidFiles.Load(); files != nil {
		for _, pf := range *files {
			if pf.Role == d.Role {
				return pf.Path
			}
		}
	}
	return ""
}

// withDesired adds to a process report each role's desired state: on the
// role's entry, or as an entry of its own (its pid file's process) when
// the report has none.
func (a *Agent) withDesired(ps []wire.Process) []wire.Process {
	a.desiredMu.Lock()
	desired, err := a.loadDesired()
	a.desiredMu.Unlock()
	if err != nil {
		a.log.Warn("report desired role states", "error", err)
		return ps
	}
	seen := map[string]bool{}
	for i := range ps {
		if d, ok := desired[ps[i].Role]; ok && !seen[ps[i].Role] {
			ps[i].Desired = d.State
		}
		seen[ps[i].Role] = true
	}
	roles := make([]string, 0, len(desired))
	for r := range desired {
		if !seen[r] {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	for _, r := range roles {
		if len(ps) >= wire.MaxProcesses {
			break
		}
		d := desired[r]
		pid, alive := livePid(a.pidFileOf(d))
		ps = append(ps, wire.Process{Role: r, Pid: pid, Running: alive, Desired: d.State})
	}
	return ps
}

// livePid reads a pid file and reports its pid if that process is alive.
func livePid(path string) (int, bool) {
	if path == "" {
		return 0, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, pidAlive(pid)
}

// restoreRoles starts, in Order, every role recorded as running whose
// process is not alive, each with its recorded start command; it waits for
// a started role's pid before starting one of a higher order. Failures are
// logged (the manager's status shows the role DOWN).
func (a *Agent) restoreRoles(ctx context.Context) {
	a.desiredMu.Lock()
	all, err := a.loadDesired()
	a.desiredMu.Unlock()
	if err != nil {
		a.log.Error("cannot restore roles", "error", err)
		return
	}
	var todo []wire.DesiredRole
	for _, d := range all {
		if d.State == wire.DesiredRunning {
			todo = append(todo, d)
		}
	}
	sort.Slice(todo, func(i, j int) bool {
		if todo[i].Order != todo[j].Order {
			return todo[i].Order < todo[j].Order
		}
		return todo[i].Role < todo[j].Role
	})
	for _, d := range todo {
		if ctx.Err() != nil {
			return
		}
		pf := a.pidFileOf(d)
		if pid, alive := livePid(pf); alive {
			a.log.Info("role already running", "role", d.Role, "pid", pid)
			continue
		}
		if d.Start == nil {
			a.log.Warn("role should run but no start command is recorded for it: start it from the manager", "role", d.Role)
			continue
		}
		a.log.Info("starting role recorded as running", "role", d.Role, "order", d.Order, "argv", strings.Join(d.Start.Argv, " "))
		res := a.runCommand(wire.Exec{RequestID: fmt.Sprintf("boot-%s-%d", d.Role, time.Now().UnixNano()), TaskID: "boot",
			Argv: d.Start.Argv, Env: d.Start.Env, Dir: d.Start.Dir, NoFile: d.Start.NoFile, Detach: true, TimeoutSeconds: 60}, func(string) {})
		if res.Error != "" || (!res.Running && res.ExitCode != 0) {
			a.log.Error("role did not start", "role", d.Role, "exit", res.ExitCode, "error", res.Error, "log", res.LogPath)
			continue
		}
		if pf == "" {
			continue
		}
		if pid, ok := a.waitPid(ctx, pf, bootWait); ok {
			a.log.Info("role started", "role", d.Role, "pid", pid)
		} else {
			a.log.Warn("started role shows no live pid yet; going on with the next", "role", d.Role, "pidFile", pf, "waited", bootWait)
		}
	}
}

func (a *Agent) waitPid(ctx context.Context, pidFile string, limit time.Duration) (int, bool) {
	deadline := time.Now().Add(limit)
	for {
		if pid, ok := livePid(pidFile); ok {
			return pid, true
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var unitRe = regexp.MustCompile(`^doris-agent-[0-9a-f]{1,64}\.service$`)

// uninstall answers, then removes the agent from its host and exits:
// its systemd unit (disabled, file removed, so it is not started again),
// its folder, and installDir if nothing else is left in it.
func (a *Agent) uninstall(w http.ResponseWriter, r *http.Request) {
	var u wire.Uninstall
	if err := decode(w, r, &u, 1<<16); err != nil {
		fail(w, err)
		return
	}
	if u.SystemdUnit != "" && !unitRe.MatchString(u.SystemdUnit) {
		fail(w, badRequest("systemdUnit %q is not an agent unit (doris-agent-<hex>.service)", u.SystemdUnit))
		return
	}
	home := filepath.Dir(a.cfg.DataDir)
	if filepath.Base(home) != "agent" || a.cfg.InstallDir == "" || filepath.Dir(home) != filepath.Clean(a.cfg.InstallDir) {
		fail(w, badRequest("the agent's folder %s is not <installDir>/agent: remove it by hand", home))
		return
	}
	ok(w, nil)
	if f, isF := w.(http.Flusher); isF {
		f.Flush()
	}
	a.quitOnce.Do(func() {
		go func() {
			// Let the answer reach the manager before the listener closes.
			time.Sleep(200 * time.Millisecond)
			a.removeSelf(u.SystemdUnit, home)
			close(a.quit)
		}()
	})
}

func (a *Agent) removeSelf(unit, home string) {
	a.log.Info("uninstalling the agent", "home", home, "unit", unit)
	unitFile := filepath.Join("/etc/systemd/system", unit)
	if _, err := os.Stat(unitFile); unit != "" && err == nil {
		// Disabled and its file gone, the unit is not started again; the
		// running agent exits with 0, which Restart=on-failure leaves alone.
		res := a.runCommand(wire.Exec{RequestID: "uninstall", TaskID: "uninstall", Argv: []string{"systemctl", "disable", unit}, TimeoutSeconds: 20}, func(string) {})
		if res.ExitCode != 0 {
			a.log.Warn("disable the agent's unit", "unit", unit, "output", res.Output, "error", res.Error)
		}
		if err := os.Remove(unitFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("remove the agent's unit file", "error", err)
		}
		res = a.runCommand(wire.Exec{RequestID: "uninstall", TaskID: "uninstall", Argv: []string{"systemctl", "daemon-reload"}, TimeoutSeconds: 20}, func(string) {})
		if res.ExitCode != 0 {
			a.log.Warn("reload systemd", "output", res.Output, "error", res.Error)
		}
	}
	if err := os.RemoveAll(home); err != nil {
		a.log.Error("remove the agent's folder", "home", home, "error", err)
	}
	// Only when empty: other software may live there too.
	_ = os.Remove(filepath.Clean(a.cfg.InstallDir))
}
