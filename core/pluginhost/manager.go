package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/plugintrust"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
)

// Errors the callers branch on.
var (
	// ErrPluginExited: the plugin process exited during the call.
	ErrPluginExited = errors.New("role plugin exited")
	// ErrNoPlugin: no accepted plugin (or version) for the role.
	ErrNoPlugin = errors.New("no such role plugin")
	// ErrBusy: the cluster has a running task, so its pins cannot change.
	ErrBusy = errors.New("cluster has a running task")
	// ErrInUse: the version is pinned by a cluster.
	ErrInUse = errors.New("plugin version is in use")
	// ErrNotPinned: the cluster has no pin for the role.
	ErrNotPinned = errors.New("no pin")
	// ErrBadVersion: a pin's version rule does not parse.
	ErrBadVersion = errors.New("bad version rule")
	// ErrBinaryChanged: the accepted file of a pinned version is not the
	// binary the cluster was pinned to.
	ErrBinaryChanged = errors.New("another binary under the pinned version")
)

// Config configures a Manager.
type Config struct {
	// Dir is the plugins dir (--plugins-dir).
	Dir string
	// DataDir is the manager's data dir: the trusted keys are read from
	// <DataDir>/plugin-keys at every scan. Empty: no key is trusted and
	// every plugin is refused.
	DataDir string
	// ExecDir holds the private copies of plugin files that are checked
	// and run (made 0700; emptied by New). Default: a new temp folder,
	// removed by Close.
	ExecDir string
	// Store holds the pins. Nil: no pins, every cluster uses the highest
	// accepted version.
	Store *store.Store
	// Logger receives the manager's messages and every plugin's log.
	Logger hclog.Logger
	// StartTimeout bounds a plugin's start (default 30s).
	StartTimeout time.Duration
	// DescribeTimeout bounds one "<plugin> describe" of a scan (default 5s).
	DescribeTimeout time.Duration
	// ScanParallel is how many files a scan checks at once (default 4).
	ScanParallel int
	// ExitGrace is how long a failed call waits to learn whether the plugin
	// process exited (default 5s).
	ExitGrace time.Duration
	// Metrics, if set, receives dorismanager_plugin_call_duration_seconds.
	Metrics *metrics.Registry
}

// Manager discovers, pins and runs role plugins. It is safe for concurrent
// use. Close stops every plugin process.
type Manager struct {
	cfg Config
	log hclog.Logger
	// calls times every call by role, method and outcome.
	calls *metrics.Histogram

	ownExec bool // ExecDir is a temp folder of this Manager's
	// scanMu makes scans (and their pruning of ExecDir) one at a time.
	scanMu sync.Mutex

	mu       sync.Mutex
	accepted map[string][]Plugin // by upper-case role, highest version first
	refused  []Refused
	keys     *plugintrust.Keys  // the trusted keys of the last scan
	clients  map[string]*client // by path + sha256
	closed   bool
}

