// Package agents is the manager's side of its agents: the register,
// heartbeat and renew endpoints (mutual TLS; a certificate maps to one
// agent record by its serial), agent certificates, heartbeats written to
// the store in batches (liveness is computed from their times, see
// store.Agent.Alive), and a way to wait for an agent's registration
// without polling.
package agents

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/hashicorp/go-hclog"
)

// Agent statuses (kept in core/store).
const (
	StatusRunning = store.AgentRunning
	StatusStop    = store.AgentStop
)

// Catalogue lists the roles with an accepted plugin (core/pluginhost.Manager):
// their Info names the pid file agents report.
type Catalogue interface {
	Catalogue(ctx context.Context, clusterID int64) (map[string]sdk.Info, error)
}

// Config configures a Registry.
type Config struct {
	Store *store.Store
	// Catalogue, if set, tells which pid files each agent reports: those
	// of the roles recorded on its host (Info.PidFile under the role's
	// home). Without it agents report no processes.
	Catalogue Catalogue
	// PKI is the manager's CA: it issues agent certificates and is the
	// trust of calls to agents.
	PKI              *pki.Authority
	CertLifetime     time.Duration // of agent certificates; default pki.AgentLifetime
	Logger           hclog.Logger
	HeartbeatSeconds int // told to agents at registration; default 5
	// FlushInterval is how often the heartbeats received meanwhile are
	// written, all in one batch; default DefaultFlushInterval.
	FlushInterval time.Duration
	// ClientOptions are passed to every agentclient the Registry builds.
	ClientOptions []agentclient.Option
	// BeatCacheTTL is how long heartbeats answer from what an earlier
	// heartbeat of the same certificate read (see beatCache); default
	// DefaultBeatCacheTTL, negative for none.
	BeatCacheTTL time.Duration
	// Metrics, if set, receives dorismanager_agent_heartbeats_total and
	// dorismanager_agent_heartbeat_flush_seconds.
	Metrics *metrics.Registry
	// Managers, if set, returns the agent endpoints of every running
	// manager on the database (core/server): every answer names them
	// (wire.Beat.Managers), so agents can fail over to each.
	Managers func() []string
}

// DefaultFlushInterval is how often buffered heartbeats are written.
const DefaultFlushInterval = time.Second

// Registry tracks the agents of every cluster.
type Registry struct {
	cfg  Config
	st   *store.Store
	log  hclog.Logger
	beat time.Duration
	// beats counts received heartbeats (Prometheus derives the rate).
	beats   *metrics.Counter
	flushes *metrics.Histogram
	cache   *beatCache

	mu      sync.Mutex
	waiters map[key]chan struct{} // closed when the agent registers
	changed chan struct{}         // closed and replaced when an agent registers or comes back

	// pending holds the latest heartbeat of each agent not yet written.
	pendingMu sync.Mutex
	pending   map[int64]store.Heartbeat
	stop      chan struct{} // closed by Close
	flushed   chan struct{} // closed when the flusher has written the last batch
	closeOnce sync.Once
}

type key struct {
	cluster int64
	host    string
}

// ErrUnknownAgent is returned for a cluster/host without an agent record.
var ErrUnknownAgent = errors.New("no agent is known for this host")

// New returns a Registry and starts writing the heartbeats it receives
// every FlushInterval. Call Close at shutdown: it writes the last ones.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil || cfg.PKI == nil {
		return nil, errors.New("agents: Store and PKI are required")
	}
	if cfg.CertLifetime <= 0 {
		cfg.CertLifetime = pki.AgentLifetime
	}
	if cfg.HeartbeatSeconds <= 0 {
		cfg.HeartbeatSeconds = 5
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.BeatCacheTTL == 0 {
		cfg.BeatCacheTTL = DefaultBeatCacheTTL
	}
	r := &Registry{cache: newBeatCache(cfg.BeatCacheTTL), cfg: cfg, st: cfg.Store, log: cfg.Logger.Named("agents"),
		beat:    time.Duration(cfg.HeartbeatSeconds) * time.Second,
		waiters: map[key]chan struct{}{}, changed: make(chan struct{}),
		pending: map[int64]store.Heartbeat{}, stop: make(chan struct{}), flushed: make(chan struct{})}
	if cfg.Metrics != nil {
		r.beats = cfg.Metrics.Counter("dorismanager_agent_heartbeats_total", "Agent heartbeats received.")
		r.flushes = cfg.Metrics.Histogram("dorismanager_agent_heartbeat_flush_seconds",
			"Time to write one batch of buffered agent heartbeats to the store.", metrics.HTTPBuckets)
	}
	go r.flushLoop()
	return r, nil
}

