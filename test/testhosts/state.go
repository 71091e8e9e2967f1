package testhosts

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// State is what Close needs to tear a set of hosts down, saved as JSON by
// a program that leaves its hosts running after it exits (the demo) and
// read back by the one that removes them.
type State struct {
	Dir        string      `json:"dir"`
	Bridge     string      `json:"bridge"`
	BridgeAddr string      `json:"bridgeAddr"`
	Subnet     string      `json:"subnet"`
	Hosts      []HostState `json:"hosts"`
}

// HostState is one host of a State.
type HostState struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	NS      string `json:"netns"`
	Veth    string `json:"veth"`
	Dir     string `json:"dir"`
	Root    string `json:"root"`
	InitPid int    `json:"initPid"`
}

// State describes the running hosts.
func (hs *Hosts) State() State {
	st := State{Dir: hs.Dir, Bridge: hs.bridge, BridgeAddr: hs.BridgeAddr, Subnet: hs.Subnet}
	for _, h := range hs.Hosts {
		st.Hosts = append(st.Hosts, HostState{Name: h.Name, Addr: h.Addr, NS: h.NS, Veth: h.veth,
			Dir: h.Dir, Root: h.Root, InitPid: h.initPid})
	}
	return st
}

// Names Start gives out; Attach accepts nothing else, so an edited state
// file cannot make Close delete some other link, namespace or folder.
var (
	bridgeName = regexp.MustCompile(`^th[0-9a-f]{4}br$`)
	nsName     = regexp.MustCompile(`^th[0-9a-f]{4}-h[0-9]{1,3}$`)
	vethName   = regexp.MustCompile(`^th[0-9a-f]{4}v[0-9]{1,3}$`)
)

// Attach rebuilds Hosts from a saved State, in another process, so that
// Close (and Exec, Pids) work on them. The client keys are not part of the
// state.
func Attach(st State) (*Hosts, error) {
	if !bridgeName.MatchString(st.Bridge) {
		return nil, fmt.Errorf("testhosts state: %q is not a bridge name Start gives out", st.Bridge)
	}
	prefix := strings.TrimSuffix(st.Bridge, "br")
	if err := checkDir(st.Dir); err != nil {
		return nil, err
	}
	hs := &Hosts{Dir: st.Dir, BridgeAddr: st.BridgeAddr, Subnet: st.Subnet, User: "root", bridge: st.Bridge,
		log: hclog.NewNullLogger()}
	for _, s := range st.Hosts {
		if !nsName.MatchString(s.NS) || !strings.HasPrefix(s.NS, prefix+"-") ||
			!vethName.MatchString(s.Veth) || !strings.HasPrefix(s.Veth, prefix+"v") {
			return nil, fmt.Errorf("testhosts state: host %q: namespace %q or link %q is not one Start gives out", s.Name, s.NS, s.Veth)
		}
		hs.Hosts = append(hs.Hosts, &Host{Name: s.Name, Addr: s.Addr, Port: 22, Root: s.Root, NS: s.NS,
			Home: filepath.Join(s.Dir, "root"), Tmp: filepath.Join(s.Dir, "tmp"),
			Dir: s.Dir, SSHDLog: filepath.Join(s.Dir, "sshd.log"), hs: hs, veth: s.Veth, initPid: s.InitPid})
	}
	return hs, nil
}

// checkDir accepts only a folder Start makes: baseDir()/testhosts-*.
func checkDir(dir string) error {
	tmp := filepath.Clean(baseDir()) + string(filepath.Separator)
	if d := filepath.Clean(dir); !strings.HasPrefix(d, tmp+"testhosts-") || strings.Contains(d[len(tmp):], string(filepath.Separator)) {
		return fmt.Errorf("testhosts state: %q is not a folder Start makes", dir)
	}
	return nil
}
