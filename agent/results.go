package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
	hash   string // of the request that runs
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

// stored is what results/<requestId>.json holds: the result and the hash
// of the request that produced it (see requesthash.go).
type stored struct {
	wire.Line
	RequestHash string `json:"requestHash,omitempty"`
}

func (r *results) load(id string) (stored, bool) {
	var rec stored
	b, err := os.ReadFile(r.path(id))
	if err != nil || json.Unmarshal(b, &rec) != nil {
		return rec, false
	}
	return rec, true
}

// reusedError refuses a request whose id was used for a different one
// (HTTP 409).
func reusedError(id string, unhashed bool) error {
	if unhashed {
		return &httpError{http.StatusConflict, fmt.Sprintf("requestId %s was reused: its result was recorded without "+
			"a request hash (by an older agent), so this request cannot be matched to it; send it under a new requestId "+
			"(retrying the task does)", id)}
	}
	return &httpError{http.StatusConflict, fmt.Sprintf("requestId %s was reused for a different request: the id "+
		"belongs to the request that first used it; send new work under a new requestId", id)}
}

// once runs fn for id unless id has a recorded result or is running already,
// in which case it waits for and returns that result (replayed = true).
// hash identifies the request: an id recorded or running under another
// hash is refused with a 409 *httpError before open is called. A record
// without a hash (written by an agent older than hashes) is refused too:
// replaying it could answer a different request with a result that is not
// its own, whereas a refusal only fails the task, whose retry sends new ids
// and runs the work again (every action is safe to repeat).
//
// open, if not nil, is called once the request is accepted and returns the
// sink for output lines (nil for none). fn runs detached from ctx: a dropped
// caller does not stop it; the sink gets output while the caller is
// attached. record decides whether a result is kept (failures that are safe
// to repeat need not be).
func (r *results) once(ctx context.Context, id, hash string, open func() func(string), fn func(emit func(string)) wire.Line, record func(wire.Line) bool) (wire.Line, bool, error) {
	if open == nil {
		open = func() func(string) { return nil }
	}
	r.mu.Lock()
	if rec, ok := r.load(id); ok {
		r.mu.Unlock()
		if rec.RequestHash != hash {
			return wire.Line{}, false, reusedError(id, rec.RequestHash == "")
		}
		open()
		return rec.Line, true, nil
	}
	if f, ok := r.running[id]; ok {
		r.mu.Unlock()
		if f.hash != hash {
			return wire.Line{}, false, reusedError(id, false)
		}
		open()
		select {
		case <-f.done:
			return f.result, true, nil
		case <-ctx.Done():
			return wire.Line{}, false, ctx.Err()
		}
	}
	f := &inflight{hash: hash, done: make(chan struct{})}
	r.running[id] = f
	r.mu.Unlock()

	detach := f.attach(open())
	go func() {
		res := fn(f.emit)
		if record(res) {
			if b, err := json.Marshal(stored{Line: res, RequestHash: hash}); err == nil {
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