// Close writes the heartbeats still buffered and stops the flusher.
func (r *Registry) Close() {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.flushed
}

// flushLoop writes the buffered heartbeats every FlushInterval, and once
// more when the registry closes.
func (r *Registry) flushLoop() {
	defer close(r.flushed)
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			// A database that hangs holds the beats back, not the loop forever.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			r.Flush(ctx)
			cancel()
		case <-r.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.Flush(ctx)
			cancel()
			return
		}
	}
}

// Flush writes the buffered heartbeats in one batch now. Beats it could
// not write stay buffered (unless newer ones replaced them) for the next.
func (r *Registry) Flush(ctx context.Context) {
	r.pendingMu.Lock()
	if len(r.pending) == 0 {
		r.pendingMu.Unlock()
		return
	}
	batch := make([]store.Heartbeat, 0, len(r.pending))
	for _, b := range r.pending {
		batch = append(batch, b)
	}
	r.pending = make(map[int64]store.Heartbeat, len(batch))
	r.pendingMu.Unlock()
	start := time.Now()
	err := r.st.RecordHeartbeats(ctx, batch)
	r.flushes.Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	r.log.Error("record agent heartbeats; keeping them for the next try", "agents", len(batch), "error", err)
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	for _, b := range batch {
		if _, newer := r.pending[b.AgentID]; !newer {
			r.pending[b.AgentID] = b
		}
	}
}

// Credentials are what an installed agent needs to take part in mutual
// TLS: its key and certificate (one PEM) and the CA bundle it trusts.
type Credentials struct {
	CertAndKey []byte // PEM; secret: goes to the host over SSH only
	CABundle   []byte // PEM
	Serial     string
}

// Prepare issues a fresh key and certificate for the agent agentUUID on
// (clusterID, host), recording the certificate's serial as the only one
// accepted from that agent from now on (every older certificate of it is
// revoked), creates or updates the agent's record, and resets the
// registration wait for it. The key is not kept.
func (r *Registry) Prepare(ctx context.Context, clusterID int64, host string, port int, installDir, agentUUID string) (Credentials, error) {
	if agentUUID == "" {
		return Credentials{}, errors.New("prepare agent: the agent id is empty")
	}
	priv, err := pki.NewKey()
	if err != nil {
		return Credentials{}, err
	}
	is, err := r.cfg.PKI.Issue(pki.Request{PublicKey: priv.Public(), CommonName: agentUUID, Hosts: []string{host},
		Role: pki.Agent, Lifetime: r.cfg.CertLifetime})
	if err != nil {
		return Credentials{}, fmt.Errorf("certificate for the agent on %s: %w", host, err)
	}
	kb, err := pki.EncodeKey(priv)
	if err != nil {
		return Credentials{}, err
	}
	if port <= 0 {
		port = wire.DefaultPort
	}
	cert := store.AgentCert{Serial: is.Serial, Issuer: is.Issuer, NotAfter: is.Cert.NotAfter}
	if err := r.st.PrepareAgent(ctx, clusterID, host, port, installDir, agentUUID, cert); err != nil {
		return Credentials{}, fmt.Errorf("record agent of %s: %w", host, err)
	}
	r.cache.dropAgent(clusterID, host)
	r.mu.Lock()
	r.waiters[key{clusterID, host}] = make(chan struct{})
	r.mu.Unlock()
	return Credentials{CertAndKey: append(append([]byte{}, is.PEM...), kb...), CABundle: r.cfg.PKI.Bundle(), Serial: is.Serial}, nil
}

// CheckManagerURL checks that agents told to reach the manager at u
// will accept its certificate: https, and a host the certificate names.
func (r *Registry) CheckManagerURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "https" || pu.Hostname() == "" {
		return fmt.Errorf("the manager URL for agents %q must be https://host:port", u)
	}
	c, err := r.cfg.PKI.ManagerCertificate()
	if err != nil {
		return err
	}
	if err := c.Leaf.VerifyHostname(pu.Hostname()); err != nil {
		return fmt.Errorf("agents would reach the manager at %s, but its certificate names only %v %v: add %s with serve --tls-san, or set --advertise-url to one of those",
			u, c.Leaf.IPAddresses, c.Leaf.DNSNames, pu.Hostname())
	}
	return nil
}