// New scans cfg.Dir and returns a Manager. Plugins start on first use.
func New(cfg Config) (*Manager, error) {
	if cfg.Dir == "" {
		return nil, errors.New("plugins dir is not set")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	cfg.Dir = dir
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.DescribeTimeout == 0 {
		cfg.DescribeTimeout = 5 * time.Second
	}
	if cfg.ScanParallel < 1 {
		cfg.ScanParallel = 4
	}
	if cfg.ExitGrace == 0 {
		cfg.ExitGrace = 5 * time.Second
	}
	ownExec := cfg.ExecDir == ""
	if ownExec {
		if cfg.ExecDir, err = os.MkdirTemp("", "dorismanager-plugins-"); err != nil {
			return nil, fmt.Errorf("folder for checked plugin copies: %w", err)
		}
	} else {
		if err := privateDir(cfg.ExecDir); err != nil {
			return nil, err
		}
		if err := emptyDir(cfg.ExecDir); err != nil {
			return nil, err
		}
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.Named("pluginhost"), clients: map[string]*client{}, ownExec: ownExec}
	if cfg.Metrics != nil {
		m.calls = cfg.Metrics.Histogram("dorismanager_plugin_call_duration_seconds",
			"Role plugin calls by role, method and outcome (ok, failure: reported by the plugin, error: the call itself failed), starting the plugin included.",
			metrics.CallBuckets, "role", "method", "outcome")
	}
	if err := m.Rescan(context.Background()); err != nil {
		m.removeExecDir()
		return nil, err
	}
	return m, nil
}

// ExecDir is the folder the checked copies of plugin files run from.
func (m *Manager) ExecDir() string { return m.cfg.ExecDir }

func (m *Manager) removeExecDir() {
	if m.ownExec {
		_ = os.RemoveAll(m.cfg.ExecDir)
	}
}

// emptyDir removes what a folder holds.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// prune removes the checked copies no accepted plugin runs from. A process
// still running from one keeps it until it exits.
func (m *Manager) prune(accepted map[string][]Plugin) {
	keep := map[string]bool{}
	for _, vs := range accepted {
		for _, p := range vs {
			keep[filepath.Base(p.Exec)] = true
		}
	}
	entries, err := os.ReadDir(m.cfg.ExecDir)
	if err != nil {
		m.log.Warn("could not prune the checked plugin copies", "dir", m.cfg.ExecDir, "error", err)
		return
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			_ = os.Remove(filepath.Join(m.cfg.ExecDir, e.Name()))
		}
	}
}

// Dir is the plugins dir (absolute).
func (m *Manager) Dir() string { return m.cfg.Dir }

// Rescan re-reads the trusted keys and the plugins dir. Running plugins
// whose file is still accepted keep running; the others stop once their
// calls are done. No pin changes: a cluster whose pinned binary is no
// longer accepted (or was replaced) is refused that role until an admin
// restores the file or pins it again, and is logged here.
func (m *Manager) Rescan(ctx context.Context) error {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	keys := m.loadKeys()
	accepted, refused, err := scan(ctx, m.cfg.Dir, scanOptions{describeTimeout: m.cfg.DescribeTimeout, parallel: m.cfg.ScanParallel,
		keys: keys, execDir: m.cfg.ExecDir})
	if err != nil {
		return err
	}
	m.prune(accepted)
	for _, r := range refused {
		m.log.Warn("refused role plugin", "file", r.Path, "reason", r.Reason)
	}
	for role, vs := range accepted {
		for _, p := range vs {
			m.log.Info("role plugin available", "role", role, "version", p.Version, "file", p.Path)
		}
	}
	if len(accepted) == 0 {
		// A manager without plugins serves, but every role task fails.
		m.log.Warn("NO ROLE PLUGINS: installService and every later step will fail", "what_to_do", noPlugins(m.cfg.Dir, len(refused)).Error())
	}
	m.mu.Lock()
	m.accepted, m.refused, m.keys = accepted, refused, keys
	keep := map[string]bool{}
	for _, vs := range accepted {
		for _, p := range vs {
			keep[clientKey(p)] = true
		}
	}
	var gone []*client
	for k, c := range m.clients {
		if !keep[k] {
			delete(m.clients, k)
			gone = append(gone, c)
		}
	}
	m.mu.Unlock()
	// Idle processes of files that went away stop now; busy ones when
	// their last call returns.
	for _, c := range gone {
		c.retire()
	}
	m.warnBrokenPins(ctx)
	return nil
}

// loadKeys reads the trusted keys and logs what is wrong with them.
func (m *Manager) loadKeys() *plugintrust.Keys {
	if m.cfg.DataDir == "" {
		return nil
	}
	keys := plugintrust.Load(m.cfg.DataDir)
	if err := keys.Err(); err != nil {
		m.log.Error("no plugin key is trusted: every role plugin is refused", "dir", keys.Dir(), "error", err)
	}
	for _, p := range keys.Problems() {
		m.log.Warn("trusted plugin key skipped", "problem", p)
	}
	for _, k := range keys.List() {
		m.log.Debug("trusted plugin key", "fingerprint", k.Fingerprint, "file", k.File)
	}
	return keys
}

