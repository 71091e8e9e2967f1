package sshboot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sync/errgroup"
)

// benchInstall measures installing (or reinstalling) the agent on n hosts
// in parallel, and reports the idle resident memory of the agents.
func benchInstall(b *testing.B, n int) {
	e := setup(b, n)
	ctx := context.Background()
	busy0, self0 := machineBusy(), selfCPU()
	b.ResetTimer()
	for range b.N {
		var g errgroup.Group
		g.SetLimit(16)
		for _, h := range e.hs.Hosts {
			g.Go(func() error {
				_, err := e.inst.Install(ctx, e.target(h), Credentials{PrivateKey: e.hs.Keys.Ed25519}, io.Discard)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// Where the CPU went: the whole machine (every host's sshd and agent
	// share its cores here) against the manager's own side of the work.
	b.ReportMetric((machineBusy()-busy0)/float64(b.N), "machine-CPU-s/op")
	b.ReportMetric((selfCPU()-self0)/float64(b.N), "manager-CPU-s/op")
	// Idle RSS after registration and a few heartbeats' worth of work.
	var maxRSS int64
	for _, h := range e.hs.Hosts {
		pb, err := os.ReadFile(filepath.Join(h.Root, "doris/agent/data/agent.pid"))
		if err != nil {
			b.Fatal(err)
		}
		if rss := vmRSS(strings.TrimSpace(string(pb))); rss > maxRSS {
			maxRSS = rss
		}
	}
	b.ReportMetric(float64(maxRSS)/(1<<20), "agent-RSS-MiB")
}

func vmRSS(pid string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%s/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// machineBusy is the CPU time, in seconds, all cores of the machine spent
// outside idle since boot (/proc/stat, USER_HZ = 100).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func BenchmarkInstall1(b *testing.B)  { benchInstall(b, 1) }
func BenchmarkInstall10(b *testing.B) { benchInstall(b, 10) }