// WaitRegistered blocks until the agent of (clusterID, host) registers
// after the last Prepare for it, or ctx ends. A registration at this
// manager ends the wait at once, one at another manager on the database
// (the agent may reach any of them) as soon as its notification arrives
// (Listen); as a fallback the record, which Prepare left unregistered, is
// read every FlushInterval.
func (r *Registry) WaitRegistered(ctx context.Context, clusterID int64, host string) (store.Agent, error) {
	k := key{clusterID, host}
	r.mu.Lock()
	ch, ok := r.waiters[k]
	if !ok {
		ch = make(chan struct{})
		r.waiters[k] = ch
	}
	r.mu.Unlock()
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ch:
			a, err := r.Get(ctx, clusterID, host)
			if err != nil || a.RegisterTime != nil {
				return a, err
			}
			// A late notification of a registration from before the
			// Prepare: the record decides from here on.
			ch = nil
		case <-tick.C:
			a, err := r.Get(ctx, clusterID, host)
			if err == nil && a.RegisterTime != nil {
				return a, nil
			}
			if err != nil && !errors.Is(err, ErrUnknownAgent) {
				r.log.Warn("look for the agent's registration in the store", "cluster", clusterID, "host", host, "error", err)
			}
		case <-ctx.Done():
			return store.Agent{}, ctx.Err()
		}
	}
}

// WaitStatus blocks until the agent of (clusterID, host) has status, or
// ctx ends. An agent turns STOP by time passing (and RUNNING by a beat
// another manager may have received), so besides this manager's
// registrations it looks again every FlushInterval.
func (r *Registry) WaitStatus(ctx context.Context, clusterID int64, host, status string) error {
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
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
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("agent of %s is not %s: %w", host, status, ctx.Err())
		}
	}
}

// Get returns the agent record of (clusterID, host).
func (r *Registry) Get(ctx context.Context, clusterID int64, host string) (store.Agent, error) {
	a, err := r.st.AgentOf(ctx, clusterID, host)
	if errors.Is(err, store.ErrNotFound) {
		return a, fmt.Errorf("cluster %d, host %s: %w", clusterID, host, ErrUnknownAgent)
	}
	return a, err
}

// Client returns a client for the agent of (clusterID, host). Its
// connections are mutual TLS: the manager presents its certificate, and
// the agent's must verify for the host, carry the agent role, name the
// agent's id and have a serial the manager issued to it (read at each
// handshake, so a reinstall or renewal applies to the next connection).
func (r *Registry) Client(ctx context.Context, clusterID int64, host string) (*agentclient.Client, error) {
	a, err := r.Get(ctx, clusterID, host)
	if err != nil {
		return nil, err
	}
	port := a.Port
	if port <= 0 {
		port = wire.DefaultPort
	}
	check := func(leaf *x509.Certificate) error {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cur, err := r.st.GetAgent(cctx, a.ID)
		if err != nil {
			return fmt.Errorf("look up the agent of %s: %w", host, err)
		}
		return accepts(cur, leaf)
	}
	opts := append([]agentclient.Option{agentclient.WithTLS(r.cfg.PKI.ClientTLS(a.Host, check))}, r.cfg.ClientOptions...)
	return agentclient.New("https://"+net.JoinHostPort(a.Host, strconv.Itoa(port)), opts...), nil
}

// accepts checks a verified agent certificate against the agent's record:
// its id, its host and one of the serials issued to it.
func accepts(a store.Agent, leaf *x509.Certificate) error {
	serial := pki.Serial(leaf)
	switch {
	case a.CertSerial == "" || (serial != a.CertSerial && serial != a.PrevCertSerial):
		return fmt.Errorf("certificate serial %s is not the one issued to the agent of %s (revoked by a reinstall?)", serial, a.Host)
	case leaf.Subject.CommonName != a.AgentUUID:
		return fmt.Errorf("the certificate is for agent %q, the agent of %s is %q", leaf.Subject.CommonName, a.Host, a.AgentUUID)
	case leaf.VerifyHostname(a.Host) != nil:
		return fmt.Errorf("the certificate is for host %s, not %s", pki.HostOf(leaf), a.Host)
	}
	return nil
}

