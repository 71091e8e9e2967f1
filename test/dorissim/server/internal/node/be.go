package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim/server/internal/conf"
)

type beHeartbeatReq struct {
	ClusterID     int64  `json:"clusterId"`
	BackendHost   string `json:"backendHost"`
	MasterHost    string `json:"masterHost"`
	MasterRPCPort int    `json:"masterRpcPort"`
}

type beHeartbeatResp struct {
	OK        bool      `json:"ok"`
	Err       string    `json:"err,omitempty"`
	BePort    int       `json:"bePort"`
	HTTPPort  int       `json:"httpPort"`
	BrpcPort  int       `json:"brpcPort"`
	Version   string    `json:"version"`
	StartTime time.Time `json:"startTime"`
}

type be struct {
	o       Options
	log     *logger
	host    string
	roots   []conf.StorageRoot
	ports   map[string]int
	started time.Time

	cfg        *settings
	customConf string // be_custom.conf

	mu        sync.Mutex
	clusterID int64
}

const beCustomConf = "be_custom.conf"

// customConfDir follows custom_config_dir (default ${DORIS_HOME}/conf).
func customConfDir(o *Options, c *conf.Conf) string {
	return c.String("custom_config_dir", filepath.Join(o.Home, "conf"))
}

// RunBE runs a backend until ctx ends or a start-up check fails.
func RunBE(ctx context.Context, o Options) error {
	setComm("doris_be")
	if err := o.resolveVersion(); err != nil {
		return err
	}
	c, err := conf.ParseFile(filepath.Join(o.Home, "conf", "be.conf"), o.lookup)
	if err != nil {
		return fmt.Errorf("load be.conf: %w", err)
	}
	// be_custom.conf holds what update_config persisted; it is read after
	// be.conf and wins over it.
	custom := filepath.Join(customConfDir(&o, c), beCustomConf)
	if cc, err := conf.ParseFile(custom, o.lookup); err == nil {
		c.Merge(cc)
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("load %s: %w", custom, err)
	}
	lf, err := openLog(logDir(&o, c, "sys_log_dir"), "be.INFO")
	if err != nil {
		return err
	}
	defer lf.Close()
	b := &be{o: o, started: time.Now(), ports: map[string]int{},
		log: newLogger(teeGlog{lf}, glogLine, c.String("sys_log_level", "INFO")), cfg: newSettings(beConfDefs, c, o.lookup),
		customConf: custom}
	if err := b.run(ctx, c); err != nil {
		b.log.Errorf("%v", err)
		return err
	}
	return nil
}

// teeGlog copies error lines to stderr, which the start script sends to be.out.
type teeGlog struct{ f *os.File }

func (t teeGlog) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == 'E' {
		_, _ = os.Stderr.Write(p)
	}
	return t.f.Write(p)
}

func (b *be) run(ctx context.Context, c *conf.Conf) error {
	b.log.Infof("Doris BE starting, version %s", VersionString(b.o.Version))
	for _, p := range []namedPort{{"be_port", 9060}, {"webserver_port", 8040}, {"heartbeat_service_port", 9050}, {"brpc_port", 8060}} {
		v, err := c.Port(p.key, p.port)
		if err != nil {
			return err
		}
		b.ports[p.key] = v
	}
	roots, err := conf.StorageRoots(c.String("storage_root_path", filepath.Join(b.o.Home, "storage")))
	if err != nil {
		return fmt.Errorf("parse config storage_root_path: %w", err)
	}
	for _, r := range roots {
		st, err := os.Stat(r.Path)
		if err != nil || !st.IsDir() {
			return fmt.Errorf("fail to open StorageEngine, res=[NOT_FOUND]storage_root_path %s does not exist, create it first", r.Path)
		}
		for _, d := range []string{"data", "meta", "trash", "snapshot"} {
			if err := os.MkdirAll(filepath.Join(r.Path, d), 0o755); err != nil {
				return fmt.Errorf("fail to open StorageEngine, res=[IO_ERROR]cannot create %s under %s: %w", d, r.Path, err)
			}
		}
		if id, err := os.ReadFile(filepath.Join(r.Path, "cluster_id")); err == nil {
			b.clusterID, _ = strconv.ParseInt(strings.TrimSpace(string(id)), 10, 64)
		}
	}
	b.roots = roots
	pid, err := lockPidFile(filepath.Join(pidDir(&b.o), "be.pid"))
	if err != nil {
		return err
	}
	defer pid.Close()
	if b.host, err = host(c, b.o.Version); err != nil {
		return err
	}
	b.log.Infof("local host ip=%s", b.host)
	ls, err := listenAll([]namedPort{{"be_port", b.ports["be_port"]}, {"webserver_port", b.ports["webserver_port"]},
		{"heartbeat_service_port", b.ports["heartbeat_service_port"]}, {"brpc_port", b.ports["brpc_port"]}})
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	go serveSilent(ls["be_port"])
	go serveSilent(ls["brpc_port"])
	go serveJSON(ls["heartbeat_service_port"], b.handleHeartbeat)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "OK", "msg": "To Be Added"})
	})
	mux.HandleFunc("/api/be_version_info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"msg": "success", "code": 0,
			"data": map[string]any{"beVersionInfo": versionInfo(b.o.Version)}, "count": 0})
	})
	mux.HandleFunc("/api/show_config", b.showConfig)
	mux.HandleFunc("/api/update_config", b.updateConfig)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ls["webserver_port"]) }()
	defer hs.Close()
	b.log.Infof("storage roots %d", len(roots))
	b.log.Infof("Doris BE started, be_port %d, webserver_port %d, heartbeat_service_port %d, brpc_port %d",
		b.ports["be_port"], b.ports["webserver_port"], b.ports["heartbeat_service_port"], b.ports["brpc_port"])
	<-ctx.Done()
	b.log.Infof("Doris BE is shutting down")
	return nil
}

