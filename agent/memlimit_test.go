package agent

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemLimitReserve(t *testing.T) {
	old := debug.SetMemoryLimit(16 << 20)
	defer debug.SetMemoryLimit(old)
	m := newMemLimit()
	r1 := m.reserve(56 << 20)
	r2 := m.reserve(8 << 20)
	if got := debug.SetMemoryLimit(-1); got != 80<<20 {
		t.Errorf("two reservations: limit %d, want %d", got, 80<<20)
	}
	r1()
	if got := debug.SetMemoryLimit(-1); got != 24<<20 {
		t.Errorf("one released: limit %d, want %d", got, 24<<20)
	}
	r2()
	if got := debug.SetMemoryLimit(-1); got != 16<<20 {
		t.Errorf("all released: limit %d, want %d", got, 16<<20)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	off := newMemLimit()
	off.reserve(56 << 20)()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("no limit: now %d", got)
	}
}