// Handler serves POST .../register, .../heartbeat and .../renew (mount it
// at /agent-api/v1 on a mutual-TLS listener, pki.AgentEndpointTLS; it
// matches on the last path element).
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
		case strings.HasSuffix(req.URL.Path, "/renew"):
			r.renew(w, req)
		default:
			httpx.Fail(w, httpx.NotFound("no such agent endpoint %s", req.URL.Path))
		}
	})
}

// Authenticate maps a request on the agent endpoint to the agent whose
// certificate made it (for other handlers there, as the package relay);
// its errors are httpx errors (401, 403).
func (r *Registry) Authenticate(req *http.Request) (store.Agent, error) {
	c, err := r.authenticate(req)
	return c.agent, err
}

// caller is an authenticated agent: its record and its certificate.
type caller struct {
	agent store.Agent
	leaf  *x509.Certificate
}

// authenticate maps the request's client certificate (verified by the
// listener against the CA) to the agent it was issued to.
func (r *Registry) authenticate(req *http.Request) (caller, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return caller{}, httpx.Errorf(http.StatusUnauthorized, "agent endpoints need mutual TLS with the agent's certificate")
	}
	leaf := req.TLS.PeerCertificates[0]
	if !pki.HasRole(leaf, pki.Agent) {
		return caller{}, httpx.Errorf(http.StatusForbidden, "the client certificate is not an agent's")
	}
	serial := pki.Serial(leaf)
	a, err := r.st.AgentBySerial(req.Context(), serial)
	if errors.Is(err, store.ErrNotFound) {
		r.log.Warn("refused an agent certificate not (or no longer) issued to any agent", "serial", serial, "cn", leaf.Subject.CommonName, "remote", req.RemoteAddr)
		return caller{}, httpx.Errorf(http.StatusUnauthorized, "certificate serial %s is not the current one of any agent (revoked by a reinstall?): reinstall the agent", serial)
	}
	if err != nil {
		return caller{}, err
	}
	if err := accepts(a, leaf); err != nil {
		r.log.Warn("refused an agent certificate", "serial", serial, "host", a.Host, "error", err)
		return caller{}, httpx.Errorf(http.StatusForbidden, "%v", err)
	}
	if serial == a.CertSerial && a.PrevCertSerial != "" {
		// The agent uses its renewed certificate: the previous one is done.
		if err := r.st.RetirePrevSerial(req.Context(), a.ID, serial); err != nil {
			return caller{}, fmt.Errorf("retire the previous certificate of %s: %w", a.Host, err)
		}
		a.PrevCertSerial = ""
	}
	return caller{agent: a, leaf: leaf}, nil
}

// answer is what every register and heartbeat answer tells the agent: the
// CA bundle when the agent's differs, and to renew when its certificate
// is not from the signing CA (a rotation under way).
func (r *Registry) answer(leaf *x509.Certificate, bundleSum string) wire.Beat {
	var b wire.Beat
	bundle := r.cfg.PKI.Bundle()
	sum := sha256.Sum256(bundle)
	if bundleSum != hex.EncodeToString(sum[:]) {
		b.CABundle = string(bundle)
	}
	b.Renew = pki.IssuerID(leaf) != r.cfg.PKI.SigningID()
	if r.cfg.Managers != nil {
		b.Managers = r.cfg.Managers()
	}
	return b
}

