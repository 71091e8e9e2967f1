// Package agents is the manager's side of its agents: the register and
// heartbeat endpoints, per-agent tokens, liveness (an agent is STOP after
// missing three heartbeats and RUNNING again when they resume), and a way to
// wait for an agent's registration without polling.
package agents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/hashicorp/go-hclog"
	"gorm.io/gorm"
)

// Agent statuses.
const (
	StatusRunning = "RUNNING"
	StatusStop    = "STOP"
)

// Sealer encrypts agent tokens at rest (core/secret implements it).
type Sealer interface {
	Seal([]byte) ([]byte, error)
	Open([]byte) ([]byte, error)
}

// Config configures a Registry.
type Config struct {
	DB               *gorm.DB
	Sealer           Sealer
	Logger           hclog.Logger
	HeartbeatSeconds int // told to agents at registration; default 5
	MissedBeats      int // beats missed before STOP; default 3
	// ClientOptions are passed to every agentclient the Registry builds.
	ClientOptions []agentclient.Option
}

// Registry tracks the agents of every cluster.
type Registry struct {
	cfg  Config
	db   *gorm.DB
	log  hclog.Logger
	beat time.Duration

	mu      sync.Mutex
	waiters map[key]chan struct{} // closed when the agent registers
	live    map[int64]*liveness
	changed chan struct{} // closed and replaced on every status change
	closed  bool
}

type key struct {
	cluster int64
	host    string
}

type liveness struct {
	timer *time.Timer
	last  time.Time
}

// ErrUnknownAgent is returned for a cluster/host without an agent record.
var ErrUnknownAgent = errors.New("no agent is known for this host")

// New returns a Registry. Call Start to arm liveness deadlines of agents
// already RUNNING (after a manager restart) and Close at shutdown.
func New(cfg Config) (*Registry, error) {
	if cfg.DB == nil || cfg.Sealer == nil {
		return nil, errors.New("agents: DB and Sealer are required")
	}
	if cfg.HeartbeatSeconds <= 0 {
		cfg.HeartbeatSeconds = 5
	}
	if cfg.MissedBeats <= 0 {
		cfg.MissedBeats = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Registry{cfg: cfg, db: cfg.DB, log: cfg.Logger.Named("agents"),
		beat:    time.Duration(cfg.HeartbeatSeconds) * time.Second,
		waiters: map[key]chan struct{}{}, live: map[int64]*liveness{}, changed: make(chan struct{})}, nil
}

// Start arms a liveness deadline for every agent recorded as RUNNING.
func (r *Registry) Start(ctx context.Context) error {
	var running []store.Agent
	if err := r.db.WithContext(ctx).Where("status = ?", StatusRunning).Find(&running).Error; err != nil {
		return fmt.Errorf("load running agents: %w", err)
	}
	for _, a := range running {
		r.arm(a.ID)
	}
	return nil
}

// Close stops every liveness timer.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, l := range r.live {
		l.timer.Stop()
	}
}

// HashToken is how agent tokens are stored: hex SHA-256.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// Prepare issues a fresh token for the agent of (clusterID, host), creating
// or updating its record, and resets the registration wait for it. The old
// token stops working at once.
func (r *Registry) Prepare(ctx context.Context, clusterID int64, host string, port int, installDir string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b[:])
	sealed, err := r.cfg.Sealer.Seal([]byte(token))
	if err != nil {
		return "", fmt.Errorf("seal agent token: %w", err)
	}
	if port <= 0 {
		port = wire.DefaultPort
	}
	err = r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var a store.Agent
		err := tx.Where("cluster_id = ? AND host = ?", clusterID, host).First(&a).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return tx.Create(&store.Agent{ClusterID: clusterID, Host: host, Port: port, Status: StatusStop,
				TokenHash: HashToken(token), TokenSealed: sealed, InstallDir: installDir}).Error
		}
		if err != nil {
			return err
		}
		return tx.Model(&store.Agent{}).Where("id = ?", a.ID).Updates(map[string]any{
			"token_hash": HashToken(token), "token_sealed": sealed, "port": port, "install_dir": installDir}).Error
	})
	if err != nil {
		return "", fmt.Errorf("record agent of %s: %w", host, err)
	}
	r.mu.Lock()
	r.waiters[key{clusterID, host}] = make(chan struct{})
	r.mu.Unlock()
	return token, nil
}

