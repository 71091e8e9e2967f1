package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// results records the outcome of each requestId on disk and keeps track of
// requests still running, so a re-sent request neither runs twice nor races.
type results struct {
	dir     string
	mu      sync.Mutex
	running map[string]*inflight
}

type inflight struct {
	done   chan struct{}
	result wire.Line
	mu     sync.Mutex
	sink   func(string) // the current listener for output, if any
}

func (f *inflight) emit(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sink != nil {
		f.sink(s)
	}
}

func (f *inflight) attach(sink func(string)) func() {
	f.mu.Lock()
	f.sink = sink
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.sink = nil
		f.mu.Unlock()
	}
}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func validRequestID(id string) error {
	if !requestIDRe.MatchString(id) || id == "." || id == ".." {
		return errors.New("requestId must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
	}
	return nil
}

func (r *results) path(id string) string { return filepath.Join(r.dir, id+".json") }

func (r *results) load(id string) (wire.Line, bool) {
	var l wire.Line
	b, err := os.ReadFile(r.path(id))
	if err != nil || json.Unmarshal(b, &l) != nil {
		return l, false
	}
	return l, true
}

// once runs fn for id unless id has a recorded result or is running already,
// in which case it waits for and returns that result (replayed = true).
// fn runs detached from ctx: a dropped caller does not stop it. sink gets
// output lines while the caller is attached. record decides whether a
// result is kept (failures that are safe to repeat need not be).
func (r *results) once(ctx context.Context, id string, sink func(string), fn func(emit func(string)) wire.Line, record func(wire.Line) bool) (wire.Line, bool, error) {
	r.mu.Lock()
	if l, ok := r.load(id); ok {
		r.mu.Unlock()
		return l, true, nil
	}
	if f, ok := r.running[id]; ok {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.result, true, nil
		case <-ctx.Done():
			return wire.Line{}, false, ctx.Err()
		}
	}
	f := &inflight{done: make(chan struct{})}
	r.running[id] = f
	r.mu.Unlock()

	detach := f.attach(sink)
	go func() {
		res := fn(f.emit)
		if record(res) {
			if b, err := json.Marshal(res); err == nil {
				_ = writeAtomic(r.path(id), b, 0o600)
			}
		}
		r.mu.Lock()
		f.result = res
		delete(r.running, id)
		r.mu.Unlock()
		close(f.done)
	}()
	defer detach()
	select {
	case <-f.done:
		return f.result, false, nil
	case <-ctx.Done():
		return wire.Line{}, false, ctx.Err()
	}
}

// resultTTL is how long a recorded result answers a re-sent request. A
// manager re-sends within minutes (dropped connection) or after its own
// restart; a week covers both with room, and keeps the folder bounded.
const resultTTL = 7 * 24 * time.Hour

// prune removes records older than maxAge and returns how many it removed.
func (r *results) prune(now time.Time, maxAge time.Duration) int {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || e.IsDir() || now.Sub(info.ModTime()) < maxAge {
			continue
		}
		if os.Remove(filepath.Join(r.dir, e.Name())) == nil {
			n++
		}
	}
	return n
}

// housekeep prunes old records at start and then daily, until ctx ends.
func (r *results) housekeep(ctx context.Context, log func(removed int)) {
	for {
		if n := r.prune(time.Now(), resultTTL); n > 0 {
			log(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}
