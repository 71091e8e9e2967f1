// Package freeport hands tests TCP ports that are free on this machine and
// that no other test of the same process has been given.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports hands out TCP ports free on this machine, never the same twice.
// They come from below the kernel's ephemeral range: ports handed out by
// listening on port 0 come from that range, where the processes' own
// outgoing connections (and other test binaries' port-0 listeners) may take
// them before the process they were picked for binds them.
type Ports struct {
	mu    sync.Mutex
	given map[int]bool
}

// Free returns n ports free right now.
func (ps *Ports) Free(t testing.TB, n int) []int {
	t.Helper()
	low := ephemeralLow()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.given == nil {
		ps.given = map[int]bool{}
	}
	var out []int
	for tries := 0; len(out) < n && tries < 10000; tries++ {
		p := 10000 + rand.IntN(low-10000)
		if ps.given[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ps.given[p] = true
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports", len(out))
	}
	return out
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				low = v
			}
		}
	}
	return low
}
