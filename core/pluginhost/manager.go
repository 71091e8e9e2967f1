package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dorismanager/dorismanager/core/metrics"
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
)

// Methods are the Role methods Call accepts.
var methods = map[string]func(sdk.Role, context.Context, sdk.Host, sdk.Request) (sdk.Result, error){
	"Precheck":   sdk.Role.Precheck,
	"Install":    sdk.Role.Install,
	"Configure":  sdk.Role.Configure,
	"Start":      sdk.Role.Start,
	"Stop":       sdk.Role.Stop,
	"Status":     sdk.Role.Status,
	"Remove":     sdk.Role.Remove,
	"Register":   member(sdk.Member.Register),
	"Unregister": member(sdk.Member.Unregister),
	// Day-2 operations (core/ops); the plugin clients implement sdk.Remote.
	"Upgrade":     remote(sdk.Remote.Upgrade),
	"Reconfigure": remote(sdk.Remote.Reconfigure),
}

// remote calls a method of sdk.Remote beyond sdk.Role.
func remote(m func(sdk.Remote, context.Context, sdk.Host, sdk.Request) (sdk.Result, error)) func(sdk.Role, context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return func(r sdk.Role, ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
		rm, ok := r.(sdk.Remote)
		if !ok {
			return sdk.Result{}, fmt.Errorf("role plugin %T has no day-2 calls", r)
		}
		return m(rm, ctx, h, req)
	}
}

// member calls an sdk.Member method; the manager's plugin clients
// (*sdk.RoleClient) implement every optional interface.
func member(m func(sdk.Member, context.Context, sdk.Host, sdk.Request) (sdk.Result, error)) func(sdk.Role, context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return func(r sdk.Role, ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
		mem, ok := r.(sdk.Member)
		if !ok {
			return sdk.Result{}, fmt.Errorf("role plugin %T has no cluster membership calls", r)
		}
		return m(mem, ctx, h, req)
	}
}

// Config configures a Manager.
type Config struct {
	// Dir is the plugins dir (--plugins-dir).
	Dir string
	// DB holds the pins (store.PluginPin). Nil: no pins, every cluster uses
	// the highest accepted version.
	DB *gorm.DB
	// Logger receives the manager's messages and every plugin's log.
	Logger hclog.Logger
	// StartTimeout bounds a plugin's start (default 30s).
	StartTimeout time.Duration
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

	mu       sync.Mutex
	accepted map[string][]Plugin // by upper-case role, highest version first
	refused  []Refused
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
	if cfg.ExitGrace == 0 {
		cfg.ExitGrace = 5 * time.Second
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.Named("pluginhost"), clients: map[string]*client{}}
	if cfg.Metrics != nil {
		m.calls = cfg.Metrics.Histogram("dorismanager_plugin_call_duration_seconds",
			"Role plugin calls by role, method and outcome (ok, failure: reported by the plugin, error: the call itself failed), starting the plugin included.",
			metrics.CallBuckets, "role", "method", "outcome")
	}
	if err := m.Rescan(context.Background()); err != nil {
		return nil, err
	}
	return m, nil
}

// Rescan re-reads the plugins dir. Running plugins whose file is still
// accepted keep running; the others stop once their calls are done.
func (m *Manager) Rescan(ctx context.Context) error {
	accepted, refused, err := scan(ctx, m.cfg.Dir)
	if err != nil {
		return err
	}
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
	m.accepted, m.refused = accepted, refused
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
	return nil
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
// highest).
func (m *Manager) lookup(role, version string) (Plugin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vs := m.accepted[role]
	if len(vs) == 0 {
		return Plugin{}, fmt.Errorf("%w: no accepted plugin for role %s in %s", ErrNoPlugin, role, m.cfg.Dir)
	}
	if version == "" {
		return vs[0], nil
	}
	for _, p := range vs {
		if p.Version == version {
			return p, nil
		}
	}
	for _, r := range m.refused {
		if strings.Contains(r.Path, "doris-role-"+strings.ToLower(role)+"_v"+version+"_") {
			return Plugin{}, fmt.Errorf("%w: %s plugin %s was refused: %s", ErrNoPlugin, role, version, r.Error())
		}
	}
	return Plugin{}, fmt.Errorf("%w: %s plugin version %s is not installed in %s", ErrNoPlugin, role, version, m.cfg.Dir)
}

// PinInfo is the version a cluster uses for a role.
type PinInfo struct {
	ClusterID int64  `json:"clusterId"`
	Role      string `json:"role"`
	Version   string `json:"version"`
}

// Pins lists every recorded pin.
func (m *Manager) Pins(ctx context.Context) ([]PinInfo, error) {
	if m.cfg.DB == nil {
		return []PinInfo{}, nil
	}
	var pins []store.PluginPin
	if err := m.cfg.DB.WithContext(ctx).Order("cluster_id, role").Find(&pins).Error; err != nil {
		return nil, fmt.Errorf("list plugin pins: %w", err)
	}
	out := make([]PinInfo, 0, len(pins))
	for _, p := range pins {
		out = append(out, PinInfo{ClusterID: p.ClusterID, Role: p.Role, Version: p.Version})
	}
	return out, nil
}

// Pin makes a cluster use version of role. It is refused while the cluster
// has a RUNNING task (ErrBusy) or when the version is not accepted
// (ErrNoPlugin).
func (m *Manager) Pin(ctx context.Context, clusterID int64, role, version string) error {
	role = strings.ToUpper(strings.TrimSpace(role))
	if m.cfg.DB == nil {
		return errors.New("pins need a database")
	}
	if _, err := m.lookup(role, version); err != nil {
		return err
	}
	return m.cfg.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		err := tx.Model(&store.Task{}).
			Joins("JOIN processes ON processes.id = tasks.process_id").
			Where("processes.cluster_id = ? AND tasks.status = ?", clusterID, "RUNNING").
			Count(&n).Error
		if err != nil {
			return fmt.Errorf("check running tasks of cluster %d: %w", clusterID, err)
		}
		if n > 0 {
			return fmt.Errorf("%w: cluster %d has %d running task(s); pin %s %s once they finish", ErrBusy, clusterID, n, role, version)
		}
		return upsertPin(tx, clusterID, role, version, true)
	})
}