// warnBrokenPins logs every pin whose binary cannot run now.
func (m *Manager) warnBrokenPins(ctx context.Context) {
	if m.cfg.Store == nil {
		return
	}
	pins, err := m.cfg.Store.ListPins(ctx)
	if err != nil {
		m.log.Warn("could not check the clusters' pins after the scan", "error", err)
		return
	}
	for _, pin := range pins {
		if _, err := m.pinned(pin); err != nil {
			m.log.Warn("a cluster's pinned plugin cannot run; its tasks of this role fail until it is fixed",
				"cluster", pin.ClusterID, "role", pin.Role, "version", pin.Version, "error", err)
		}
	}
}

// Listing is what List reports.
type Listing struct {
	Plugins []Plugin  `json:"plugins"` // by role, highest version first
	Refused []Refused `json:"refused"`
}

// List returns the accepted plugins and the refused files of the last scan.
func (m *Manager) List() Listing {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := Listing{Plugins: []Plugin{}, Refused: append([]Refused{}, m.refused...)}
	for _, role := range sortedKeys(m.accepted) {
		out.Plugins = append(out.Plugins, m.accepted[role]...)
	}
	return out
}

// lookup returns the accepted plugin of role at version ("" for the
// highest). The error says why a version is missing: refused (and why) or
// not installed.
func (m *Manager) lookup(role, version string) (Plugin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs := m.accepted[role]
	if version == "" {
		if len(vs) == 0 {
			return Plugin{}, fmt.Errorf("%w: no accepted plugin for role %s in %s", ErrNoPlugin, role, m.cfg.Dir)
		}
		return vs[0], nil
	}
	for _, p := range vs {
		if p.Version == version {
			return p, nil
		}
	}
	if r, ok := m.refusedLocked(role, version); ok {
		return Plugin{}, fmt.Errorf("%w: %s plugin %s was refused: %s", ErrNoPlugin, role, version, r.Error())
	}
	return Plugin{}, fmt.Errorf("%w: %s plugin version %s is not installed in %s", ErrNoPlugin, role, version, m.cfg.Dir)
}

