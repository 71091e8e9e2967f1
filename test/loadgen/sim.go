package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// SimConfig configures a Sim.
type SimConfig struct {
	// URLs are agent endpoints (https://host:port); agent i talks to
	// URLs[i % len(URLs)].
	URLs []string
	// ServerName is the name the manager's certificate is checked for.
	ServerName string
	// Bundle is the CA bundle (PEM) the agents trust, as installAgent
	// hands it out.
	Bundle     []byte
	Identities []Identity
	// Interval between one agent's heartbeats; the agents' first beats are
	// spread evenly over it.
	Interval time.Duration
	// Timeout of one request, as a real agent's client (15 s).
	Timeout time.Duration
}

// Sim is a set of simulated agents.
type Sim struct {
	cfg       SimConfig
	bundleSum string
	clients   []*http.Client

	Sent, Acked atomic.Int64
	// Dials counts connections opened (each a TLS handshake); after the
	// registrations it stays flat while connections are kept alive.
	Dials   atomic.Int64
	Latency Recorder // of acknowledged heartbeats
	errMu   sync.Mutex
	errs    map[string]int64
}

// NewSim prepares one HTTP client per agent (its own certificate, its own
// kept-alive connection, as the real agent's).
func NewSim(cfg SimConfig) (*Sim, error) {
	if len(cfg.URLs) == 0 || len(cfg.Identities) == 0 || cfg.Interval <= 0 {
		return nil, errors.New("loadgen: URLs, Identities and Interval are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.Bundle) {
		return nil, errors.New("loadgen: no certificate in the CA bundle")
	}
	sum := sha256.Sum256(cfg.Bundle)
	s := &Sim{cfg: cfg, bundleSum: hex.EncodeToString(sum[:]), errs: map[string]int64{}}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		s.Dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	for i := range cfg.Identities {
		tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: cfg.ServerName,
			Certificates: []tls.Certificate{cfg.Identities[i].Cert}}
		s.clients = append(s.clients, &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
			DialContext: dial, TLSClientConfig: tc, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute, TLSHandshakeTimeout: 10 * time.Second}})
	}
	return s, nil
}

// Close drops the agents' connections.
func (s *Sim) Close() {
	for _, c := range s.clients {
		c.CloseIdleConnections()
	}
}

// Register registers every agent, parallel at a time (each a TLS
// handshake and a store write on the manager), and returns the first error.
func (s *Sim) Register(ctx context.Context, parallel int) error {
	idx := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				id := s.cfg.Identities[i]
				body := wire.Register{AgentID: id.UUID, Host: id.Host, Port: wire.DefaultPort, Version: "loadgen",
					Hardware: wire.Hardware{CPU: "simulated", Cores: 8, TotalMemoryBytes: 16 << 30, TotalMemory: "16.0 GiB",
						Disks: []wire.Disk{{Mount: "/", TotalBytes: 500 << 30, FreeBytes: 400 << 30}}},
					Processes: []wire.Process{}}
				var reg wire.Registered
				if err := s.post(ctx, i, wire.RegisterPath, body, &reg); err != nil {
					once.Do(func() { first = fmt.Errorf("register agent %d (%s): %w", i, id.Host, err) })
				}
			}
		}()
	}
	for i := range s.cfg.Identities {
		select {
		case idx <- i:
		case <-ctx.Done():
		}
	}
	close(idx)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Beat heartbeats from every agent until ctx ends; agent i starts at
// i/N of the interval. A beat whose tick comes while the previous one is
// still out is skipped (time.Ticker drops it), as with the real agent.
func (s *Sim) Beat(ctx context.Context) {
	var wg sync.WaitGroup
	n := len(s.cfg.Identities)
	for i := range s.cfg.Identities {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := time.Duration(int64(s.cfg.Interval) * int64(i) / int64(n))
			select {
			case <-ctx.Done():
				return
			case <-time.After(offset):
			}
			t := time.NewTicker(s.cfg.Interval)
			defer t.Stop()
			for {
				s.beat(ctx, i)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (s *Sim) beat(ctx context.Context, i int) {
	id := s.cfg.Identities[i]
	s.Sent.Add(1)
	start := time.Now()
	var b wire.Beat
	err := s.post(ctx, i, wire.HeartbeatPath, wire.Heartbeat{AgentID: id.UUID, Processes: []wire.Process{}, BundleSHA256: s.bundleSum}, &b)
	if ctx.Err() != nil {
		s.Sent.Add(-1) // cut by the end of the run, not the manager's doing
		return
	}
	if err != nil {
		s.countErr(err)
		return
	}
	s.Acked.Add(1)
	s.Latency.Add(time.Since(start))
}

// statusError is an answer other than 200 with code 0.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

// post is the real agent's request: JSON body, envelope answer.
func (s *Sim) post(ctx context.Context, i int, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	url := strings.TrimRight(s.cfg.URLs[i%len(s.cfg.URLs)], "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.clients[i].Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var env wire.Envelope[json.RawMessage]
	if err := json.Unmarshal(rb, &env); err != nil {
		return &statusError{resp.StatusCode, fmt.Sprintf("not an envelope: %.100s", rb)}
	}
	if resp.StatusCode != http.StatusOK || env.Code != 0 {
		return &statusError{resp.StatusCode, env.Msg}
	}
	if out != nil && len(env.Data) > 0 {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

func (s *Sim) countErr(err error) {
	kind := ErrorKind(err)
	s.errMu.Lock()
	s.errs[kind]++
	s.errMu.Unlock()
}

// Errors are the failed heartbeats by kind (see ErrorKind).
func (s *Sim) Errors() map[string]int64 {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	out := make(map[string]int64, len(s.errs))
	for k, v := range s.errs {
		out[k] = v
	}
	return out
}

// ErrorKind groups an error for the report: "HTTP <status>", "timeout",
// "refused", "reset", "eof", else "other".
func ErrorKind(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d", se.status)
	}
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Timeout") || strings.Contains(msg, "timeout"):
		return "timeout"
	case strings.Contains(msg, "connection refused"):
		return "refused"
	case strings.Contains(msg, "connection reset"):
		return "reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(msg, "EOF"):
		return "eof"
	}
	return "other"
}
