package agents

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/store"
)

type gcm struct{ a cipher.AEAD }

func (g gcm) Seal(p []byte) ([]byte, error) {
	n := make([]byte, g.a.NonceSize())
	rand.Read(n)
	return g.a.Seal(n, n, p, nil), nil
}
func (g gcm) Open(c []byte) ([]byte, error) {
	return g.a.Open(nil, c[:g.a.NonceSize()], c[g.a.NonceSize():], nil)
}

// An in-process agent registers, goes STOP when it stops beating and
// RUNNING when it comes back with the same identity.
func TestLiveness(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := make([]byte, 32)
	rand.Read(key)
	b, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(b)
	reg, err := New(Config{DB: st.DB(), Sealer: gcm{a}, HeartbeatSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()

	token, err := reg.Prepare(ctx, 1, "127.0.0.1", 0, "/opt/doris")
	if err != nil {
		t.Fatal(err)
	}
	var row store.Agent
	st.DB().First(&row)
	if bytes.Contains(row.TokenSealed, []byte(token)) || row.TokenHash == token {
		t.Fatal("token stored in plain text")
	}
	// Wrong token: 401.
	resp, _ := http.Post(srv.URL+wire.RegisterPath, "application/json", bytes.NewReader([]byte(`{"agentId":"x"}`)))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}

	dataDir := t.TempDir()
	startAgent := func() context.CancelFunc {
		ag, err := agent.New(wire.Config{ServerURL: srv.URL, Token: token, DataDir: dataDir, HeartbeatSeconds: 1, Host: "127.0.0.1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		go ag.Serve(actx, ln)
		return cancel
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stop := startAgent()
	first, err := reg.WaitRegistered(wctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != StatusRunning || first.Port == 0 {
		t.Fatalf("after register: %+v", first)
	}
	c, err := reg.Client(ctx, 1, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if h, err := c.Health(ctx); err != nil || h.AgentID != first.AgentUUID {
		t.Fatalf("health %+v %v", h, err)
	}
	stop()
	if err := reg.WaitStatus(wctx, 1, "127.0.0.1", StatusStop); err != nil {
		t.Fatal(err)
	}
	stop = startAgent()
	defer stop()
	if err := reg.WaitStatus(wctx, 1, "127.0.0.1", StatusRunning); err != nil {
		t.Fatal(err)
	}
	again, _ := reg.Get(ctx, 1, "127.0.0.1")
	if again.AgentUUID != first.AgentUUID {
		t.Fatalf("identity changed: %s -> %s", first.AgentUUID, again.AgentUUID)
	}
}
