// Package pkgrelay is the manager's package relay: it fetches a cluster's
// package from its packageUrl once, checks it, keeps it under
// <data-dir>/packages/ and serves it to the agents of the hosts whose
// tasks install it, over the agent endpoint (mutual TLS). A 100-host
// install pulls packageUrl once per manager, not once per host.
package pkgrelay

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/internal/redirect"
)

// Defaults of Config.
const (
	// DefaultMaxBytes is the largest package fetched (the agents' default
	// download limit).
	DefaultMaxBytes = 8 << 30
	// DefaultCacheBytes is how much the kept packages may take together;
	// past it the least recently used go.
	DefaultCacheBytes = 16 << 30
	// DefaultTimeout bounds one fetch from packageUrl.
	DefaultTimeout = time.Hour
)

// Config configures a Relay.
type Config struct {
	// Dir holds the packages (<data-dir>/packages), created 0700.
	Dir   string
	Store *store.Store
	// MaxBytes, CacheBytes, Timeout: the defaults above when 0.
	MaxBytes   int64
	CacheBytes int64
	Timeout    time.Duration
	Logger     hclog.Logger
	Metrics    *metrics.Registry // nil: no metric
	// Client fetches packageUrl; nil for one with the redirect rule and
	// the agents' connect and header timeouts.
	Client *http.Client
	// Secrets opens the sealed password of a package URL stored in a
	// task's input (core/secret.Box), for Handler's fetches.
	Secrets secret.Opener
}

// Sums are the checksums a package must have (lower-case hex, "" when
// unknown).
type Sums struct{ SHA256, SHA512 string }

// Entry is a package the relay keeps.
type Entry struct {
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
	Size   int64  `json:"size"`
	URL    string `json:"url"` // without its password
	// Fetched is true when this call pulled it from packageUrl (not kept).
	Fetched bool `json:"-"`
}

// Relay fetches packages once and serves them to agents.
type Relay struct {
	cfg      Config
	log      hclog.Logger
	upstream *metrics.Counter

	mu      sync.Mutex
	entries map[string]*kept   // by SHA-256
	learned map[string]string  // unverified URL+process -> SHA-256 of what was fetched
	flights map[string]*flight // fetches under way, by flightKey
}

type kept struct {
	Entry
	lastUse time.Time
	inUse   int // answers being served from its file
}

type flight struct {
	done  chan struct{}
	entry Entry
	err   error
}