// pinned returns the accepted plugin a pin names: its version and, when
// the pin records one, its binary. ErrBinaryChanged when the version is
// there as another binary.
func (m *Manager) pinned(pin store.PluginPin) (Plugin, error) {
	p, err := m.lookup(pin.Role, pin.Version)
	if err != nil || pin.SHA256 == "" || p.SHA256 == pin.SHA256 {
		return p, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.accepted[pin.Role] {
		if q.Version == pin.Version && q.SHA256 == pin.SHA256 {
			return q, nil
		}
	}
	return Plugin{}, fmt.Errorf("%w: %s %s was pinned as sha256 %s, the accepted file %s is sha256 %s",
		ErrBinaryChanged, pin.Role, pin.Version, pin.SHA256, p.File(m.cfg.Dir), p.SHA256)
}

func (m *Manager) refusedLocked(role, version string) (Refused, bool) {
	for _, r := range m.refused {
		if r.Role == role && r.Version == version {
			return r, true
		}
	}
	return Refused{}, false
}

// versions lists the accepted versions of role, highest first.
func (m *Manager) versions(role string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, p := range m.accepted[role] {
		out = append(out, p.Version)
	}
	return out
}

// PinInfo is the version a cluster uses for a role: Version is the
// resolved version, Constraint the rule it was pinned with ("" when it was
// pinned at first use).
type PinInfo struct {
	ClusterID  int64  `json:"clusterId"`
	Role       string `json:"role"`
	Version    string `json:"version"`
	Constraint string `json:"constraint,omitempty"`
	SHA256     string `json:"sha256,omitempty"` // the binary pinned
}

// Pins lists every recorded pin.
func (m *Manager) Pins(ctx context.Context) ([]PinInfo, error) {
	if m.cfg.Store == nil {
		return []PinInfo{}, nil
	}
	pins, err := m.cfg.Store.ListPins(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PinInfo, 0, len(pins))
	for _, p := range pins {
		out = append(out, pinInfo(p))
	}
	return out, nil
}

func pinInfo(p store.PluginPin) PinInfo {
	return PinInfo{ClusterID: p.ClusterID, Role: p.Role, Version: p.Version, Constraint: p.Constraint, SHA256: p.SHA256}
}

// Pin makes a cluster use a version of role chosen by rule: an exact
// version or a constraint (see ParseConstraint), which resolves now to the
// highest accepted version it matches and stays on it (a later install
// changes nothing until the cluster is pinned again). The pin records the
// binary's SHA-256: pinning again is also how an admin accepts a new build
// under the same version. It is refused while
// the cluster has a RUNNING task (ErrBusy), for a rule that does not parse
// (ErrBadVersion) or when no accepted version matches (ErrNoPlugin).
func (m *Manager) Pin(ctx context.Context, clusterID int64, role, rule string) (PinInfo, error) {
	role = strings.ToUpper(strings.TrimSpace(role))
	if m.cfg.Store == nil {
		return PinInfo{}, errors.New("pins need a database")
	}
	c, err := ParseConstraint(rule)
	if err != nil {
		return PinInfo{}, fmt.Errorf("%w: %v", ErrBadVersion, err)
	}
	version, err := m.match(role, c)
	if err != nil {
		return PinInfo{}, err
	}
	p, err := m.lookup(role, version)
	if err != nil {
		return PinInfo{}, err
	}
	pin := store.PluginPin{ClusterID: clusterID, Role: role, Version: version, Constraint: c.String(), SHA256: p.SHA256}
	err = m.cfg.Store.Tx(ctx, func(tx *store.Store) error {
		if err := notBusy(ctx, tx, clusterID, "pin "+role+" "+c.String()); err != nil {
			return err
		}
		return tx.SetPin(ctx, pin)
	})
	if err != nil {
		return PinInfo{}, err
	}
	m.log.Info("plugin pinned", "cluster", clusterID, "role", role, "version", version, "rule", c.String(), "sha256", p.SHA256)
	return pinInfo(pin), nil
}

// match resolves a rule to the highest accepted version of role it
// matches.
func (m *Manager) match(role string, c Constraint) (string, error) {
	if c.Exact() {
		p, err := m.lookup(role, strings.TrimPrefix(c.String(), "="))
		return p.Version, err
	}
	vs := m.versions(role)
	if len(vs) == 0 {
		return "", fmt.Errorf("%w: no accepted plugin for role %s in %s", ErrNoPlugin, role, m.cfg.Dir)
	}
	v := c.Highest(vs)
	if v == "" {
		return "", fmt.Errorf("%w: no accepted %s plugin matches %q (accepted: %s)", ErrNoPlugin, role, c.String(), strings.Join(vs, ", "))
	}
	return v, nil
}

// Unpin removes a cluster's pin for role: its next use pins the highest
// accepted version then. Refused while the cluster has a RUNNING task
// (ErrBusy); ErrNotPinned when there is no pin.
func (m *Manager) Unpin(ctx context.Context, clusterID int64, role string) error {
	role = strings.ToUpper(strings.TrimSpace(role))
	if m.cfg.Store == nil {
		return errors.New("pins need a database")
	}
	err := m.cfg.Store.Tx(ctx, func(tx *store.Store) error {
		if err := notBusy(ctx, tx, clusterID, "unpin "+role); err != nil {
			return err
		}
		return tx.DeletePin(ctx, clusterID, role)
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: cluster %d has no pin for %s", ErrNotPinned, clusterID, role)
	}
	if err == nil {
		m.log.Info("plugin unpinned", "cluster", clusterID, "role", role)
	}
	return err
}

func notBusy(ctx context.Context, st *store.Store, clusterID int64, what string) error {
	n, err := st.RunningTasks(ctx, clusterID)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: cluster %d has %d running task(s); %s once they finish", ErrBusy, clusterID, n, what)
	}
	return nil
}

// resolve picks the plugin a cluster uses for a role: its pin, or else the
// highest accepted version, which is then pinned (with its binary's hash)
// so that the cluster keeps it when newer versions are installed. A pin
// from before pins had hashes gets the hash of the binary it uses now.
func (m *Manager) resolve(ctx context.Context, clusterID int64, role string) (Plugin, error) {
	if m.cfg.Store == nil {
		return m.lookup(role, "")
	}
	pin, err := m.cfg.Store.GetPin(ctx, clusterID, role)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		p, err := m.lookup(role, "")
		if err != nil {
			return Plugin{}, err
		}
		// Another caller may have pinned first: PinIfAbsent returns theirs.
		if pin, err = m.cfg.Store.PinIfAbsent(ctx, store.PluginPin{ClusterID: clusterID, Role: role, Version: p.Version, SHA256: p.SHA256}); err != nil {
			return Plugin{}, err
		}
	default:
		return Plugin{}, fmt.Errorf("read plugin pin of cluster %d: %w", clusterID, err)
	}
	p, err := m.pinned(pin)
	if err == nil && pin.SHA256 == "" {
		if pin, err = m.cfg.Store.FillPinSHA256(ctx, clusterID, role, pin.Version, p.SHA256); err != nil {
			return Plugin{}, err
		}
		m.log.Info("recorded the binary of a pin made before pins had one", "cluster", clusterID, "role", role, "version", pin.Version, "sha256", pin.SHA256)
		p, err = m.pinned(pin)
	}
	if err != nil {
		return Plugin{}, pinError(clusterID, pin, err)
	}
	return p, nil
}

