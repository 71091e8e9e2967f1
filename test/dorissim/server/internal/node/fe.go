package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim/server/internal/conf"
)

// ErrNotAdded ends a 0.x FE whose helper does not know it.
var ErrNotAdded = errors.New("current node is not added to the group. please add it first.")

type fe struct {
	o       Options
	c       *conf.Conf
	log     *logger
	host    string
	metaDir string
	ports   map[string]int
	started time.Time

	hbInterval    time.Duration
	retryInterval time.Duration
	cloneInterval time.Duration
	cloneBatch    int
	cfg           *settings

	mu   sync.Mutex
	meta *Meta
}

func (f *fe) selfAddr() string {
	return net.JoinHostPort(f.host, strconv.Itoa(f.ports["edit_log_port"]))
}

// RunFE runs a frontend until ctx ends or a start-up check fails.
func RunFE(ctx context.Context, o Options) error {
	setComm("java")
	if err := o.resolveVersion(); err != nil {
		return err
	}
	c, err := conf.ParseFile(filepath.Join(o.Home, "conf", "fe.conf"), o.lookup)
	if err != nil {
		return fmt.Errorf("load fe.conf: %w", err)
	}
	lf, err := openLog(logDir(&o, c, "sys_log_dir"), "fe.log")
	if err != nil {
		return err
	}
	defer lf.Close()
	f := &fe{o: o, c: c, started: time.Now(),
		log:           newLogger(teeErrors{lf}, log4jLine("DorisFE.start():0"), c.String("sys_log_level", "INFO")),
		hbInterval:    durationEnv(&o, EnvHeartbeatInterval, 5*time.Second),
		retryInterval: durationEnv(&o, EnvJoinRetryInterval, 5*time.Second),
		cloneInterval: durationEnv(&o, EnvCloneInterval, time.Second),
		cloneBatch:    intEnv(&o, EnvCloneBatch, 4),
		cfg:           newSettings(feConfDefs, c, o.lookup),
		ports:         map[string]int{}}
	err = f.run(ctx)
	if err != nil {
		f.log.Errorf("%v", err)
	}
	return err
}

// teeErrors copies ERROR lines to stderr, which the start script sends to fe.out.
type teeErrors struct{ f *os.File }

func (t teeErrors) Write(p []byte) (int, error) {
	if len(p) > 30 && containsLevel(p, " ERROR ") {
		_, _ = os.Stderr.Write(p)
	}
	return t.f.Write(p)
}

func containsLevel(p []byte, level string) bool {
	for i := 0; i+len(level) <= len(p) && i < 40; i++ {
		if string(p[i:i+len(level)]) == level {
			return true
		}
	}
	return false
}