// WaitRegistered blocks until the agent of (clusterID, host) registers
// after the last Prepare for it, or ctx ends.
func (r *Registry) WaitRegistered(ctx context.Context, clusterID int64, host string) (store.Agent, error) {
	k := key{clusterID, host}
	r.mu.Lock()
	ch, ok := r.waiters[k]
	if !ok {
		ch = make(chan struct{})
		r.waiters[k] = ch
	}
	r.mu.Unlock()
	select {
	case <-ch:
		return r.Get(ctx, clusterID, host)
	case <-ctx.Done():
		return store.Agent{}, ctx.Err()
	}
}

// WaitStatus blocks until the agent of (clusterID, host) has status, or ctx ends.
func (r *Registry) WaitStatus(ctx context.Context, clusterID int64, host, status string) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		a, err := r.Get(ctx, clusterID, host)
		if err != nil && !errors.Is(err, ErrUnknownAgent) {
			return err
		}
		if err == nil && a.Status == status {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("agent of %s is not %s: %w", host, status, ctx.Err())
		}
	}
}

// Get returns the agent record of (clusterID, host).
func (r *Registry) Get(ctx context.Context, clusterID int64, host string) (store.Agent, error) {
	var a store.Agent
	err := r.db.WithContext(ctx).Where("cluster_id = ? AND host = ?", clusterID, host).First(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return a, fmt.Errorf("cluster %d, host %s: %w", clusterID, host, ErrUnknownAgent)
	}
	return a, err
}

// Client returns a client for the agent of (clusterID, host).
func (r *Registry) Client(ctx context.Context, clusterID int64, host string) (*agentclient.Client, error) {
	a, err := r.Get(ctx, clusterID, host)
	if err != nil {
		return nil, err
	}
	tok, err := r.cfg.Sealer.Open(a.TokenSealed)
	if err != nil {
		return nil, fmt.Errorf("open token of agent on %s: %w", host, err)
	}
	port := a.Port
	if port <= 0 {
		port = wire.DefaultPort
	}
	return agentclient.New("http://"+net.JoinHostPort(a.Host, strconv.Itoa(port)), string(tok), r.cfg.ClientOptions...), nil
}

// Handler serves POST .../register and POST .../heartbeat (mount it at
// /agent-api/v1; it matches on the last path element).
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			httpx.Fail(w, httpx.Errorf(http.StatusMethodNotAllowed, "use POST"))
			return
		}
		switch {
		case strings.HasSuffix(req.URL.Path, "/register"):
			r.register(w, req)
		case strings.HasSuffix(req.URL.Path, "/heartbeat"):
			r.heartbeat(w, req)
		default:
			httpx.Fail(w, httpx.NotFound("no such agent endpoint %s", req.URL.Path))
		}
	})
}

// authenticate finds the agent whose token the request carries.
func (r *Registry) authenticate(req *http.Request) (store.Agent, error) {
	var a store.Agent
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return a, httpx.Errorf(http.StatusUnauthorized, "missing agent token")
	}
	err := r.db.WithContext(req.Context()).Where("token_hash = ?", HashToken(tok)).First(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return a, httpx.Errorf(http.StatusUnauthorized, "unknown agent token")
	}
	return a, err
}

