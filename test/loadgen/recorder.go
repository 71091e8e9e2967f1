package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Recorder keeps latencies for percentiles. Reset starts a new window.
type Recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one latency.
func (r *Recorder) Add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.d = nil
	r.mu.Unlock()
}

// Summary is a window's count and percentiles.
type Summary struct {
	N             int
	P50, P99, Max time.Duration
}

// Summary sorts a copy of the window.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	d := slices.Clone(r.d)
	r.mu.Unlock()
	return Summarize(d)
}

// Summarize gives the nearest-rank percentiles of d (sorted in place).
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return Summary{N: len(d), P50: rank(0.50), P99: rank(0.99), Max: d[len(d)-1]}
}