func (f *fe) run(ctx context.Context) error {
	f.log.Infof("Doris FE starting, version %s", VersionString(f.o.Version))
	for _, p := range []namedPort{{"http_port", 8030}, {"rpc_port", 9020}, {"query_port", 9030}, {"edit_log_port", 9010}} {
		v, err := f.c.Port(p.key, p.port)
		if err != nil {
			return err
		}
		f.ports[p.key] = v
	}
	f.metaDir = f.c.String("meta_dir", filepath.Join(f.o.Home, "doris-meta"))
	if st, err := os.Stat(f.metaDir); err != nil || !st.IsDir() {
		return fmt.Errorf("Doris' meta dir %s does not exist. You need to create it before starting FE", f.metaDir)
	}
	pid, err := lockPidFile(filepath.Join(pidDir(&f.o), "fe.pid"))
	if err != nil {
		return err
	}
	defer pid.Close()
	if f.host, err = host(f.c, f.o.Version); err != nil {
		return err
	}
	// As FrontendOptions logs it: InetAddress's form, "/<ip>".
	f.log.Infof("local address: /%s.", f.host)
	ports := f.portList()
	// Check every port before joining, as the real FE does at start.
	ls, err := listenAll(ports)
	if err != nil {
		return fmt.Errorf("%w. You can change this port by modifying fe.conf", err)
	}
	for _, l := range ls {
		l.Close()
	}

	if err := f.initMeta(ctx); err != nil {
		return err
	}
	if ls, err = listenAll(ports); err != nil {
		return err
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	go serveJSON(ls["edit_log_port"], f.handlePeer)
	go serveSilent(ls["rpc_port"])
	go f.serveMySQL(ls["query_port"])
	hs := &http.Server{Handler: f.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ls["http_port"]) }()
	defer hs.Close()

	f.mu.Lock()
	master, clusterID := f.meta.IsMaster, f.meta.ClusterID
	f.mu.Unlock()
	role := "FOLLOWER"
	if master {
		role = "MASTER"
		go f.heartbeatLoop(ctx)
		go f.tabletScheduler(ctx, f.cloneInterval, f.cloneBatch)
	}
	f.log.Infof("thrift server started with port %d.", f.ports["rpc_port"])
	f.log.Infof("mysql server started with port %d.", f.ports["query_port"])
	f.log.Infof("http server started with port %d.", f.ports["http_port"])
	f.log.Infof("transfer to %s, cluster id %d", role, clusterID)
	<-ctx.Done()
	f.log.Infof("frontend is shutting down")
	return nil
}

func (f *fe) portList() []namedPort {
	return []namedPort{{"edit_log_port", f.ports["edit_log_port"]}, {"http_port", f.ports["http_port"]},
		{"rpc_port", f.ports["rpc_port"]}, {"query_port", f.ports["query_port"]}}
}

// initMeta makes this FE a master, a joined member, or waits to be added.
func (f *fe) initMeta(ctx context.Context) error {
	m, err := loadMeta(f.metaDir)
	if err != nil {
		return err
	}
	if m != nil {
		f.meta = m
		f.log.Infof("loaded meta: cluster id %d, is master %v, written by %s", m.ClusterID, m.IsMaster, m.WrittenBy)
		m.WrittenBy = VersionString(f.o.Version)
		if m.IsMaster {
			for _, x := range m.Frontends {
				x.Alive = x.Name == m.SelfName
				if x.Name == m.SelfName {
					x.LastStartTime = f.started
					x.Version = VersionString(f.o.Version)
				}
			}
			return m.save(f.metaDir)
		}
		// A known member rejoins its master; the stored master wins over --helper.
		return f.join(ctx, m.Master)
	}
	if f.o.Helper == "" || f.o.Helper == f.selfAddr() {
		m = &Meta{ClusterID: randomClusterID(), SelfName: feNodeName(), IsMaster: true, NextID: 10001,
			WrittenBy: VersionString(f.o.Version)}
		m.Frontends = append(m.Frontends, &Frontend{Name: m.SelfName, Host: f.host, EditLogPort: f.ports["edit_log_port"],
			HTTPPort: f.ports["http_port"], QueryPort: f.ports["query_port"], RPCPort: f.ports["rpc_port"],
			Role: "FOLLOWER", IsHelper: true, Joined: true, Alive: true, LastStartTime: f.started,
			LastHeartbeat: f.started, Version: VersionString(f.o.Version)})
		f.meta = m
		f.log.Infof("new cluster initialized, cluster id: %d, node name: %s", m.ClusterID, m.SelfName)
		return m.save(f.metaDir)
	}
	return f.join(ctx, f.o.Helper)
}

type peerReq struct {
	Op          string `json:"op"`
	Host        string `json:"host,omitempty"`
	EditLogPort int    `json:"editLogPort,omitempty"`
	HTTPPort    int    `json:"httpPort,omitempty"`
	QueryPort   int    `json:"queryPort,omitempty"`
	RPCPort     int    `json:"rpcPort,omitempty"`
	Version     string `json:"version,omitempty"`
	ClusterID   int64  `json:"clusterId,omitempty"`
	Meta        *Meta  `json:"meta,omitempty"`
	SQL         string `json:"sql,omitempty"`
	From        string `json:"from,omitempty"`
	DB          string `json:"db,omitempty"`
	User        string `json:"user,omitempty"`
	Key         string `json:"key,omitempty"`
	Value       string `json:"value,omitempty"`
}

