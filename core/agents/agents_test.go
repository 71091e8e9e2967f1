package agents

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
)

// env is a registry behind a real mutual-TLS listener on loopback.
type env struct {
	st      *store.Store
	ca      *pki.Authority
	dataDir string
	reg     *Registry
	url     string
	metrics *metrics.Registry
}

func setup(t testing.TB) *env { return setupWith(t, nil) }

// setupWith is setup with the registry's Config changed by change.
func setupWith(t testing.TB, change func(*Config)) *env {
	t.Helper()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return setupOn(t, st, change)
}

// setupOn is setupWith on a given store.
func setupOn(t testing.TB, st *store.Store, change func(*Config)) *env {
	t.Helper()
	dataDir := t.TempDir()
	ca, err := pki.Open(dataDir, pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	mreg := metrics.NewRegistry()
	cfg := Config{Store: st, PKI: ca, HeartbeatSeconds: 1, Metrics: mreg}
	if change != nil {
		change(&cfg)
	}
	reg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/agent-api/v1/", reg.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(tls.NewListener(ln, ca.AgentEndpointTLS()))
	t.Cleanup(func() { srv.Close() })
	return &env{st: st, ca: ca, dataDir: dataDir, reg: reg, url: "https://" + ln.Addr().String(), metrics: mreg}
}

// install does what sshboot does for host, without SSH: an agent id, a
// certificate, and the files in a fresh agent home.
func (e *env) install(t testing.TB, host, agentID string) wire.Config {
	t.Helper()
	return e.installIn(t, 1, host, agentID)
}

func (e *env) installIn(t testing.TB, clusterID int64, host, agentID string) wire.Config {
	t.Helper()
	home := t.TempDir()
	cfg := wire.Config{ServerURL: e.url, DataDir: filepath.Join(home, "data"), Host: host, HeartbeatSeconds: 1,
		CertFile: filepath.Join(home, "agent.pem"), CAFile: filepath.Join(home, "ca.pem")}
	cr, err := e.reg.Prepare(context.Background(), clusterID, host, 0, "/opt/doris", agentID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{cfg.CertFile: cr.CertAndKey, cfg.CAFile: cr.CABundle, filepath.Join(cfg.DataDir, "agent-id"): []byte(agentID + "\n")} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// run starts an agent on loopback until the returned func is called.
func run(t *testing.T, cfg wire.Config) (*agent.Agent, func()) {
	t.Helper()
	ag, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ag.Serve(ctx, ln); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return ag, stop
}

// post calls the agent endpoint presenting the certificate in certFile.
func (e *env) post(t testing.TB, certFile, path string, body any) (int, string, error) {
	t.Helper()
	var certs []tls.Certificate
	if certFile != "" {
		b, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(b, b)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), Certificates: certs}}}
	b, _ := json.Marshal(body)
	resp, err := hc.Post(e.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var env wire.Envelope[json.RawMessage]
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, env.Msg, nil
}

const (
	idA = "6f1c2a8e-0000-4000-8000-00000000000a"
	idB = "6f1c2a8e-0000-4000-8000-00000000000b"
)

// An agent registers over mutual TLS, goes STOP when it stops beating and
// RUNNING when it comes back with the same identity; the manager calls it
// over mutual TLS.
func TestLiveness(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	cfg := e.install(t, "127.0.0.1", idA)
	var row store.Agent
	e.st.DB().First(&row)
	if row.CertSerial == "" || row.AgentUUID != idA || row.CertIssuer != e.ca.SigningID() || row.CertNotAfter == nil {
		t.Fatalf("agent record after install: %+v", row)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, stop := run(t, cfg)
	first, err := e.reg.WaitRegistered(wctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != StatusRunning || first.Port == 0 {
		t.Fatalf("after register: %+v", first)
	}
	c, err := e.reg.Client(ctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.BaseURL(), "https://") {
		t.Fatalf("client URL %s", c.BaseURL())
	}
	if h, err := c.Health(ctx); err != nil || h.AgentID != idA {
		t.Fatalf("health %+v %v", h, err)
	}
	waitFor(wctx, t, "a heartbeat counted in dorismanager_agent_heartbeats_total", func() bool {
		var b strings.Builder
		if err := e.metrics.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		m, err := metricstest.Parse(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return m["dorismanager_agent_heartbeats_total"] >= 1
	})
	stop()
	if err := e.reg.WaitStatus(wctx, 1, "127.0.0.1", StatusStop); err != nil {
		t.Fatal(err)
	}
	run(t, cfg)
	if err := e.reg.WaitStatus(wctx, 1, "127.0.0.1", StatusRunning); err != nil {
		t.Fatal(err)
	}
	again, _ := e.reg.Get(ctx, 1, "127.0.0.1")
	if again.AgentUUID != first.AgentUUID {
		t.Fatalf("identity changed: %s -> %s", first.AgentUUID, again.AgentUUID)
	}
}

// The manager refuses an agent speaking for another host or another agent
// id, a certificate it did not record for any agent, one revoked by a
// reinstall, and a request without a certificate.
func TestRefusals(t *testing.T) {
	e := setup(t)
	a := e.install(t, "127.0.0.1", idA)
	b := e.install(t, "127.0.0.2", idB)
	reg := func(id, host string) wire.Register { return wire.Register{AgentID: id, Host: host, Port: 9602} }

	if st, msg, err := e.post(t, a.CertFile, wire.RegisterPath, reg(idA, "127.0.0.1")); err != nil || st != http.StatusOK {
		t.Fatalf("A for itself: %d %s %v", st, msg, err)
	}
	// A certificate the CA issued but the manager never recorded.
	stray := filepath.Join(t.TempDir(), "stray.pem")
	key, _ := pki.NewKey()
	is, err := e.ca.Issue(pki.Request{PublicKey: key.Public(), CommonName: idA, Hosts: []string{"127.0.0.1"}, Role: pki.Agent, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pki.EncodeKey(key)
	os.WriteFile(stray, append(is.PEM, kb...), 0o600)

	for _, tc := range []struct {
		name, cert, path string
		body             any
		want             int
	}{
		{"B claims A's host", b.CertFile, wire.RegisterPath, reg(idB, "127.0.0.1"), http.StatusForbidden},
		{"B claims A's id", b.CertFile, wire.RegisterPath, reg(idA, "127.0.0.2"), http.StatusForbidden},
		{"B claims A's id and host", b.CertFile, wire.RegisterPath, reg(idA, "127.0.0.1"), http.StatusForbidden},
		{"B beats as A", b.CertFile, wire.HeartbeatPath, wire.Heartbeat{AgentID: idA}, http.StatusForbidden},
		{"B renews as A", b.CertFile, wire.RenewPath, wire.Renew{AgentID: idA, CSR: "x"}, http.StatusForbidden},
		{"unrecorded certificate", stray, wire.RegisterPath, reg(idA, "127.0.0.1"), http.StatusUnauthorized},
		{"unrecorded certificate beats", stray, wire.HeartbeatPath, wire.Heartbeat{AgentID: idA}, http.StatusUnauthorized},
	} {
		st, msg, err := e.post(t, tc.cert, tc.path, tc.body)
		if err != nil || st != tc.want {
			t.Errorf("%s: %d %q %v, want %d", tc.name, st, msg, err, tc.want)
		} else {
			t.Logf("%s: %d %s", tc.name, st, msg)
		}
	}
	if _, _, err := e.post(t, "", wire.RegisterPath, reg(idA, "127.0.0.1")); err == nil {
		t.Error("a request without a client certificate got through the handshake")
	}

	// A reinstall revokes the old certificate.
	old := filepath.Join(t.TempDir(), "old.pem")
	ob, _ := os.ReadFile(a.CertFile)
	os.WriteFile(old, ob, 0o600)
	a2 := e.install(t, "127.0.0.1", idA)
	if st, msg, _ := e.post(t, old, wire.HeartbeatPath, wire.Heartbeat{AgentID: idA}); st != http.StatusUnauthorized {
		t.Errorf("revoked certificate: %d %s", st, msg)
	}
	if st, msg, _ := e.post(t, a2.CertFile, wire.RegisterPath, reg(idA, "127.0.0.1")); st != http.StatusOK {
		t.Errorf("the reinstalled agent: %d %s", st, msg)
	}
}

// The manager's client refuses an agent whose certificate is not the one
// recorded for the host it calls: A's record is pointed at the port of
// B, an agent of another cluster on the same host.
func TestClientRefusesAnotherAgent(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.install(t, "127.0.0.1", idA)
	run(t, e.installIn(t, 2, "127.0.0.1", idB))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := e.reg.WaitRegistered(wctx, 2, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := e.reg.Client(ctx, 2, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Health(ctx); err != nil {
		t.Fatalf("B through its own record: %v", err)
	}
	if err := e.st.DB().Model(&store.Agent{}).Where("cluster_id = 1").Update("port", b.Port).Error; err != nil {
		t.Fatal(err)
	}
	ca, err := e.reg.Client(ctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Health(ctx); !errors.Is(err, agentclient.ErrHandshake) {
		t.Fatalf("A's record answered by B: %v, want a refused handshake", err)
	} else {
		t.Log(err)
	}
}

// Renewal before expiry: the agent gets a new certificate for a new key
// over mutual TLS; the old serial stays accepted until the new one is
// used, then is refused; calls both ways go on with the new certificate.
func TestRenewal(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	cfg := e.install(t, "127.0.0.1", idA)
	old := filepath.Join(t.TempDir(), "old.pem")
	ob, _ := os.ReadFile(cfg.CertFile)
	os.WriteFile(old, ob, 0o600)
	ag, _ := run(t, cfg)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e.reg.WaitRegistered(wctx, 1, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	before := pki.Serial(ag.Certificate())
	if err := ag.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	after := ag.Certificate()
	if pki.Serial(after) == before || after.Subject.CommonName != idA || after.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("renewed certificate: serial %s (was %s), CN %s", pki.Serial(after), before, after.Subject.CommonName)
	}
	fi, err := os.Stat(cfg.CertFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("certificate file after renewal: %v %v", fi, err)
	}
	nb, _ := os.ReadFile(cfg.CertFile)
	if bytes.Equal(nb, ob) || !bytes.Contains(nb, []byte("PRIVATE KEY")) {
		t.Fatal("the certificate file was not rewritten with a new key")
	}
	row, _ := e.reg.Get(ctx, 1, "127.0.0.1")
	if row.CertSerial != pki.Serial(after) || row.PrevCertSerial != before {
		t.Fatalf("record after renewal: current %s previous %s", row.CertSerial, row.PrevCertSerial)
	}
	// The next heartbeat uses the new certificate, which retires the old.
	for {
		row, _ = e.reg.Get(ctx, 1, "127.0.0.1")
		if row.PrevCertSerial == "" {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatal("the previous serial was never retired")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if st, msg, _ := e.post(t, old, wire.HeartbeatPath, wire.Heartbeat{AgentID: idA}); st != http.StatusUnauthorized {
		t.Errorf("the replaced certificate after the switch: %d %s", st, msg)
	}
	c, err := e.reg.Client(ctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if h, err := c.Health(ctx); err != nil || h.AgentID != idA {
		t.Fatalf("health with the renewed certificate: %+v %v", h, err)
	}
}

// An agent renews by itself once the configured fraction of its
// certificate's lifetime has passed.
func TestRenewWhenDue(t *testing.T) {
	e := setup(t)
	e.reg.cfg.CertLifetime = time.Minute // plus five minutes of clock skew allowance: half of it is gone
	cfg := e.install(t, "127.0.0.1", idA)
	cfg.RenewFraction = 0.5
	ag, _ := run(t, cfg)
	first := pki.Serial(ag.Certificate())
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(wctx, t, "a renewal when due", func() bool { return pki.Serial(ag.Certificate()) != first })
	waitFor(wctx, t, "the record of the renewed certificate", func() bool {
		row, _ := e.reg.Get(wctx, 1, "127.0.0.1")
		return row.CertSerial != first && row.Status == StatusRunning
	})
}

// A CA rotation keeps the agent connected the whole way: it gets the new
// bundle and renews onto the new CA while both are trusted; after the
// rotation is finished it still beats and answers.
func TestRotationKeepsAgent(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	cfg := e.install(t, "127.0.0.1", idA)
	ag, _ := run(t, cfg)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := e.reg.WaitRegistered(wctx, 1, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	oldID := e.ca.SigningID()
	newID, err := pki.Rotate(e.dataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ca.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(wctx, t, "the agent renews onto the new CA", func() bool {
		row, _ := e.reg.Get(ctx, 1, "127.0.0.1")
		return pki.IssuerID(ag.Certificate()) == newID && row.CertIssuer == newID
	})
	if b, _ := os.ReadFile(cfg.CAFile); !bytes.Equal(b, e.ca.Bundle()) {
		t.Fatal("the agent did not store the rotation's bundle")
	}
	if err := pki.FinishRotation(e.dataDir); err != nil {
		t.Fatal(err)
	}
	if err := e.ca.Reload(); err != nil {
		t.Fatal(err)
	}
	if e.ca.SigningID() == oldID {
		t.Fatal("still the old CA")
	}
	mark := time.Now()
	waitFor(wctx, t, "a heartbeat after the rotation", func() bool {
		row, _ := e.reg.Get(ctx, 1, "127.0.0.1")
		return row.Status == StatusRunning && row.LastReportedTime != nil && row.LastReportedTime.After(mark)
	})
	c, err := e.reg.Client(ctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err != nil {
		t.Fatalf("the manager cannot call the agent after the rotation: %v", err)
	}
	waitFor(wctx, t, "the agent stores the final bundle", func() bool {
		b, _ := os.ReadFile(cfg.CAFile)
		return bytes.Equal(b, e.ca.Bundle()) && strings.Count(string(b), "BEGIN CERTIFICATE") == 1
	})
}

func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Heartbeats are buffered and written in one batch per flush (each
// agent's latest; its processes only when they changed), and Close
// writes what is left. Registrations are written at once.
func TestHeartbeatsAreWrittenInBatches(t *testing.T) {
	e := setupWith(t, func(c *Config) { c.FlushInterval = time.Hour }) // flushed by the test only
	ctx := context.Background()
	a := e.install(t, "127.0.0.1", idA)
	b := e.install(t, "127.0.0.2", idB)
	for _, ag := range []struct {
		cfg  wire.Config
		id   string
		host string
	}{{a, idA, "127.0.0.1"}, {b, idB, "127.0.0.2"}} {
		if st, msg, err := e.post(t, ag.cfg.CertFile, wire.RegisterPath, wire.Register{AgentID: ag.id, Host: ag.host, Port: 9602}); err != nil || st != http.StatusOK {
			t.Fatalf("register %s: %d %s %v", ag.host, st, msg, err)
		}
	}
	row := func(host string) store.Agent {
		t.Helper()
		r, err := e.st.AgentOf(ctx, 1, host)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	regA, regB := row("127.0.0.1"), row("127.0.0.2")
	if regA.Status != StatusRunning || regA.HeartbeatSeconds != 1 || regA.LastReportedTime == nil {
		t.Fatalf("registration not written at once: %+v", regA)
	}
	beat := func(cfg wire.Config, id string, ps []wire.Process) {
		t.Helper()
		if st, msg, err := e.post(t, cfg.CertFile, wire.HeartbeatPath, wire.Heartbeat{AgentID: id, Processes: ps}); err != nil || st != http.StatusOK {
			t.Fatalf("heartbeat: %d %s %v", st, msg, err)
		}
	}
	fe := []wire.Process{{Role: "FE", Pid: 42, Running: true}}
	beat(a, idA, fe)
	beat(a, idA, fe)
	beat(b, idB, nil)
	if got := row("127.0.0.1"); !got.LastReportedTime.Equal(*regA.LastReportedTime) || got.Processes != "[]" {
		t.Fatalf("a heartbeat was written before the flush: %+v", got)
	}
	e.reg.Flush(ctx)
	gotA, gotB := row("127.0.0.1"), row("127.0.0.2")
	if !gotA.LastReportedTime.After(*regA.LastReportedTime) || gotA.Processes != `[{"role":"FE","pid":42,"running":true}]` {
		t.Fatalf("agent A after the flush: %+v", gotA)
	}
	if !gotB.LastReportedTime.After(*regB.LastReportedTime) || gotB.Processes != "[]" {
		t.Fatalf("agent B after the flush: %+v", gotB)
	}
	var sb strings.Builder
	if err := e.metrics.Write(ctx, &sb); err != nil {
		t.Fatal(err)
	}
	m, err := metricstest.Parse(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if m["dorismanager_agent_heartbeats_total"] != 3 || m["dorismanager_agent_heartbeat_flush_seconds_count"] != 1 {
		t.Fatalf("3 beats in 1 batch expected:\n%s", sb.String())
	}
	beat(b, idB, nil)
	e.reg.Close()
	if got := row("127.0.0.2"); !got.LastReportedTime.After(*gotB.LastReportedTime) {
		t.Fatalf("Close did not write the last heartbeat: %+v", got)
	}
}
