package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
)

func TestBadCommands(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"token"}, {"token", "create"}, {"token", "create", "--user", "a"},
		{"token", "create", "--user", "a", "--role", "root"}, {"token", "create", "--user", "a", "--role", "viewer", "--expires", "soon"},
		{"token", "create", "--user", "a", "--role", "admin", "--clusters", "1"}, {"token", "create", "--user", "a", "--role", "viewer", "--clusters", "x"},
		{"token", "mint"}, {"token", "revoke"}, {"token", "revoke", "abc"}, {"grant", "alice"}, {"revoke-grant", "alice", "x"},
		{"audit", "--since", "yesterday"}, {"audit", "--outcome", "fine"}, {"audit", "extra"}, {"serve", "--parallel", "0"},
		{"serve", "--log-level", "loud"}, {"serve", "extra"}, {"serve", "--agent-retries", "-1"},
		{"serve", "--agent-keepalive", "500ms"}, {"serve", "--agent-connect-timeout", "0s"}, {"serve", "--agent-retry-backoff", "0s"},
		{"serve", "--tls", "on"}, {"serve", "--advertise-url", "http://10.0.0.1:9601"}, {"serve", "--tls-san", "a b"},
		{"serve", "--agent-cert-lifetime", "1m"}, {"ca"}, {"ca", "renew"}, {"ca", "rotate", "x"},
		{"serve", "--http-read-timeout", "0s"}, {"serve", "--http-write-timeout", "-1s"}, {"serve", "--http-max-conns", "0"},
		{"serve", "--auth-max-failures", "-1"}} {
		var out, errb bytes.Buffer
		err := run(args, &out, &errb)
		if err == nil {
			t.Errorf("%q: want an error", args)
		} else if code := exitStatus(err, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2: %v", args, code, err)
		}
	}
}

// ca rotate starts a rotation, --finish refuses while an agent holds a
// certificate of the old CA, and ends it once none does (or with --force).
func TestCARotate(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.Open(dir, pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	old := ca.SigningID()
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.DB().Create(&store.Agent{ClusterID: 1, Host: "10.0.0.1", CertIssuer: old, CertSerial: "1"})
	st.Close()
	do := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(append(args, "--data-dir", dir), &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := do("ca", "rotate", "--finish"); err == nil {
		t.Fatalf("finished a rotation that was not started: %s", out)
	}
	if out, err := do("ca", "rotate"); err != nil || !strings.Contains(out, "started a CA rotation") {
		t.Fatalf("rotate: %s %v", out, err)
	}
	status, err := pki.ReadStatus(dir)
	if err != nil || status.PrevID != old || status.SigningID == old {
		t.Fatalf("status after rotate: %+v %v", status, err)
	}
	if out, err := do("ca", "status"); err != nil || !strings.Contains(out, "10.0.0.1: , certificate 1 from the previous CA") {
		t.Fatalf("status: %s %v", out, err)
	}
	if out, err := do("ca", "rotate", "--finish"); err == nil || !strings.Contains(err.Error(), "cluster 1 10.0.0.1") {
		t.Fatalf("finish with an agent on the old CA: %s %v", out, err)
	}
	if out, err := do("ca", "rotate", "--finish", "--force"); err != nil {
		t.Fatalf("finish --force: %s %v", out, err)
	}
	if status, _ := pki.ReadStatus(dir); status.PrevID != "" {
		t.Fatalf("still rotating: %+v", status)
	}
}