func upsertPin(tx *gorm.DB, clusterID int64, role, version string, overwrite bool) error {
	pin := store.PluginPin{ClusterID: clusterID, Role: role, Version: version, UpdatedAt: time.Now()}
	onConflict := clause.OnConflict{Columns: []clause.Column{{Name: "cluster_id"}, {Name: "role"}}, DoNothing: true}
	if overwrite {
		onConflict = clause.OnConflict{Columns: []clause.Column{{Name: "cluster_id"}, {Name: "role"}},
			DoUpdates: clause.AssignmentColumns([]string{"version", "updated_at"})}
	}
	if err := tx.Clauses(onConflict).Create(&pin).Error; err != nil {
		return fmt.Errorf("pin %s %s for cluster %d: %w", role, version, clusterID, err)
	}
	return nil
}

// resolve picks the plugin a cluster uses for a role: its pin, or else the
// highest accepted version, which is then pinned so that the cluster keeps
// it when newer versions are installed.
func (m *Manager) resolve(ctx context.Context, clusterID int64, role string) (Plugin, error) {
	if m.cfg.DB == nil {
		return m.lookup(role, "")
	}
	var pin store.PluginPin
	err := m.cfg.DB.WithContext(ctx).Where("cluster_id = ? AND role = ?", clusterID, role).Take(&pin).Error
	switch {
	case err == nil:
		p, err := m.lookup(role, pin.Version)
		if err != nil {
			return Plugin{}, fmt.Errorf("cluster %d is pinned to %s %s: %w", clusterID, role, pin.Version, err)
		}
		return p, nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		p, err := m.lookup(role, "")
		if err != nil {
			return Plugin{}, err
		}
		if err := upsertPin(m.cfg.DB.WithContext(ctx), clusterID, role, p.Version, false); err != nil {
			return Plugin{}, err
		}
		// Another caller may have pinned first: use what is recorded.
		if err := m.cfg.DB.WithContext(ctx).Where("cluster_id = ? AND role = ?", clusterID, role).Take(&pin).Error; err != nil {
			return Plugin{}, fmt.Errorf("read pin: %w", err)
		}
		return m.lookup(role, pin.Version)
	default:
		return Plugin{}, fmt.Errorf("read plugin pin of cluster %d: %w", clusterID, err)
	}
}

// Resolve reports which plugin a cluster uses for a role (pinning the
// highest accepted version when there is no pin yet).
func (m *Manager) Resolve(ctx context.Context, clusterID int64, role string) (Plugin, error) {
	return m.resolve(ctx, clusterID, strings.ToUpper(role))
}

// Call runs one Role method (Precheck, Install, Configure, Start, Stop,
// Status, Register, Unregister) of the plugin the cluster uses for role,
// serving h to it for the duration of the call. The plugin's log lines
// during the call go to taskLog as well as to the manager's log.
//
// A failure the plugin reports is returned as *sdk.Failure. A plugin that
// exits during the call gives an error wrapping ErrPluginExited; the next
// call starts it afresh.
func (m *Manager) Call(ctx context.Context, clusterID int64, role, method string, h sdk.Host, taskLog io.Writer, req sdk.Request) (sdk.Result, error) {
	role = strings.ToUpper(role)
	fn, ok := methods[method]
	if !ok {
		return sdk.Result{}, fmt.Errorf("unknown role method %q", method)
	}
	p, err := m.resolve(ctx, clusterID, role)
	if err != nil {
		return sdk.Result{}, err
	}
	c, err := m.client(p)
	if err != nil {
		return sdk.Result{}, err
	}
	start := time.Now()
	res, err := c.call(ctx, method, fn, h, taskLog, req)
	outcome := "ok"
	var f *sdk.Failure
	if errors.As(err, &f) {
		outcome = "failure"
	} else if err != nil {
		outcome = "error"
	}
	m.calls.Observe(time.Since(start).Seconds(), role, method, outcome)
	return res, err
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
	msg := fmt.Sprintf("no role plugin is loaded from %s: install the fe, be and broker plugins there (dorismanager plugins install FILE), then POST /api/plugins/rescan or restart the manager; or point --plugins-dir at them", dir)
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