// pinError says why a cluster's pin cannot be used, and what to do.
func pinError(clusterID int64, pin store.PluginPin, err error) error {
	err = fmt.Errorf("cluster %d is pinned to %s %s%s: %w", clusterID, pin.Role, pin.Version, ruleNote(pin.Constraint), err)
	if errors.Is(err, ErrBinaryChanged) {
		return fmt.Errorf("%w; it is not used for this cluster: put the pinned build back, or if the new build is meant, pin it again (dorismanager plugins pin %d %s %s, admin)",
			err, clusterID, pin.Role, pin.Version)
	}
	return err
}

func ruleNote(rule string) string {
	if rule == "" {
		return ""
	}
	return fmt.Sprintf(" (rule %q)", rule)
}

// Resolve reports which plugin a cluster uses for a role (pinning the
// highest accepted version when there is no pin yet).
func (m *Manager) Resolve(ctx context.Context, clusterID int64, role string) (Plugin, error) {
	return m.resolve(ctx, clusterID, strings.ToUpper(role))
}

// Ready reports an error saying what to do when no role plugin was
// accepted in the last scan of the plugins dir.
func (m *Manager) Ready() error {
	l := m.List()
	if len(l.Plugins) > 0 {
		return nil
	}
	return noPlugins(m.cfg.Dir, len(l.Refused))
}

// noPlugins says what to do about a plugins dir without an accepted plugin.
func noPlugins(dir string, refused int) error {
	msg := fmt.Sprintf("no role plugin is loaded from %s: install the fe, be and broker plugins there, signed by a trusted key (dorismanager plugins trust KEY; dorismanager plugins install FILE tells a running manager to rescan), or point --plugins-dir at them", dir)
	if refused > 0 {
		msg += fmt.Sprintf(" (%d file(s) refused; dorismanager plugins list says why)", refused)
	}
	return errors.New(msg)
}

func (m *Manager) client(p Plugin) (*client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("plugin host is closed")
	}
	k := clientKey(p)
	c := m.clients[k]
	if c == nil {
		c = newClient(p, m.cfg, m.log)
		m.clients[k] = c
	}
	return c, nil
}

// observe times one call.
func (m *Manager) observe(start time.Time, role, method string, err error) {
	outcome := "ok"
	var f *sdk.Failure
	if errors.As(err, &f) {
		outcome = "failure"
	} else if err != nil {
		outcome = "error"
	}
	m.calls.Observe(time.Since(start).Seconds(), role, method, outcome)
}

// Close stops every plugin process and waits for them to exit.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	cs := m.clients
	m.clients = map[string]*client{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.kill()
		}()
	}
	wg.Wait()
	m.scanMu.Lock()
	m.removeExecDir()
	m.scanMu.Unlock()
	return nil
}

func clientKey(p Plugin) string { return p.Path + "@" + p.SHA256 }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
