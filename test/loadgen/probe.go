package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Prober calls read endpoints of the REST API at a steady rate, one
// request per tick in its own goroutine (a slow answer does not delay the
// next request), round robin over Paths.
type Prober struct {
	BaseURL string // http(s)://host:port of the API
	Token   string
	Paths   []string
	Every   time.Duration // between two requests
	Client  *http.Client
	// Accept tells which statuses of a path count as answers; nil: 200.
	Accept func(path string, status int) bool

	All    Recorder
	mu     sync.Mutex
	byPath map[string]*Recorder
	Errors atomic.Int64
	errMu  sync.Mutex
	last   string // last error, for the report
}

// Run probes until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	if p.Client == nil {
		p.Client = &http.Client{Timeout: 10 * time.Second}
	}
	p.mu.Lock()
	if p.byPath == nil {
		p.byPath = map[string]*Recorder{}
		for _, path := range p.Paths {
			p.byPath[path] = &Recorder{}
		}
	}
	p.mu.Unlock()
	t := time.NewTicker(p.Every)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		path := p.Paths[i%len(p.Paths)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.one(ctx, path)
		}()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Prober) one(ctx context.Context, path string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.BaseURL, "/")+path, nil)
	if err != nil {
		p.fail(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	start := time.Now()
	resp, err := p.Client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ok := resp.StatusCode == http.StatusOK
		if p.Accept != nil {
			ok = p.Accept(path, resp.StatusCode)
		}
		if err == nil && !ok {
			err = fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.fail(err)
		return
	}
	d := time.Since(start)
	p.All.Add(d)
	p.mu.Lock()
	r := p.byPath[path]
	p.mu.Unlock()
	r.Add(d)
}

func (p *Prober) fail(err error) {
	p.Errors.Add(1)
	p.errMu.Lock()
	p.last = err.Error()
	p.errMu.Unlock()
}

// LastError is the last failed request's error, "" when none failed.
func (p *Prober) LastError() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.last
}

// Reset starts a new measurement window.
func (p *Prober) Reset() {
	p.All.Reset()
	p.mu.Lock()
	for _, r := range p.byPath {
		r.Reset()
	}
	p.mu.Unlock()
	p.Errors.Store(0)
}

// ByPath is the window's summary of each path.
func (p *Prober) ByPath() map[string]Summary {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Summary{}
	for k, r := range p.byPath {
		out[k] = r.Summary()
	}
	return out
}
