package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// Each cluster keeps its own host keys; one is changed only with its
// recorded fingerprint, and a change in one cluster leaves the others'.
func TestHostKeysPerCluster(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	fp := func(c string) string { return "SHA256:" + strings.Repeat(c, 43) }
	for _, name := range []string{"c1", "c2"} {
		if _, err := e.st.CreateCluster(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []store.HostKey{
		{ClusterID: 1, Host: "10.0.0.1", Port: 22, KeyType: "ssh-ed25519", Fingerprint: fp("a"), PublicKey: []byte("a")},
		{ClusterID: 2, Host: "10.0.0.1", Port: 22, KeyType: "ssh-ed25519", Fingerprint: fp("b"), PublicKey: []byte("b")},
		{ClusterID: 2, Host: "10.0.0.2", Port: 22, Fingerprint: fp("c")},
		{ClusterID: 2, Host: "10.0.0.2", Port: 2222, Fingerprint: fp("d")},
	} {
		if err := e.st.AddHostKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
	}
	change := func(host string, port any, old, new string) map[string]any {
		m := map[string]any{"host": host, "oldFingerprint": old, "newFingerprint": new}
		if port != nil {
			m["port"] = port
		}
		return m
	}
	cases := []struct {
		name   string
		path   string
		body   map[string]any
		status int
		says   string
	}{
		{"no old fingerprint", "/api/cluster/1/hostKeys", change("10.0.0.1", nil, "", fp("n")), 400, "oldFingerprint"},
		{"bad new fingerprint", "/api/cluster/1/hostKeys", change("10.0.0.1", nil, fp("a"), "MD5:00"), 400, "newFingerprint"},
		{"same fingerprint", "/api/cluster/1/hostKeys", change("10.0.0.1", nil, fp("a"), fp("a")), 400, "nothing to change"},
		{"bad host", "/api/cluster/1/hostKeys", change("10.0.0.1;x", nil, fp("a"), fp("n")), 400, "host"},
		{"another cluster's fingerprint", "/api/cluster/1/hostKeys", change("10.0.0.1", nil, fp("b"), fp("n")), 409, "not the fingerprint cluster 1 recorded"},
		{"unknown cluster", "/api/cluster/9/hostKeys", change("10.0.0.1", nil, fp("a"), fp("n")), 404, "cluster 9"},
		{"no key for the host", "/api/cluster/1/hostKeys", change("10.0.0.7", nil, fp("a"), fp("n")), 404, "no host key recorded for 10.0.0.7"},
		{"no key for the port", "/api/cluster/1/hostKeys", change("10.0.0.1", 2222, fp("a"), fp("n")), 404, "port 2222"},
		{"several ports, none named", "/api/cluster/2/hostKeys", change("10.0.0.2", nil, fp("c"), fp("n")), 400, "ports 22, 2222"},
		{"port out of range", "/api/cluster/2/hostKeys", change("10.0.0.2", 70000, fp("c"), fp("n")), 400, "port"},
		{"the recorded fingerprint", "/api/cluster/1/hostKeys", change("10.0.0.1", nil, fp("a"), fp("n")), 200, ""},
		{"again with the old one", "/api/cluster/1/hostKeys", change("10.0.0.1", nil, fp("a"), fp("m")), 409, "nothing changed"},
		{"a port named", "/api/cluster/2/hostKeys", change("10.0.0.2", "2222", fp("d"), fp("n")), 200, ""},
	}
	for _, c := range cases {
		r := e.do("POST", c.path, c.body, e.token)
		if r.status != c.status || !strings.Contains(r.Msg, c.says) {
			t.Errorf("%s: %d %s; want %d saying %q", c.name, r.status, r.raw, c.status, c.says)
		}
	}
	keys := func(cluster string) map[string]HostKeyView {
		var l []HostKeyView
		if err := json.Unmarshal(e.ok("GET", "/api/cluster/"+cluster+"/hostKeys", nil).Data, &l); err != nil {
			t.Fatal(err)
		}
		out := map[string]HostKeyView{}
		for _, k := range l {
			out[fmt.Sprintf("%s:%d", k.Host, k.Port)] = k
		}
		return out
	}
	c1, c2 := keys("1"), keys("2")
	if k := c1["10.0.0.1:22"]; len(c1) != 1 || k.Fingerprint != fp("n") || k.KeyType != nil || k.UpdateTime == nil {
		t.Errorf("cluster 1's keys: %+v; want 10.0.0.1 changed, its key type unknown until seen", c1)
	}
	if len(c2) != 3 || c2["10.0.0.1:22"].Fingerprint != fp("b") || c2["10.0.0.2:2222"].Fingerprint != fp("n") || c2["10.0.0.2:22"].Fingerprint != fp("c") {
		t.Errorf("cluster 2's keys: %+v; want 10.0.0.1 as it was and 10.0.0.2:2222 changed", c2)
	}
}