// New opens the relay's folder and reads the packages kept there.
func New(cfg Config) (*Relay, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}, CheckRedirect: redirect.Check}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("package relay folder: %w", err)
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, entries: map[string]*kept{}, learned: map[string]string{}, flights: map[string]*flight{}}
	if cfg.Metrics != nil {
		r.upstream = cfg.Metrics.Counter("dorismanager_package_upstream_bytes_total",
			"Bytes the package relay pulled from package URLs (packageUrl), checked or not.")
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the records of the packages kept from an earlier run; a
// package without its record (a fetch cut off) is removed.
func (r *Relay) load() error {
	des, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return fmt.Errorf("package relay folder: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, "fetch-") {
			_ = os.Remove(filepath.Join(r.cfg.Dir, name))
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		var e Entry
		b, err := os.ReadFile(filepath.Join(r.cfg.Dir, name))
		if err != nil || json.Unmarshal(b, &e) != nil || e.SHA256+".json" != name {
			continue
		}
		fi, err := os.Stat(r.path(e.SHA256))
		if err != nil || fi.Size() != e.Size {
			continue
		}
		r.entries[e.SHA256] = &kept{Entry: e, lastUse: fi.ModTime()}
	}
	return nil
}

func (r *Relay) path(sum string) string { return filepath.Join(r.cfg.Dir, sum) }

// Fetch returns the package at url with sums want, pulling it from url
// unless it is kept. Calls for the same package share one fetch. With no
// sum known the SHA-256 of what was fetched becomes the package's (for
// the process of taskID: another install fetches again); taskID's process
// is charged the bytes pulled.
func (r *Relay) Fetch(ctx context.Context, url string, want Sums, taskID int64) (Entry, error) {
	want = Sums{norm(want.SHA256), norm(want.SHA512)}
	if err := want.check(); err != nil {
		return Entry{}, err
	}
	t, err := r.cfg.Store.GetTask(ctx, taskID)
	if err != nil {
		return Entry{}, fmt.Errorf("task %d: %w", taskID, err)
	}
	unverifiedKey := ""
	if want.SHA256 == "" && want.SHA512 == "" {
		unverifiedKey = url + "\x00" + strconv.FormatInt(t.ProcessID, 10)
	}
	key := url + "\x00" + want.SHA256 + "\x00" + want.SHA512 + "\x00" + unverifiedKey
	r.mu.Lock()
	if e, ok := r.lookupLocked(want, unverifiedKey); ok {
		r.mu.Unlock()
		return e, nil
	}
	f, running := r.flights[key]
	if !running {
		f = &flight{done: make(chan struct{})}
		r.flights[key] = f
	}
	r.mu.Unlock()
	if !running {
		// The fetch outlives a caller that gives up: the others (and the
		// next try) still want it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
		go func() {
			defer cancel()
			e, err := r.fetch(fctx, url, want, t.ProcessID)
			r.mu.Lock()
			if err == nil {
				if unverifiedKey != "" {
					r.learned[unverifiedKey] = e.SHA256
				}
				r.evictLocked(e.SHA256)
			}
			delete(r.flights, key)
			f.entry, f.err = e, err
			r.mu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	case <-f.done:
	}
	if f.err != nil {
		return Entry{}, f.err
	}
	e := f.entry
	e.Fetched = !running
	return e, nil
}

// lookupLocked finds a kept package with the sums wanted (or the one
// learned for an unverified URL and process), marking it used.
func (r *Relay) lookupLocked(want Sums, unverifiedKey string) (Entry, bool) {
	var k *kept
	switch {
	case want.SHA256 != "":
		k = r.entries[want.SHA256]
		if k != nil && want.SHA512 != "" && k.SHA512 != want.SHA512 {
			k = nil
		}
	case want.SHA512 != "":
		for _, e := range r.entries {
			if e.SHA512 == want.SHA512 {
				k = e
				break
			}
		}
	default:
		k = r.entries[r.learned[unverifiedKey]]
	}
	if k == nil {
		return Entry{}, false
	}
	k.lastUse = time.Now()
	return k.Entry, true
}

// ErrBadPackage marks a fetch whose package failed a check (its size or
// its sums): a host fetching it itself would get the same bytes. Any other
// failure (the manager cannot reach packageUrl, or keep the package) is
// the manager's own, and the host may still fetch the package itself.
var ErrBadPackage = errors.New("the package failed a check")

// badPackage is a fetch error that is ErrBadPackage, saying only itself.
type badPackage struct{ error }

func (badPackage) Is(target error) bool { return target == ErrBadPackage }

// fetch pulls url into the folder, checking size and sums; a package that
// fails a check is not kept. The bytes pulled are counted whatever the end.
func (r *Relay) fetch(ctx context.Context, url string, want Sums, processID int64) (Entry, error) {
	shown := redact.String(url)
	fail := func(err error) (Entry, error) {
		// net/http quotes a redirect's target as it is.
		return Entry{}, fmt.Errorf("the manager's fetch of %s: %s", shown, redact.String(err.Error()))
	}
	bad := func(err error) (Entry, error) {
		_, err = fail(err)
		return Entry{}, badPackage{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(err)
	}
	r.log.Info("fetching a package for the hosts", "url", shown, "process", processID)
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("HTTP %s", resp.Status))
	}
	limit := r.cfg.MaxBytes
	if resp.ContentLength > limit {
		return bad(fmt.Errorf("%d bytes is more than the limit of %d", resp.ContentLength, limit))
	}
	tmp, err := os.CreateTemp(r.cfg.Dir, "fetch-*")
	if err != nil {
		return Entry{}, fmt.Errorf("package relay: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h256, h512 := sha256.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(tmp, h256, h512), io.LimitReader(resp.Body, limit+1))
	r.count(ctx, processID, n)
	if err != nil {
		return fail(err)
	}
	if n > limit {
		return bad(fmt.Errorf("more than the limit of %d bytes", limit))
	}
	e := Entry{SHA256: hex.EncodeToString(h256.Sum(nil)), SHA512: hex.EncodeToString(h512.Sum(nil)), Size: n, URL: shown}
	if want.SHA512 != "" && e.SHA512 != want.SHA512 {
		return bad(fmt.Errorf("SHA-512 is %s, expected %s", e.SHA512, want.SHA512))
	}
	if want.SHA256 != "" && e.SHA256 != want.SHA256 {
		return bad(fmt.Errorf("SHA-256 is %s, expected %s", e.SHA256, want.SHA256))
	}
	if err := tmp.Sync(); err != nil {
		return Entry{}, fmt.Errorf("package relay: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Entry{}, fmt.Errorf("package relay: %w", err)
	}
	if err := os.Rename(tmp.Name(), r.path(e.SHA256)); err != nil {
		return Entry{}, fmt.Errorf("package relay: %w", err)
	}
	b, _ := json.Marshal(e)
	if err := writeFile(r.path(e.SHA256)+".json", b); err != nil {
		return Entry{}, fmt.Errorf("package relay: %w", err)
	}
	r.mu.Lock()
	r.entries[e.SHA256] = &kept{Entry: e, lastUse: time.Now()}
	r.mu.Unlock()
	r.log.Info("fetched a package for the hosts", "url", shown, "bytes", n, "sha256", e.SHA256)
	return e, nil
}

// count charges n bytes pulled from a package URL to the process and the metric.
func (r *Relay) count(ctx context.Context, processID, n int64) {
	if n == 0 {
		return
	}
	if r.upstream != nil {
		r.upstream.Add(float64(n))
	}
	if err := r.cfg.Store.AddUpstreamBytes(ctx, processID, n); err != nil {
		r.log.Warn("could not record the bytes pulled for a process", "process", processID, "bytes", n, "error", err)
	}
}

// evictLocked removes the least recently used packages until the kept
// ones fit CacheBytes; keep (just fetched) and packages being served stay.
// A package removed while an agent reads it stays readable to that reader.
func (r *Relay) evictLocked(keep string) {
	var total int64
	all := make([]*kept, 0, len(r.entries))
	for _, e := range r.entries {
		total += e.Size
		all = append(all, e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].lastUse.Before(all[j].lastUse) })
	for _, e := range all {
		if total <= r.cfg.CacheBytes {
			return
		}
		if e.SHA256 == keep || e.inUse > 0 {
			continue
		}
		_ = os.Remove(r.path(e.SHA256) + ".json")
		_ = os.Remove(r.path(e.SHA256))
		delete(r.entries, e.SHA256)
		total -= e.Size
		r.log.Info("removed a kept package (cache size limit)", "url", e.URL, "bytes", e.Size)
	}
}

// open returns the kept package sum for reading, counted as in use until
// done is called.
func (r *Relay) open(sum string) (*os.File, Entry, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.entries[sum]
	if k == nil {
		return nil, Entry{}, nil, errors.New("not kept")
	}
	f, err := os.Open(r.path(sum))
	if err != nil {
		return nil, Entry{}, nil, err
	}
	k.inUse++
	k.lastUse = time.Now()
	return f, k.Entry, func() {
		f.Close()
		r.mu.Lock()
		k.inUse--
		r.mu.Unlock()
	}, nil
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (s Sums) check() error {
	for _, c := range []struct {
		name, v string
		n       int
	}{{"sha256", s.SHA256, sha256.Size}, {"sha512", s.SHA512, sha512.Size}} {
		if c.v == "" {
			continue
		}
		if b, err := hex.DecodeString(c.v); err != nil || len(b) != c.n {
			return fmt.Errorf("%s must be %d hex digits", c.name, 2*c.n)
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
