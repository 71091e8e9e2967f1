package sshboot

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/preflight"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/testhosts"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"
)

// agentsDir holds the agent built for this machine, as make build lays
// it out (linux-<arch>/doris-agent); agentBin is that binary.
var agentsDir, agentBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "sshboot-bin-")
			if err != nil {
				panic(err)
			}
			defer os.RemoveAll(dir)
			agentsDir = dir
			agentBin = preflight.AgentPath(dir, runtime.GOARCH)
			cmd := exec.Command("go", "build", "-o", agentBin, "github.com/dorismanager/dorismanager/cmd/doris-agent")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build agent: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	hs        *testhosts.Hosts
	st        *store.Store
	ca        *pki.Authority
	reg       *agents.Registry
	inst      *Installer
	logs      *syncBuf
	port      int
	clusterID int64
}

func setup(t testing.TB, n int) *env {
	testhosts.Require(t)
	ctx := context.Background()
	logs := &syncBuf{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	hs, err := testhosts.Start(ctx, testhosts.Options{N: n, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	st, err := store.Open("", t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cl, err := st.CreateCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Open(t.TempDir(), pki.Options{ManagerHosts: []string{hs.BridgeAddr}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := agents.New(agents.Config{Store: st, PKI: ca, Logger: logger, HeartbeatSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ln, err := net.Listen("tcp", net.JoinHostPort(hs.BridgeAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/agent-api/v1/", reg.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(tls.NewListener(ln, ca.AgentEndpointTLS()))
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	// Another manager on the database, as the managers' rows name it
	// (nothing listens there: the agents use the first URL).
	inst, err := New(Config{AgentsDir: agentsDir, AgentEndpointPort: port, Registry: reg, Store: st, Logger: logger,
		ConnectTimeout: 2 * time.Second, RegisterTimeout: deadline.D(30 * time.Second),
		Managers: func() []string { return []string{otherManagerURL(hs)} }})
	if err != nil {
		t.Fatal(err)
	}
	return &env{hs: hs, st: st, ca: ca, reg: reg, inst: inst, logs: logs, port: port, clusterID: cl.ID}
}

// otherManagerURL is a second manager's agent endpoint as Config.Managers names it.
func otherManagerURL(hs *testhosts.Hosts) string {
	return "https://" + net.JoinHostPort(hs.BridgeAddr, "1")
}

func (e *env) target(h *testhosts.Host) Target {
	return Target{ClusterID: e.clusterID, Host: h.Addr, Port: h.Port, User: "root", InstallDir: "/opt/doris"}
}

func TestInstall(t *testing.T) {
	e := setup(t, 3)
	ctx := context.Background()
	hs := e.hs
	keys := []Credentials{
		{PrivateKey: hs.Keys.RSA},
		{PrivateKey: hs.Keys.ECDSA},
		{PrivateKey: hs.Keys.Ed25519Encrypted, Passphrase: hs.Keys.Passphrase},
	}
	taskLogs := make([]*syncBuf, len(hs.Hosts))
	results := make([]Result, len(hs.Hosts))

	t.Run("parallel install", func(t *testing.T) {
		var g errgroup.Group
		g.SetLimit(2)
		for i, h := range hs.Hosts {
			taskLogs[i] = &syncBuf{}
			g.Go(func() error {
				r, err := e.inst.Install(ctx, e.target(h), keys[i], taskLogs[i])
				results[i] = r
				if err != nil {
					return fmt.Errorf("%s: %w\n%s", h.Name, err, taskLogs[i])
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		for i, h := range hs.Hosts {
			a, err := e.reg.Get(ctx, e.clusterID, h.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != agents.StatusRunning || a.AgentUUID == "" || a.ID != results[i].AgentID || a.RegisterTime == nil {
				t.Errorf("%s: agent %+v", h.Name, a)
			}
			var hw wire.Hardware
			if err := json.Unmarshal([]byte(a.Hardware), &hw); err != nil || !strings.HasSuffix(hw.TotalMemory, "iB") || hw.Cores == 0 {
				t.Errorf("%s: hardware %q %v", h.Name, a.Hardware, err)
			}
			if results[i].HostKeyFingerprint != h.HostKeyFingerprint() {
				t.Errorf("%s: fingerprint %s, want %s", h.Name, results[i].HostKeyFingerprint, h.HostKeyFingerprint())
			}
			if fi, err := os.Stat(filepath.Join(h.Root, "doris/agent/conf/agent.json")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: config %v %v", h.Name, fi, err)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("exec request is not run twice", func(t *testing.T) {
		c, err := e.reg.Client(ctx, e.clusterID, hs.Hosts[0].Addr)
		if err != nil {
			t.Fatal(err)
		}
		req := agentclient.ExecRequest{RequestID: "task-9-attempt-1-exec-1", TaskID: "9",
			Command: sdk.Command{Argv: []string{"sh", "-c", `echo once >> /opt/doris/count; ulimit -n`}}}
		for range 3 {
			var out bytes.Buffer
			r, err := c.Exec(ctx, req, &out)
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("exec: %+v %v", r, err)
			}
			if !strings.HasSuffix(r.LogPath, "/task-9.log") {
				t.Errorf("log path %s", r.LogPath)
			}
		}
		b, _ := os.ReadFile(filepath.Join(hs.Hosts[0].Root, "doris/count"))
		if n := strings.Count(string(b), "once"); n != 1 {
			t.Fatalf("command ran %d times", n)
		}
		if _, err := agentclient.New(c.BaseURL(), agentclient.WithTLS(&tls.Config{RootCAs: e.ca.Pool()})).Health(ctx); !errors.Is(err, agentclient.ErrHandshake) {
			t.Fatalf("no client certificate: %v", err)
		}
	})

	t.Run("restart keeps identity", func(t *testing.T) {
		h := hs.Hosts[0]
		before, _ := e.reg.Get(ctx, e.clusterID, h.Addr)
		pid := agentPid(t, h)
		if _, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519}, io.Discard); err != nil {
			t.Fatal(err)
		}
		after, _ := e.reg.Get(ctx, e.clusterID, h.Addr)
		if after.AgentUUID != before.AgentUUID || after.ID != before.ID {
			t.Fatalf("identity changed: %s -> %s", before.AgentUUID, after.AgentUUID)
		}
		if after.CertSerial == before.CertSerial || after.PrevCertSerial != "" {
			t.Fatalf("a reinstall must issue a new certificate and revoke the old: %s -> %s (previous %q)", before.CertSerial, after.CertSerial, after.PrevCertSerial)
		}
		if fi, err := os.Stat(filepath.Join(h.Root, "doris/agent/conf/agent.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("agent key file: %v %v", fi, err)
		}
		if testhosts.PidAlive(pid) {
			t.Errorf("old agent %d still runs", pid)
		}
		if agentPid(t, h) == pid {
			t.Error("agent was not restarted")
		}
	})

	t.Run("heartbeat loss turns STOP and back", func(t *testing.T) {
		h := hs.Hosts[2]
		wctx, cancel := deadline.Context(ctx, 30*time.Second)
		defer cancel()
		if err := h.SetReachable(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := e.reg.WaitStatus(wctx, e.clusterID, h.Addr, agents.StatusStop); err != nil {
			t.Fatal(err)
		}
		if err := h.SetReachable(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := e.reg.WaitStatus(wctx, e.clusterID, h.Addr, agents.StatusRunning); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		_, err := e.inst.Install(ctx, e.target(hs.Hosts[1]), Credentials{PrivateKey: hs.Keys.Unauthorized}, io.Discard)
		if !errors.Is(err, ErrAuthRefused) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("want auth refused, got %v", err)
		}
		_, err = e.inst.Install(ctx, e.target(hs.Hosts[1]), Credentials{PrivateKey: hs.Keys.Ed25519Encrypted}, io.Discard)
		if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "passphrase") {
			t.Fatalf("want passphrase message, got %v", err)
		}
	})

	t.Run("unreachable host", func(t *testing.T) {
		h := hs.Hosts[1]
		// A port nothing listens on, one that does not speak SSH, and a
		// host whose link is down: the answers are alike, but for the
		// address; the task log tells them apart.
		notSSH, err := net.Listen("tcp", net.JoinHostPort(hs.BridgeAddr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer notSSH.Close()
		go func() {
			for {
				c, err := notSSH.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
				c.Close()
			}
		}()
		closed := e.target(h)
		closed.Port = 1
		other := e.target(h)
		other.Host, other.Port = hs.BridgeAddr, notSSH.Addr().(*net.TCPAddr).Port
		cases := []struct {
			name   string
			target Target
			down   bool
			detail string // in the task log only
		}{
			{"refused", closed, false, "connection refused"},
			{"not SSH", other, false, "SSH handshake"},
			{"filtered", e.target(h), true, "connect:"},
		}
		var answers []string
		for _, c := range cases {
			if c.down {
				if err := h.SetReachable(ctx, false); err != nil {
					t.Fatal(err)
				}
			}
			// The context is far longer than the connect timeout: the failure
			// must come from the installer's own timeout.
			cctx, cancel := deadline.Context(ctx, 60*time.Second)
			var log syncBuf
			_, err := e.inst.Install(cctx, c.target, Credentials{PrivateKey: hs.Keys.Ed25519}, &log)
			expired := cctx.Err()
			cancel()
			if c.down {
				if err := h.SetReachable(ctx, true); err != nil {
					t.Fatal(err)
				}
			}
			addr := net.JoinHostPort(c.target.Host, strconv.Itoa(c.target.Port))
			if !errors.Is(err, ErrUnreachable) || expired != nil || !strings.Contains(err.Error(), addr) {
				t.Fatalf("%s: want unreachable naming %s, got %v", c.name, addr, err)
			}
			if strings.Contains(err.Error(), c.detail) || !strings.Contains(log.String(), c.detail) {
				t.Errorf("%s: the answer %q or the task log %q: want %q in the log only", c.name, err, log.String(), c.detail)
			}
			answers = append(answers, strings.ReplaceAll(err.Error(), addr, "ADDR"))
		}
		for i := range answers {
			if answers[i] != answers[0] {
				t.Errorf("%s answers %q, %s %q: want the same words", cases[i].name, answers[i], cases[0].name, answers[0])
			}
		}
	})

	t.Run("changed host key", func(t *testing.T) {
		h := hs.Hosts[1]
		old := h.HostKeyFingerprint()
		if err := h.RotateHostKey(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519}, io.Discard)
		if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), h.HostKeyFingerprint()) ||
			!strings.Contains(err.Error(), fmt.Sprintf("/api/cluster/%d/hostKeys", e.clusterID)) {
			t.Fatalf("want both fingerprints and how to change the key, got %v", err)
		}
		// Pinning the new key does not replace the recorded one: a change
		// needs the old fingerprint.
		_, err = e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519, HostKeyFingerprint: h.HostKeyFingerprint()}, io.Discard)
		if !errors.Is(err, ErrHostKeyChanged) {
			t.Fatalf("a pin over a recorded key: %v; want refused", err)
		}
		if ok, err := e.st.ChangeHostKey(ctx, e.clusterID, h.Addr, h.Port, old, h.HostKeyFingerprint()); !ok || err != nil {
			t.Fatalf("change the recorded key: %v %v", ok, err)
		}
		r, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519}, io.Discard)
		if err != nil || r.HostKeyFingerprint != h.HostKeyFingerprint() {
			t.Fatalf("install after the change: %+v %v", r, err)
		}
		if k, err := e.st.HostKeyOf(ctx, e.clusterID, h.Addr, h.Port); err != nil || k.KeyType != h.HostPublicKey().Type() ||
			!bytes.Equal(k.PublicKey, h.HostPublicKey().Marshal()) {
			t.Fatalf("the new key is not recorded once seen: %+v %v", k, err)
		}
		// A wrong pin is refused even though the record matches.
		_, err = e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519, HostKeyFingerprint: old}, io.Discard)
		if !errors.Is(err, ErrHostKeyChanged) {
			t.Fatalf("wrong pin: %v", err)
		}
	})

	t.Run("host keys per cluster", func(t *testing.T) {
		h := hs.Hosts[1]
		signer, err := parseKey(Credentials{PrivateKey: hs.Keys.Ed25519})
		if err != nil {
			t.Fatal(err)
		}
		c2, err := e.st.CreateCluster(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		t2 := e.target(h)
		t2.ClusterID = c2.ID
		// Cluster 1 recorded the host's key; cluster 2 has none yet.
		before := h.HostKeyFingerprint()
		if err := h.RotateHostKey(ctx); err != nil {
			t.Fatal(err)
		}
		client, fp, err := e.inst.dial(ctx, t2, signer, "")
		if err != nil {
			t.Fatalf("cluster 2 trusts the host's key on first use: %v", err)
		}
		client.Close()
		if fp != h.HostKeyFingerprint() {
			t.Fatalf("cluster 2 saw %s, want %s", fp, h.HostKeyFingerprint())
		}
		if _, _, err := e.inst.dial(ctx, e.target(h), signer, ""); !errors.Is(err, ErrHostKeyChanged) {
			t.Fatalf("cluster 1 with its own key %s: %v; want the change refused", before, err)
		}
		for c, want := range map[int64]string{e.clusterID: before, c2.ID: h.HostKeyFingerprint()} {
			if k, err := e.st.HostKeyOf(ctx, c, h.Addr, h.Port); err != nil || k.Fingerprint != want {
				t.Errorf("cluster %d keeps %+v (%v), want %s", c, k, err, want)
			}
		}
		// Put cluster 1's record back in line with the host.
		if ok, err := e.st.ChangeHostKey(ctx, e.clusterID, h.Addr, h.Port, before, h.HostKeyFingerprint()); !ok || err != nil {
			t.Fatalf("change: %v %v", ok, err)
		}
	})

	t.Run("strict host keys", func(t *testing.T) {
		h := hs.Hosts[1]
		var log syncBuf
		// No fingerprint given: refused before any connection, though the
		// cluster has a key recorded for the host.
		_, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519, StrictHostKeys: true}, &log)
		if !errors.Is(err, ErrHostKeyUnknown) || !strings.Contains(err.Error(), "hostKeyFingerprints") || strings.Contains(log.String(), "connecting") {
			t.Fatalf("strict without a fingerprint: %v\n%s", err, log.String())
		}
		// A host the cluster never saw, with its fingerprint: accepted and recorded.
		c3, err := e.st.CreateCluster(ctx, "c3")
		if err != nil {
			t.Fatal(err)
		}
		t3 := e.target(h)
		t3.ClusterID = c3.ID
		signer, _ := parseKey(Credentials{PrivateKey: hs.Keys.Ed25519})
		client, _, err := e.inst.dial(ctx, t3, signer, h.HostKeyFingerprint())
		if err != nil {
			t.Fatalf("strict with the right fingerprint: %v", err)
		}
		client.Close()
		if k, err := e.st.HostKeyOf(ctx, c3.ID, h.Addr, h.Port); err != nil || k.Fingerprint != h.HostKeyFingerprint() {
			t.Fatalf("pinned key not recorded: %+v %v", k, err)
		}
		// With the fingerprint, the whole install goes through.
		if _, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: hs.Keys.Ed25519, StrictHostKeys: true,
			HostKeyFingerprint: h.HostKeyFingerprint()}, io.Discard); err != nil {
			t.Fatalf("strict install with the fingerprint: %v", err)
		}
	})

	t.Run("no registration in time", func(t *testing.T) {
		bad, err := New(Config{AgentsDir: agentsDir, AdvertiseURL: "https://" + net.JoinHostPort(hs.BridgeAddr, "1"),
			Registry: e.reg, Store: e.st, ConnectTimeout: 2 * time.Second, RegisterTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Install(ctx, e.target(hs.Hosts[1]), Credentials{PrivateKey: hs.Keys.Ed25519}, io.Discard)
		if !errors.Is(err, ErrNotRegistered) || !strings.Contains(err.Error(), "register failed") {
			t.Fatalf("want not registered with the agent log, got %v", err)
		}
		// Put the good agent back.
		if _, err := e.inst.Install(ctx, e.target(hs.Hosts[1]), Credentials{PrivateKey: hs.Keys.Ed25519}, io.Discard); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("secrets stay secret", func(t *testing.T) {
		var secrets []string
		for _, h := range hs.Hosts {
			b, err := os.ReadFile(filepath.Join(h.Root, "doris/agent/conf/agent.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c wire.Config
			json.Unmarshal(b, &c)
			if !strings.HasPrefix(c.ServerURL, "https://") || c.CertFile == "" || strings.Contains(string(b), "PRIVATE") {
				t.Fatalf("agent config %s", b)
			}
			if len(c.ServerURLs) != 2 || c.ServerURLs[0] != c.ServerURL || c.ServerURLs[1] != otherManagerURL(hs) {
				t.Errorf("%s: serverURLs %v, want this manager's %s, then the other's %s", h.Name, c.ServerURLs, c.ServerURL, otherManagerURL(hs))
			}
			pair, err := os.ReadFile(filepath.Join(h.Root, strings.TrimPrefix(c.CertFile, "/opt/")))
			if err != nil {
				t.Fatal(err)
			}
			_, rest, _ := strings.Cut(string(pair), "-----BEGIN PRIVATE KEY-----\n")
			if len(rest) < 64 {
				t.Fatalf("no private key in %s", c.CertFile)
			}
			secrets = append(secrets, rest[:64]) // the agent's key material
		}
		for _, k := range [][]byte{hs.Keys.RSA, hs.Keys.ECDSA, hs.Keys.Ed25519, hs.Keys.Ed25519Encrypted} {
			lines := strings.Split(string(k), "\n")
			secrets = append(secrets, lines[1], lines[2]) // key material, not the PEM header
		}
		secrets = append(secrets, hs.Keys.Passphrase)
		haystacks := map[string]string{"manager log": e.logs.String()}
		for i, l := range taskLogs {
			haystacks[fmt.Sprintf("task log %d", i)] = l.String()
		}
		for _, h := range hs.Hosts {
			b, _ := os.ReadFile(filepath.Join(h.Root, "doris/agent/log/agent.out"))
			haystacks["agent log of "+h.Name] = string(b)
			c, _ := e.reg.Client(ctx, e.clusterID, h.Addr)
			hw, _ := c.Health(ctx)
			hb, _ := json.Marshal(hw)
			haystacks["health of "+h.Name] = string(hb)
		}
		if len(haystacks["manager log"]) == 0 {
			t.Fatal("no manager log captured")
		}
		for name, text := range haystacks {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s contains a secret", name)
				}
			}
		}
		var rows []store.Agent
		e.st.DB().Find(&rows)
		rb, _ := json.Marshal(rows)
		for _, s := range secrets[:len(hs.Hosts)] {
			if bytes.Contains(rb, []byte(s)) {
				t.Error("an agent's private key is in the store")
			}
		}
	})
}

func agentPid(t *testing.T, h *testhosts.Host) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Root, "doris/agent/data/agent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