func (r *Registry) register(w http.ResponseWriter, req *http.Request) {
	c, err := r.authenticate(req)
	if err != nil {
		httpx.Fail(w, err)
		return
	}
	a := c.agent
	var body wire.Register
	if err := httpx.DecodeTolerant(w, req, &body, maxReportBody); err != nil {
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
	rep := store.AgentReport{UUID: body.AgentID, Port: body.Port, Hardware: string(hw), Processes: string(ps)}
	if err := r.st.RecordRegistration(req.Context(), a.ID, rep, r.beat); err != nil {
		httpx.Fail(w, fmt.Errorf("record registration: %w", err))
		return
	}
	r.log.Info("agent registered", "cluster", a.ClusterID, "host", a.Host, "agentId", body.AgentID, "version", body.Version)
	r.registered(a.ClusterID, a.Host)
	if err := r.st.NotifyRegistered(req.Context(), a.ClusterID, a.Host); err != nil {
		r.log.Warn("other managers will see the registration by reading the record", "error", err)
	}
	beat := r.answer(c.leaf, "")
	beat.PidFiles = r.pidFiles(req.Context(), a)
	httpx.OK(w, wire.Registered{AgentID: a.ID, HeartbeatSeconds: r.cfg.HeartbeatSeconds, Beat: beat})
}

func nonNil(p []wire.Process) []wire.Process {
	if p == nil {
		return []wire.Process{}
	}
	return p
}

func (r *Registry) heartbeat(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var (
		c      caller
		cached beatEntry
		hit    bool
	)
	if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
		// The listener verified the chain and the agent role; the cache
		// holds only serials authenticate accepted.
		c.leaf = req.TLS.PeerCertificates[0]
		cached, hit = r.cache.get(pki.Serial(c.leaf), now)
	}
	if hit {
		c.agent = cached.agent
	} else {
		var err error
		if c, err = r.authenticate(req); err != nil {
			httpx.Fail(w, err)
			return
		}
	}
	a := c.agent
	var body wire.Heartbeat
	if err := httpx.DecodeTolerant(w, req, &body, maxReportBody); err != nil {
		httpx.Fail(w, err)
		return
	}
	if err := validHeartbeat(body); err != nil {
		httpx.Fail(w, err)
		return
	}
	if body.AgentID != a.AgentUUID {
		httpx.Fail(w, httpx.Errorf(http.StatusForbidden, "agentId %s is not the agent of this certificate (%s)", body.AgentID, a.AgentUUID))
		return
	}
	if a.RegisterTime == nil {
		httpx.Fail(w, httpx.NotFound("agent %s is not registered here: register first", body.AgentID))
		return
	}
	ps, _ := json.Marshal(nonNil(body.Processes))
	r.buffer(a, string(ps))
	r.beats.Inc()
	back := a.Status != StatusRunning
	if hit {
		back = now.Sub(cached.lastBeat) >= store.MissedBeats*r.beat
	}
	if back {
		r.log.Info("agent is back", "cluster", a.ClusterID, "host", a.Host)
		r.mu.Lock()
		r.broadcastLocked()
		r.mu.Unlock()
	}
	beat := r.answer(c.leaf, body.BundleSHA256)
	if hit {
		beat.PidFiles = cached.pidFiles
	} else {
		beat.PidFiles = r.pidFiles(req.Context(), a)
		cached = beatEntry{read: now}
	}
	// The processes just buffered are what the next beat compares with.
	a.Processes = string(ps)
	cached.agent, cached.lastBeat = a, now
	if hit || beat.PidFiles != nil || r.cfg.Catalogue == nil { // nil from a catalogue: it could not be read; ask again next time
		r.cache.put(pki.Serial(c.leaf), cached)
	}
	httpx.OK(w, beat)
}

// pidFiles are the pid files the agent of a is to report: one for each
// role recorded on its host whose plugin names one (Info.PidFile, relative
// to the role's home). nil, which leaves the agent's list as it is, when
// they cannot be told now.
func (r *Registry) pidFiles(ctx context.Context, a store.Agent) []wire.PidFile {
	if r.cfg.Catalogue == nil {
		return nil
	}
	roles, err := r.st.RolesOfHost(ctx, a.ClusterID, a.Host)
	if err != nil {
		r.log.Warn("cannot tell the agent its pid files", "cluster", a.ClusterID, "host", a.Host, "error", err)
		return nil
	}
	out := []wire.PidFile{}
	if len(roles) == 0 {
		return out
	}
	cat, err := r.cfg.Catalogue.Catalogue(ctx, a.ClusterID)
	if err != nil {
		r.log.Warn("cannot tell the agent its pid files", "cluster", a.ClusterID, "host", a.Host, "error", err)
		return nil
	}
	for _, ro := range roles {
		info, ok := cat[ro.Role]
		if !ok || info.PidFile == "" || ro.InstallDir == "" || len(out) == wire.MaxProcesses {
			continue
		}
		pf := wire.PidFile{Role: ro.Role, Path: path.Join(ro.InstallDir, info.PidFile)}
		if err := pf.Check(); err != nil {
			r.log.Warn("not watching a pid file", "cluster", a.ClusterID, "host", a.Host, "error", err)
			continue
		}
		out = append(out, pf)
	}
	return out
}

