package testhosts

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

func TestOwnerGone(t *testing.T) {
	self, err := selfOwner()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// A child that has exited but is not yet waited for: a zombie.
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	zpid := zombie.Process.Pid
	zstart, startErr := procStart(zpid) // may already be a zombie: then any start will do
	if err := unix.Waitid(unix.P_PID, zpid, nil, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zombie.Wait() }()
	if startErr != nil {
		zstart = 1
	}

	cases := []struct {
		name string
		o    Owner
		gone bool
	}{
		{"this process", self, false},
		{"this process, no boot id", Owner{PID: self.PID, Start: self.Start}, false},
		{"pid reused by a later process", Owner{PID: self.PID, Start: self.Start + 1, Boot: self.Boot}, true},
		{"earlier boot", Owner{PID: self.PID, Start: self.Start, Boot: "00000000-0000-0000-0000-000000000000"}, true},
		{"no such pid", Owner{PID: pidMax, Start: 1, Boot: self.Boot}, true},
		{"zombie", Owner{PID: zpid, Start: zstart, Boot: self.Boot}, true},
		{"no pid", Owner{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.o.Gone(); got != c.gone {
				t.Fatalf("Gone(%+v) = %v, want %v", c.o, got, c.gone)
			}
		})
	}
}

// TestReapRecords runs the reaper over hand-made folders (no network
// objects, so no root needed): only folders with a trustworthy record of a
// dead, not detached owner go.
func TestReapRecords(t *testing.T) {
	if linkExists("th9999br") || netnsExists("th9999-h1") {
		t.Skip("th9999 names are in use on this machine")
	}
	tmp := t.TempDir()
	t.Setenv("TESTHOSTS_DIR", tmp)
	self, err := selfOwner()
	if err != nil {
		t.Fatal(err)
	}
	dead := Owner{PID: self.PID, Start: self.Start + 1, Boot: self.Boot}
	rec := func(r record) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dir := func(name string) string { return filepath.Join(tmp, name) }
	names := func(d string) State {
		return State{Dir: d, Bridge: "th9999br", Hosts: []HostState{{Name: "host1", NS: "th9999-h1", Veth: "th9999v1"}}}
	}
	cases := []struct {
		name   string
		record []byte // nil: no record
		keep   bool
	}{
		{"testhosts-dead-empty", rec(record{Owner: dead}), false},
		{"testhosts-dead-named", rec(record{Owner: dead, State: names(dir("testhosts-dead-named"))}), false},
		{"testhosts-dead-elsewhere", rec(record{Owner: dead, State: names("/etc")}), false}, // the folder itself, never /etc
		{"testhosts-alive", rec(record{Owner: self, State: names(dir("testhosts-alive"))}), true},
		{"testhosts-detached", rec(record{Owner: dead, Detached: true, State: names(dir("testhosts-detached"))}), true},
		{"testhosts-norecord", nil, true},
		{"testhosts-corrupt", []byte("{"), true},
		{"testhosts-foreign", rec(record{Owner: dead, State: State{Bridge: "eth0"}}), true},
		{"testhosts-foreign-ns", rec(record{Owner: dead, State: State{Bridge: "th9999br",
			Hosts: []HostState{{NS: "prod", Veth: "th9999v1"}}}}), true},
	}
	for _, c := range cases {
		if err := os.MkdirAll(filepath.Join(dir(c.name), "host1"), 0o700); err != nil {
			t.Fatal(err)
		}
		if c.record != nil {
			if err := os.WriteFile(filepath.Join(dir(c.name), recordFile), c.record, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := reap(context.Background(), hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := os.Stat(dir(c.name))
		if kept := err == nil; kept != c.keep {
			t.Errorf("%s: kept = %v, want %v", c.name, kept, c.keep)
		}
	}
	if _, err := os.Stat("/etc"); err != nil {
		t.Fatal(err)
	}
}

// TestHelperOwner is not a test of its own: it is the child process of
// TestReapKilledOwner, started with TESTHOSTS_HELPER set. It starts two
// hosts, prints their state as one JSON line and waits to be killed.
func TestHelperOwner(t *testing.T) {
	mode := os.Getenv("TESTHOSTS_HELPER")
	if mode == "" {
		t.Skip("the child process of TestReapKilledOwner")
	}
	hs, err := Start(context.Background(), Options{N: 2})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if mode == "detached" {
		if err := hs.Detach(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	b, _ := json.Marshal(hs.State())
	fmt.Println(string(b))
	select {} // until killed
}

// startOwner runs TestHelperOwner in a child process and returns it with
// the state of its hosts.
func startOwner(t *testing.T, mode string) (*exec.Cmd, State) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOwner$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "TESTHOSTS_HELPER="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var st State
	if err == nil {
		err = json.Unmarshal([]byte(line), &st)
	}
	// Whatever the test does, nothing stays: the child goes, its hosts too.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if st.Bridge != "" {
			if hs, err := Attach(st); err == nil {
				_ = hs.Close()
			}
		}
	})
	if err != nil {
		t.Fatalf("child %s: %v: %q", mode, err, line)
	}
	return cmd, st
}

// present lists which of a state's namespaces, links, sshds and folder exist.
func present(st State) []string {
	var got []string
	for _, h := range st.Hosts {
		if netnsExists(h.NS) {
			got = append(got, "netns "+h.NS)
		}
		if linkExists(h.Veth) {
			got = append(got, "link "+h.Veth)
		}
		if PidAlive(h.InitPid) {
			got = append(got, "init "+strconv.Itoa(h.InitPid))
		}
	}
	if linkExists(st.Bridge) {
		got = append(got, "bridge "+st.Bridge)
	}
	if _, err := os.Stat(st.Dir); err == nil {
		got = append(got, "dir "+st.Dir)
	}
	return got
}

// TestReapKilledOwner: the hosts of a SIGKILLed test process stay behind
// until the next Start, which removes them (namespaces, links, bridge,
// sshd, folder); the hosts of a live process and detached hosts of a dead
// one are left alone.
func TestReapKilledOwner(t *testing.T) {
	Require(t)
	killed, killedSt := startOwner(t, "owned")
	_, liveSt := startOwner(t, "owned")
	detached, detachedSt := startOwner(t, "detached")
	for _, cmd := range []*exec.Cmd{killed, detached} {
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	// 2 hosts: netns, link, sshd each; the bridge; the folder.
	const whole = 2*3 + 2
	for name, st := range map[string]State{"killed": killedSt, "live": liveSt, "detached": detachedSt} {
		if got := present(st); len(got) != whole {
			t.Fatalf("%s child's hosts before the reaper: %v, want all %d parts", name, got, whole)
		}
	}

	ctx, cancel := deadline.Context(context.Background(), time.Minute)
	defer cancel()
	hs, err := Start(ctx, Options{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()

	if got := present(killedSt); len(got) > 0 {
		t.Errorf("the killed child's hosts survived the next Start: %v", got)
	}
	if got := present(liveSt); len(got) != whole {
		t.Errorf("the live child's hosts were touched: only %v remain", got)
	}
	if got := present(detachedSt); len(got) != whole {
		t.Errorf("the detached hosts of a dead child were touched: only %v remain", got)
	}
	live, err := Attach(liveSt)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := live.Hosts[0].Exec(ctx, "hostname"); err != nil || strings.TrimSpace(string(out)) != "host1" {
		t.Errorf("the live child's host1 after the reaper: %q, %v", out, err)
	}
}
