package server

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

// Two managers on one PostgreSQL database (the second with the first's
// CA and secret key) each know the other's agent endpoint; a manager
// that stops is forgotten.
func TestManagersFindEachOther(t *testing.T) {
	dsn := pgtest.Start(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	var depsA, depsB Deps
	capture := func(d *Deps) func(context.Context, Deps) (Extensions, error) {
		return func(_ context.Context, got Deps) (Extensions, error) { *d = got; return Extensions{}, nil }
	}
	a, _, stopA := startServer(t, Config{DB: dsn, DataDir: dirA, AdvertiseURL: "https://127.0.0.1:19603", Extend: capture(&depsA)})
	defer stopA()
	// The second manager shares the first one's CA and secret key.
	if err := os.MkdirAll(filepath.Join(dirB, pki.Dir), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pki/ca.key", "pki/ca.crt", "pki/bundle.crt", "secret.key"} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, _, stopB := startServer(t, Config{DB: dsn, DataDir: dirB, AdvertiseURL: "https://127.0.0.1:29603", Extend: capture(&depsB)})
	if a.PKI().SigningID() != b.PKI().SigningID() {
		t.Fatal("the managers do not share the CA")
	}
	if got := depsB.Managers(); !slices.Equal(got, []string{"https://127.0.0.1:29603", "https://127.0.0.1:19603"}) {
		t.Fatalf("the second manager knows %v", got)
	}
	if err := a.peers.seen(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := depsA.Managers(); !slices.Equal(got, []string{"https://127.0.0.1:19603", "https://127.0.0.1:29603"}) {
		t.Fatalf("the first manager knows %v", got)
	}
	stopB()
	if err := a.peers.seen(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := depsA.Managers(); !slices.Equal(got, []string{"https://127.0.0.1:19603"}) {
		t.Fatalf("after the second stopped the first knows %v", got)
	}
}

// Agents learn a manager's endpoint from --advertise-url, else from the
// one address it listens on; a wildcard listener gives none.
func TestAgentURL(t *testing.T) {
	for _, tc := range []struct {
		advertise string
		addr      net.Addr
		want      string
	}{
		{"https://dm1.example:9603", &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 9603}, "https://dm1.example:9603"},
		{"", &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 9603}, "https://10.0.0.5:9603"},
		{"", &net.TCPAddr{IP: net.ParseIP("fd00::5"), Port: 9603}, "https://[fd00::5]:9603"},
		{"", &net.TCPAddr{IP: net.IPv4zero, Port: 9603}, ""},
		{"", &net.TCPAddr{IP: net.IPv6unspecified, Port: 9603}, ""},
		{"", &net.TCPAddr{Port: 9603}, ""},
		{"", &net.UnixAddr{Name: "/run/dm.sock", Net: "unix"}, ""},
	} {
		if got := agentURL(tc.advertise, tc.addr); got != tc.want {
			t.Errorf("agentURL(%q, %v) = %q, want %q", tc.advertise, tc.addr, got, tc.want)
		}
	}
}
