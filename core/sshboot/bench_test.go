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
	"testing"

	"golang.org/x/sync/errgroup"
)

// benchInstall measures installing (or reinstalling) the agent on n hosts
// in parallel, and reports the idle resident memory of the agents.
func benchInstall(b *testing.B, n int) {
	e := setup(b, n)
	ctx := context.Background()
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

func BenchmarkInstall1(b *testing.B)  { benchInstall(b, 1) }
func BenchmarkInstall10(b *testing.B) { benchInstall(b, 10) }