type peerResp struct {
	OK        bool   `json:"ok"`
	Err       string `json:"err,omitempty"`
	Code      uint16 `json:"code,omitempty"`
	NotAdded  bool   `json:"notAdded,omitempty"`
	ClusterID int64  `json:"clusterId,omitempty"`
	Master    string `json:"master,omitempty"`
	Name      string `json:"name,omitempty"`
	Meta      *Meta  `json:"meta,omitempty"`

	HTTPPort          int       `json:"httpPort,omitempty"`
	QueryPort         int       `json:"queryPort,omitempty"`
	RPCPort           int       `json:"rpcPort,omitempty"`
	Version           string    `json:"version,omitempty"`
	ReplayedJournalID int64     `json:"replayedJournalId,omitempty"`
	StartTime         time.Time `json:"startTime,omitempty"`

	Columns  []string   `json:"columns,omitempty"`
	Rows     [][]string `json:"rows,omitempty"`
	Affected uint64     `json:"affected,omitempty"`
}

func (f *fe) joinReq() peerReq {
	return peerReq{Op: "join", Host: f.host, EditLogPort: f.ports["edit_log_port"], HTTPPort: f.ports["http_port"],
		QueryPort: f.ports["query_port"], RPCPort: f.ports["rpc_port"], Version: VersionString(f.o.Version)}
}

// join asks helper until the master has this FE in its group. 1.x and 2.x
// keep retrying; 0.x gives up at the first refusal.
func (f *fe) join(ctx context.Context, helper string) error {
	for {
		var resp peerResp
		err := call(helper, 5*time.Second, f.joinReq(), &resp)
		switch {
		case err == nil && resp.OK:
			m := resp.Meta
			m.IsMaster, m.Master, m.SelfName = false, resp.Master, resp.Name
			f.mu.Lock()
			f.meta = m
			f.mu.Unlock()
			f.log.Infof("finished to get cluster id: %d, role: FOLLOWER and node name: %s from helper %s",
				m.ClusterID, resp.Name, helper)
			return m.save(f.metaDir)
		case err != nil:
			f.log.Warnf("failed to get fe node type from helper node: %s. %v", helper, err)
		case resp.Err != "" && !resp.NotAdded:
			return fmt.Errorf("helper %s refused this node: %s", helper, resp.Err)
		}
		if major(f.o.Version) < 1 {
			return ErrNotAdded
		}
		f.log.Warnf("current node is not added to the group. please add it first. sleep 5 seconds and retry, current helper nodes: [%s]", helper)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.retryInterval):
		}
	}
}

func (f *fe) handlePeer(raw json.RawMessage) any {
	var req peerReq
	if err := json.Unmarshal(raw, &req); err != nil {
		return peerResp{Err: "bad request"}
	}
	f.mu.Lock()
	master, masterAddr := f.meta.IsMaster, f.meta.Master
	f.mu.Unlock()
	switch req.Op {
	case "join":
		if !master {
			var resp peerResp
			if err := call(masterAddr, 5*time.Second, req, &resp); err != nil {
				return peerResp{Err: "failed to reach master: " + err.Error()}
			}
			return resp
		}
		return f.acceptJoin(req)
	case "heartbeat":
		return f.acceptHeartbeat(req)
	case "query", "setConfig":
		if !master {
			return peerResp{Err: "this node is not master"}
		}
		return toPeerResp(f.execPeer(req))
	case "setConfigLocal":
		return toPeerResp(f.setFEConfigLocal(req.Key, req.Value))
	}
	return peerResp{Err: "unknown op " + req.Op}
}

