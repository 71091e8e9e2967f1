package testhosts

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAttachRefusesForeignNames(t *testing.T) {
	dir := filepath.Join(BaseDir, "testhosts-123")
	good := HostState{Name: "host1", NS: "th12ab-h1", Veth: "th12abv1"}
	cases := []struct {
		name string
		st   State
		ok   bool
	}{
		{"valid", State{Dir: dir, Bridge: "th12abbr", Hosts: []HostState{good}}, true},
		{"other bridge", State{Dir: dir, Bridge: "eth0", Hosts: []HostState{good}}, false},
		{"other dir", State{Dir: "/", Bridge: "th12abbr", Hosts: []HostState{good}}, false},
		{"dir below", State{Dir: filepath.Join(dir, "x"), Bridge: "th12abbr"}, false},
		{"dir traversal", State{Dir: dir + "/../etc", Bridge: "th12abbr"}, false},
		{"other netns", State{Dir: dir, Bridge: "th12abbr", Hosts: []HostState{{NS: "prod", Veth: "th12abv1"}}}, false},
		{"netns of other prefix", State{Dir: dir, Bridge: "th12abbr", Hosts: []HostState{{NS: "th9999-h1", Veth: "th12abv1"}}}, false},
		{"other veth", State{Dir: dir, Bridge: "th12abbr", Hosts: []HostState{{NS: "th12ab-h1", Veth: "eth0"}}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Attach(c.st)
			if (err == nil) != c.ok {
				t.Fatalf("Attach: err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestAttachClose saves the state of running hosts, attaches to it as
// another process would, and checks that Close through it leaves nothing.
func TestAttachClose(t *testing.T) {
	Require(t)
	ctx := context.Background()
	hs, err := Start(ctx, Options{N: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(hs.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	again, err := Attach(st)
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	if _, err := again.Hosts[0].Exec(ctx, "hostname"); err != nil {
		t.Errorf("Exec through the attached hosts: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	links, _ := exec.Command("ip", "-br", "link").Output()
	for _, h := range st.Hosts {
		if strings.Contains(string(out), h.NS) {
			t.Errorf("namespace %s left behind", h.NS)
		}
		if strings.Contains(string(links), h.Veth) {
			t.Errorf("link %s left behind", h.Veth)
		}
		if PidAlive(h.InitPid) {
			t.Errorf("init %d of %s still runs", h.InitPid, h.Name)
		}
	}
	if strings.Contains(string(links), st.Bridge) {
		t.Errorf("bridge %s left behind", st.Bridge)
	}
	if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
		t.Errorf("dir %s left behind", st.Dir)
	}
}
