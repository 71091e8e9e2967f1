package agent

import (
	"math"
	"os"
	"runtime/debug"
	"sync"

	"github.com/dorismanager/dorismanager/agent/unpack"
)

// limitCoversDict is the xz dictionary the agent's soft memory limit is
// sized for (cmd/doris-agent): xz's default, -6.
const limitCoversDict = 8 << 20

// memLimit raises the runtime's soft memory limit, while unpacks run, by
// the size of their xz dictionaries when larger than limitCoversDict. Below its live
// heap a limit makes the GC run without pause (a 64 MiB dictionary, xz
// -9, under a 16 MiB limit took 3x the CPU); above it, the limit still
// keeps the decoder's garbage from doubling the heap.
type memLimit struct {
	mu    sync.Mutex
	base  int64 // the limit set at start; MaxInt64 when there is none
	extra int64
}

func newMemLimit() *memLimit { return &memLimit{base: debug.SetMemoryLimit(-1)} }

// forArchive reserves room for unpacking the archive at path and returns
// the release.
func (m *memLimit) forArchive(path string) func() {
	f, err := os.Open(path)
	if err != nil {
		return func() {}
	}
	dict, ok := unpack.XZDictionary(f)
	f.Close()
	if !ok || dict <= limitCoversDict {
		return func() {}
	}
	// The whole dictionary, not the difference: the default limit's
	// headroom over an 8 MiB one is thin, and near the limit the runtime
	// also scavenges and refaults pages (twice the CPU at -9 with the
	// difference alone).
	return m.reserve(dict)
}

func (m *memLimit) reserve(n int64) func() {
	if m.base == math.MaxInt64 {
		return func() {}
	}
	m.set(n)
	return func() { m.set(-n) }
}

func (m *memLimit) set(delta int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.extra += delta
	debug.SetMemoryLimit(m.base + m.extra)
}