func toPeerResp(res *result, err error) peerResp {
	if err != nil {
		var d *ddlError
		if errors.As(err, &d) {
			return peerResp{Err: d.msg, Code: d.code}
		}
		return peerResp{Err: err.Error()}
	}
	return peerResp{OK: true, Columns: res.columns, Rows: res.rows, Affected: res.affected}
}

func (f *fe) acceptJoin(req peerReq) peerResp {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.meta.frontend(req.Host, req.EditLogPort)
	if x == nil {
		f.log.Warnf("frontend %s:%d is not in the group, refuse it", req.Host, req.EditLogPort)
		return peerResp{NotAdded: true, Err: ErrNotAdded.Error()}
	}
	now := time.Now()
	x.Joined, x.Alive = true, true
	x.HTTPPort, x.QueryPort, x.RPCPort, x.Version = req.HTTPPort, req.QueryPort, req.RPCPort, req.Version
	x.LastStartTime, x.LastHeartbeat, x.ErrMsg = now, now, ""
	f.meta.JournalID++
	if err := f.meta.save(f.metaDir); err != nil {
		return peerResp{Err: err.Error()}
	}
	f.log.Infof("frontend %s (%s:%d) joined as %s", x.Name, x.Host, x.EditLogPort, x.Role)
	return peerResp{OK: true, ClusterID: f.meta.ClusterID, Master: f.selfAddr(), Name: x.Name, Meta: f.meta.clone()}
}

func (f *fe) acceptHeartbeat(req peerReq) peerResp {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.ClusterID != f.meta.ClusterID {
		return peerResp{Err: fmt.Sprintf("invalid cluster id: %d", req.ClusterID)}
	}
	if req.Meta != nil && !f.meta.IsMaster {
		m := req.Meta
		m.IsMaster, m.Master, m.SelfName = false, f.meta.Master, f.meta.SelfName
		f.meta = m
		_ = m.save(f.metaDir)
	}
	return peerResp{OK: true, HTTPPort: f.ports["http_port"], QueryPort: f.ports["query_port"], RPCPort: f.ports["rpc_port"],
		Version: VersionString(f.o.Version), ReplayedJournalID: f.meta.JournalID, StartTime: f.started}
}