// renew issues the calling agent a new certificate for the public key of
// its certificate request, with the same id and host. The serial the
// agent called with stays accepted until it uses the new one, so an
// answer lost on the way does not lock it out.
func (r *Registry) renew(w http.ResponseWriter, req *http.Request) {
	c, err := r.authenticate(req)
	if err != nil {
		httpx.Fail(w, err)
		return
	}
	a := c.agent
	var body wire.Renew
	if err := httpx.DecodeTolerant(w, req, &body, httpx.MaxBody); err != nil {
		httpx.Fail(w, err)
		return
	}
	if body.AgentID != a.AgentUUID {
		httpx.Fail(w, httpx.Errorf(http.StatusForbidden, "agentId %s is not the agent of this certificate (%s)", body.AgentID, a.AgentUUID))
		return
	}
	blk, _ := pem.Decode([]byte(body.CSR))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		httpx.Fail(w, httpx.BadRequest("csr must be a PEM CERTIFICATE REQUEST"))
		return
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		httpx.Fail(w, httpx.BadRequest("csr: %v", err))
		return
	}
	if err := csr.CheckSignature(); err != nil {
		httpx.Fail(w, httpx.BadRequest("csr signature: %v", err))
		return
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		httpx.Fail(w, httpx.BadRequest("csr: the key must be ECDSA P-256"))
		return
	}
	is, err := r.cfg.PKI.Issue(pki.Request{PublicKey: csr.PublicKey, CommonName: a.AgentUUID, Hosts: []string{a.Host},
		Role: pki.Agent, Lifetime: r.cfg.CertLifetime})
	if err != nil {
		httpx.Fail(w, err)
		return
	}
	used := pki.Serial(c.leaf)
	notAfter := is.Cert.NotAfter
	renewed, err := r.st.RenewAgentCert(req.Context(), a.ID, used, store.AgentCert{Serial: is.Serial, Issuer: is.Issuer, NotAfter: notAfter})
	if err != nil {
		httpx.Fail(w, fmt.Errorf("record the renewed certificate of %s: %w", a.Host, err))
		return
	}
	if !renewed {
		httpx.Fail(w, httpx.Errorf(http.StatusConflict, "the agent of %s was reinstalled meanwhile: this certificate is revoked", a.Host))
		return
	}
	r.cache.dropAgent(a.ClusterID, a.Host)
	r.log.Info("renewed an agent certificate", "cluster", a.ClusterID, "host", a.Host, "serial", is.Serial, "notAfter", notAfter, "ca", is.Issuer)
	httpx.OK(w, wire.Renewed{Certificate: string(is.PEM), CABundle: string(r.cfg.PKI.Bundle())})
}

// registered ends the registration wait for (clusterID, host) (the
// agent registered here or at another manager) and wakes WaitStatus.
func (r *Registry) registered(clusterID int64, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := key{clusterID, host}
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
}

// Listen hears of registrations at other managers on the database
// (PostgreSQL LISTEN; store.ListenRegistered) and ends their waits, until
// ctx ends. Without it, or while it reconnects, WaitRegistered finds them
// by reading the record. Run it in the background.
func (r *Registry) Listen(ctx context.Context) error {
	return r.st.ListenRegistered(ctx, func(clusterID int64, host string) {
		if clusterID == 0 {
			return // (re)connected
		}
		// A notification of a registration that was not awaited here
		// keeps a closed waiter until the next Prepare: as a registration
		// at this manager does.
		r.registered(clusterID, host)
	})
}

func (r *Registry) broadcastLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// buffer keeps the heartbeat of agent a (whose record was just read) for
// the next flush, replacing an earlier one of it. Its processes go along
// only when they differ from the recorded ones.
func (r *Registry) buffer(a store.Agent, processes string) {
	b := store.Heartbeat{AgentID: a.ID, At: time.Now().UTC()}
	if processes != a.Processes {
		b.Processes = &processes
	}
	r.pendingMu.Lock()
	if prev, ok := r.pending[a.ID]; ok && b.Processes == nil {
		// a is what an earlier beat left in the cache: a change that beat
		// buffered is not written yet, so it goes along.
		b.Processes = prev.Processes
	}
	r.pending[a.ID] = b
	r.pendingMu.Unlock()
}
