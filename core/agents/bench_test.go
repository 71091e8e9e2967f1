package agents

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
)

// BenchmarkAgentCall is one manager -> agent call (health, the smallest
// JSON round trip, through core/agentclient) on loopback: plain HTTP (the
// transport before mutual TLS), mutual TLS over a kept-alive connection,
// and mutual TLS with a fresh connection and handshake per call (a new
// task's first call).
//
//	go test -run XXX -bench AgentCall -benchtime 2000x ./core/agents
func BenchmarkAgentCall(b *testing.B) {
	e := setup(b)
	cfg := e.install(b, "127.0.0.1", idA)
	ag, err := agent.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	plain := serveB(b, ag.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ag.Serve(ctx, ln)
	secure := "https://" + ln.Addr().String()
	mtls := e.ca.ClientTLS("127.0.0.1", nil)
	for _, tc := range []struct {
		name string
		c    *agentclient.Client
	}{
		{"plain-http", agentclient.New(plain)},
		{"mtls-reused", agentclient.New(secure, agentclient.WithTLS(mtls))},
		{"mtls-handshake", agentclient.New(secure, agentclient.WithHTTPClient(&http.Client{
			Transport: &http.Transport{TLSClientConfig: mtls, DisableKeepAlives: true}}))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tc.c.Health(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeartbeat is one agent -> manager heartbeat through the real
// registry (certificate -> agent lookup, status update in SQLite): over
// plain HTTP with the certificate handed to the handler as if verified
// (the registry's work without the transport's), over mutual TLS with a
// kept-alive connection (what an agent does every 5 s), and with a fresh
// handshake per beat.
//
//	go test -run XXX -bench Heartbeat -benchtime 2000x ./core/agents
func BenchmarkHeartbeat(b *testing.B) {
	e := setup(b)
	cfg := e.install(b, "127.0.0.1", idA)
	pair, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Registered once, so heartbeats are accepted.
	if st, msg, err := e.post(b, cfg.CertFile, wire.RegisterPath, wire.Register{AgentID: idA, Host: "127.0.0.1", Port: 9602}); err != nil || st != 200 {
		b.Fatalf("register: %d %s %v", st, msg, err)
	}
	// The plain server hands the handler the certificate a TLS listener
	// would have verified: the same lookup and update, no TLS.
	asVerified := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
		e.reg.Handler().ServeHTTP(w, r)
	})
	plain := serveB(b, asVerified)
	tlsCfg := &tls.Config{RootCAs: e.ca.Pool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	body, _ := json.Marshal(wire.Heartbeat{AgentID: idA, Processes: []wire.Process{}})
	for _, tc := range []struct {
		name, url string
		hc        *http.Client
	}{
		{"plain-http", plain, &http.Client{}},
		{"mtls-reused", e.url, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}},
		{"mtls-handshake", e.url, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tc.url+wire.HeartbeatPath, bytes.NewReader(body))
				resp, err := tc.hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("heartbeat: %d", resp.StatusCode)
				}
			}
		})
	}
}

func serveB(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