func (f *fe) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/bootstrap", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		data := map[string]any{"replayedJournalId": f.meta.JournalID, "queryPort": f.ports["query_port"],
			"rpcPort": f.ports["rpc_port"], "version": VersionString(f.o.Version)}
		if r.URL.Query().Get("cluster_id") != "" {
			data["clusterId"] = f.meta.ClusterID
		}
		f.mu.Unlock()
		writeJSON(w, map[string]any{"msg": "success", "code": 0, "data": data, "count": 0})
	})
	mux.HandleFunc("/api/fe_version_info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"msg": "success", "code": 0,
			"data": map[string]any{"feVersionInfo": versionInfo(f.o.Version)}, "count": 0})
	})
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		total, online := len(f.meta.Backends), 0
		for _, b := range f.meta.Backends {
			if b.Alive {
				online++
			}
		}
		f.mu.Unlock()
		writeJSON(w, map[string]any{"msg": "success", "code": 0,
			"data": map[string]any{"online_backend_num": online, "total_backend_num": total}, "count": 0})
	})
	mux.HandleFunc("/api/show_proc", func(w http.ResponseWriter, r *http.Request) {
		res, err := f.query(fmt.Sprintf("SHOW PROC '%s'", r.URL.Query().Get("path")), &session{from: f.host})
		if err != nil {
			writeJSON(w, map[string]any{"msg": err.Error(), "code": 1, "data": nil, "count": 0})
			return
		}
		rows := [][]string{res.columns}
		rows = append(rows, res.rows...)
		writeJSON(w, map[string]any{"msg": "success", "code": 0, "data": rows, "count": 0})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// heartbeatLoop is the master's view of liveness: every node is probed each
// interval and Alive follows the last probe.
func (f *fe) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(f.hbInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.heartbeatOnce()
	}
}

func (f *fe) heartbeatOnce() {
	timeout := f.hbInterval
	if timeout > 2*time.Second {
		timeout = 2 * time.Second
	}
	f.mu.Lock()
	snap := f.meta.clone()
	self := f.meta.SelfName
	f.mu.Unlock()

	var wg sync.WaitGroup
	feRes := make([]peerResp, len(snap.Frontends))
	feErr := make([]error, len(snap.Frontends))
	for i, x := range snap.Frontends {
		if x.Name == self || !x.Joined {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := net.JoinHostPort(x.Host, strconv.Itoa(x.EditLogPort))
			feErr[i] = call(addr, timeout, peerReq{Op: "heartbeat", ClusterID: snap.ClusterID, Meta: snap}, &feRes[i])
			if feErr[i] == nil && !feRes[i].OK {
				feErr[i] = errors.New(feRes[i].Err)
			}
		}()
	}
	beRes := make([]beHeartbeatResp, len(snap.Backends))
	beErr := make([]error, len(snap.Backends))
	for i, b := range snap.Backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := net.JoinHostPort(b.Host, strconv.Itoa(b.HeartbeatPort))
			beErr[i] = call(addr, timeout, beHeartbeatReq{ClusterID: snap.ClusterID, BackendHost: b.Host,
				MasterHost: f.host, MasterRPCPort: f.ports["rpc_port"]}, &beRes[i])
			if beErr[i] == nil && !beRes[i].OK {
				beErr[i] = errors.New(beRes[i].Err)
			}
		}()
	}
	brErr := make([]error, len(snap.Brokers))
	for i, b := range snap.Brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp peerResp
			brErr[i] = call(net.JoinHostPort(b.Host, strconv.Itoa(b.Port)), timeout, peerReq{Op: "ping"}, &resp)
		}()
	}
	wg.Wait()

	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range snap.Frontends {
		x := f.meta.frontend(s.Host, s.EditLogPort)
		if x == nil {
			continue
		}
		if x.Name == self {
			x.Alive, x.LastHeartbeat, x.ReplayedJournalID = true, now, f.meta.JournalID
			continue
		}
		if !s.Joined {
			continue
		}
		if feErr[i] != nil {
			x.Alive, x.ErrMsg = false, "got exception: "+feErr[i].Error()
			continue
		}
		r := feRes[i]
		x.Alive, x.ErrMsg, x.LastHeartbeat = true, "", now
		x.HTTPPort, x.QueryPort, x.RPCPort, x.Version = r.HTTPPort, r.QueryPort, r.RPCPort, r.Version
		x.ReplayedJournalID, x.LastStartTime = r.ReplayedJournalID, r.StartTime
	}
	for i, s := range snap.Backends {
		b := f.meta.backend(s.Host, s.HeartbeatPort)
		if b == nil {
			continue
		}
		if beErr[i] != nil {
			b.Alive, b.ErrMsg = false, beErr[i].Error()
			continue
		}
		r := beRes[i]
		b.Alive, b.ErrMsg, b.LastHeartbeat = true, "", now
		b.BePort, b.HTTPPort, b.BrpcPort, b.Version, b.LastStartTime = r.BePort, r.HTTPPort, r.BrpcPort, r.Version, r.StartTime
	}
	for i, s := range snap.Brokers {
		for _, b := range f.meta.Brokers {
			if b.Name != s.Name || b.Host != s.Host || b.Port != s.Port {
				continue
			}
			if brErr[i] != nil {
				b.Alive, b.ErrMsg = false, brErr[i].Error()
				continue
			}
			if !b.Alive {
				b.LastStartTime = now
			}
			b.Alive, b.ErrMsg, b.LastUpdateTime = true, "", now
		}
	}
}