// handleHeartbeat accepts the first master's cluster id, keeps it in every
// storage root as the real BE does, and refuses other clusters and a master
// that knows this BE by another address.
func (b *be) handleHeartbeat(raw json.RawMessage) any {
	var req beHeartbeatReq
	if err := json.Unmarshal(raw, &req); err != nil {
		return beHeartbeatResp{Err: "bad heartbeat"}
	}
	if major(b.o.Version) >= 1 && req.BackendHost != b.host {
		msg := fmt.Sprintf("backend ip saved in master does not equal to backend local ip%s vs. %s", req.BackendHost, b.host)
		b.log.Warnf("%s", msg)
		return beHeartbeatResp{Err: msg}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.clusterID == 0 {
		b.clusterID = req.ClusterID
		for _, r := range b.roots {
			_ = os.WriteFile(filepath.Join(r.Path, "cluster_id"), []byte(strconv.FormatInt(req.ClusterID, 10)), 0o644)
		}
		b.log.Infof("get cluster id from master: %d, master %s:%d", req.ClusterID, req.MasterHost, req.MasterRPCPort)
	} else if b.clusterID != req.ClusterID {
		b.log.Warnf("invalid cluster id: %d. ignore.", req.ClusterID)
		return beHeartbeatResp{Err: fmt.Sprintf("invalid cluster id. ignore. Record cluster id = %d, new cluster id = %d", b.clusterID, req.ClusterID)}
	}
	return beHeartbeatResp{OK: true, BePort: b.ports["be_port"], HTTPPort: b.ports["webserver_port"],
		BrpcPort: b.ports["brpc_port"], Version: VersionString(b.o.Version), StartTime: b.started}
}

// showConfig answers GET /api/show_config[?conf_item=name]: an array of
// [name, type, value, mutable].
func (b *be) showConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	only := r.URL.Query().Get("conf_item")
	rows := [][]string{}
	for _, it := range b.cfg.list("") {
		if only == "" || only == it.key {
			rows = append(rows, []string{it.key, it.typ, it.value, strconv.FormatBool(it.mutable)})
		}
	}
	writeJSON(w, rows)
}

type updateResult struct {
	ConfigName string `json:"config_name"`
	Status     string `json:"status"`
	Msg        string `json:"msg"`
}

// updateConfig answers POST /api/update_config?key=value[&persist=true].
// Like the real BE it answers 200 either way; each key's status is OK or
// BAD with the reason. persist=true also writes the key to be_custom.conf.
func (b *be) updateConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	persist := q.Get("persist") == "true"
	var results []updateResult
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "persist" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := q.Get(k)
		res := updateResult{ConfigName: k, Status: "OK"}
		if err := b.cfg.set(k, v); err != nil {
			reason := ""
			switch ce := err.(*confErr); ce.kind {
			case "notFound":
				reason = fmt.Sprintf("[NOT_FOUND]'%s' is not found", k)
			case "notMutable":
				reason = fmt.Sprintf("[NOT_IMPLEMENTED_ERROR]'%s' is not support to modify", k)
			default:
				reason = "[INVALID_ARGUMENT]" + ce.msg
			}
			res.Status, res.Msg = "BAD", fmt.Sprintf("set %s=%s failed, reason: %s.", k, v, reason)
			b.log.Warnf("set_config %s=%s failed", k, v)
		} else {
			b.log.Infof("set_config %s=%s success", k, v)
			if persist {
				if err := b.persist(k, v); err != nil {
					res.Status, res.Msg = "BAD", fmt.Sprintf("set %s=%s failed, reason: %v.", k, v, err)
				}
			}
		}
		results = append(results, res)
	}
	if len(keys) == 0 {
		results = append(results, updateResult{Status: "BAD", Msg: "Now only support to set a single config once, via 'config_name=new_value'"})
	}
	if major(b.o.Version) < 2 {
		// 0.x/1.x answered one object for the (single) key.
		writeJSON(w, map[string]string{"status": results[0].Status, "msg": results[0].Msg})
		return
	}
	writeJSON(w, results)
}

// persist rewrites be_custom.conf with key = value set.
func (b *be) persist(key, value string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, err := os.ReadFile(b.customConf)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, _, ok := strings.Cut(l, "=")
		if l == "" || (ok && strings.TrimSpace(k) == key) {
			continue
		}
		lines = append(lines, l)
	}
	lines = append(lines, key+" = "+value)
	return os.WriteFile(b.customConf, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