func (r *Registry) register(w http.ResponseWriter, req *http.Request) {
	a, err := r.authenticate(req)
	if err != nil {
		httpx.Fail(w, err)
		return
	}
	var body wire.Register
	if err := httpx.DecodeLimit(w, req, &body, maxReportBody); err != nil {
		httpx.Fail(w, err)
		return
	}
	err = validRegister(body)
	if err == nil {
		err = validIdentity(req, a, body)
	}
	if err != nil {
		r.log.Warn("refused a registration", "cluster", a.ClusterID, "host", a.Host, "error", err)
		httpx.Fail(w, err)
		return
	}
	hw, _ := json.Marshal(body.Hardware)
	ps, _ := json.Marshal(nonNil(body.Processes))
	now := time.Now().UTC()
	up := map[string]any{"agent_uuid": body.AgentID, "status": StatusRunning, "register_time": now,
		"last_reported_time": now, "hardware": string(hw), "processes": string(ps), "port": body.Port}
	if err := r.db.WithContext(req.Context()).Model(&store.Agent{}).Where("id = ?", a.ID).Updates(up).Error; err != nil {
		httpx.Fail(w, fmt.Errorf("record registration: %w", err))
		return
	}
	r.log.Info("agent registered", "cluster", a.ClusterID, "host", a.Host, "agentId", body.AgentID, "version", body.Version)
	r.arm(a.ID)
	r.mu.Lock()
	k := key{a.ClusterID, a.Host}
	if ch, ok := r.waiters[k]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
	} else {
		ch := make(chan struct{})
		close(ch)
		r.waiters[k] = ch
	}
	r.broadcastLocked()
	r.mu.Unlock()
	httpx.OK(w, wire.Registered{AgentID: a.ID, HeartbeatSeconds: r.cfg.HeartbeatSeconds})
}

func nonNil(p []wire.Process) []wire.Process {
	if p == nil {
		return []wire.Process{}
	}
	return p
}

func (r *Registry) heartbeat(w http.ResponseWriter, req *http.Request) {
	a, err := r.authenticate(req)
	if err != nil {
		httpx.Fail(w, err)
		return
	}
	var body wire.Heartbeat
	if err := httpx.DecodeLimit(w, req, &body, maxReportBody); err != nil {
		httpx.Fail(w, err)
		return
	}
	if err := validHeartbeat(body); err != nil {
		httpx.Fail(w, err)
		return
	}
	if a.RegisterTime == nil || body.AgentID != a.AgentUUID {
		httpx.Fail(w, httpx.NotFound("agent %s is not registered here: register first", body.AgentID))
		return
	}
	ps, _ := json.Marshal(nonNil(body.Processes))
	now := time.Now().UTC()
	if err := r.db.WithContext(req.Context()).Model(&store.Agent{}).Where("id = ?", a.ID).
		Updates(map[string]any{"status": StatusRunning, "last_reported_time": now, "processes": string(ps)}).Error; err != nil {
		httpx.Fail(w, fmt.Errorf("record heartbeat: %w", err))
		return
	}
	r.arm(a.ID)
	if a.Status != StatusRunning {
		r.log.Info("agent is back", "cluster", a.ClusterID, "host", a.Host)
		r.mu.Lock()
		r.broadcastLocked()
		r.mu.Unlock()
	}
	httpx.OK(w, nil)
}

func (r *Registry) broadcastLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// arm (re)starts the agent's liveness deadline.
func (r *Registry) arm(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	deadline := time.Duration(r.cfg.MissedBeats) * r.beat
	l, ok := r.live[id]
	if !ok {
		l = &liveness{}
		r.live[id] = l
		l.timer = time.AfterFunc(deadline, func() { r.expire(id) })
	} else {
		l.timer.Reset(deadline)
	}
	l.last = time.Now()
}

// expire marks an agent STOP once its deadline passed without a beat.
func (r *Registry) expire(id int64) {
	r.mu.Lock()
	l := r.live[id]
	deadline := time.Duration(r.cfg.MissedBeats) * r.beat
	stale := l != nil && time.Since(l.last) >= deadline && !r.closed
	r.mu.Unlock()
	if !stale {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := r.db.WithContext(ctx).Model(&store.Agent{}).Where("id = ? AND status = ?", id, StatusRunning).
		Update("status", StatusStop)
	if res.Error != nil {
		r.log.Error("mark agent STOP", "agent", id, "error", res.Error)
		return
	}
	if res.RowsAffected > 0 {
		r.log.Warn("agent missed its heartbeats", "agent", id, "missed", r.cfg.MissedBeats)
		r.mu.Lock()
		r.broadcastLocked()
		r.mu.Unlock()
	}
}
