package agent

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
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/agent/unpack"
	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/internal/redirect"
)

type cacheMeta struct {
	URL    string `json:"url"` // without its password
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512,omitempty"`
	Bytes  int64  `json:"bytes"`
}

// checksums are the sums a download must have (lower-case hex, "" when
// not asked for).
type checksums struct{ sha256, sha512 string }

func wantedSums(req wire.Download) checksums {
	norm := func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	return checksums{norm(req.SHA256), norm(req.SHA512)}
}

// check refuses checksums that are not hex of the right length.
func (c checksums) check() error {
	for _, s := range []struct {
		name, v string
		n       int
	}{{"sha256", c.sha256, sha256.Size}, {"sha512", c.sha512, sha512.Size}} {
		if s.v == "" {
			continue
		}
		if b, err := hex.DecodeString(s.v); err != nil || len(b) != s.n {
			return fmt.Errorf("%s must be %d hex digits", s.name, 2*s.n)
		}
	}
	return nil
}

// cacheKey names a download in the cache: its URL and the sums asked for
// (a download made without a sum is not one made with it). Without a
// SHA-512 the key is what agents before it computed.
func cacheKey(url string, want checksums) string {
	s := url + "\x00" + want.sha256
	if want.sha512 != "" {
		s += "\x00sha512:" + want.sha512
	}
	k := sha256.Sum256([]byte(s))
	return hex.EncodeToString(k[:])
}

// cacheLock serializes work on one cache entry, so FE and BE on one host
// asking for the same package download it once.
func (a *Agent) cacheLock(key string) *sync.Mutex {
	a.dlMu.Lock()
	defer a.dlMu.Unlock()
	m, ok := a.dlLocks[key]
	if !ok {
		m = &sync.Mutex{}
		a.dlLocks[key] = m
	}
	return m
}

// fetch downloads req.URL into the cache (once per URL+checksums), then
// copies it to Dest or unpacks it there. Its messages name the URL
// without its password.
func (a *Agent) fetch(req wire.Download, emit func(string)) (wire.DownloadResult, error) {
	want := wantedSums(req)
	key := cacheKey(req.URL, want)
	shown := redact.String(req.URL)
	cacheFile := filepath.Join(a.cfg.DataDir, "cache", key)
	timeout := time.Duration(req.TimeoutSeconds * float64(time.Second))
	if timeout <= 0 {
		timeout = time.Hour
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// Held through the unpack as well: FE, BE and broker on one host unpack
	// the same package into the same folder, and an unpack must not swap
	// out a tree that another task is copying its role from.
	l := a.cacheLock(key)
	l.Lock()
	defer l.Unlock()
	meta, cached := readMeta(cacheFile + ".json")
	if !cached {
		var err error
		if req.ViaManager {
			meta, err = a.getFromManager(ctx, req, want, cacheFile, emit)
		} else {
			meta, err = a.get(ctx, req, want, cacheFile, emit)
		}
		if err != nil {
			return wire.DownloadResult{}, err
		}
	} else {
		emit(fmt.Sprintf("using cached %s (%d bytes, sha256 %s)\n", shown, meta.Bytes, meta.SHA256))
	}

	res := wire.DownloadResult{Path: req.Dest, SHA256: meta.SHA256, SHA512: meta.SHA512, Bytes: meta.Bytes, Cached: cached}
	if req.Unpack {
		if b, err := os.ReadFile(filepath.Join(req.Dest, unpackMarker)); err == nil && strings.TrimSpace(string(b)) == meta.SHA256 {
			emit(fmt.Sprintf("already unpacked in %s\n", req.Dest))
			return res, nil
		}
		emit(fmt.Sprintf("unpacking into %s\n", req.Dest))
		release := a.mem.forArchive(cacheFile)
		err := unpackInto(ctx, cacheFile, req.Dest, meta.SHA256, unpack.LimitsFor(a.downloadLimit(req)))
		release()
		// An unpack leaves the heap grown (an xz dictionary is 8 MiB or
		// more, and the decoder makes ~1.3 bytes of garbage per byte out).
		// On an idle agent no GC would run to give that back for minutes:
		// return it now, a full GC that takes milliseconds.
		debug.FreeOSMemory()
		if err != nil {
			return res, fmt.Errorf("unpack %s: %w", shown, err)
		}
		return res, nil
	}
	if err := copyInto(cacheFile, req.Dest); err != nil {
		return res, fmt.Errorf("save %s to %s: %w", shown, req.Dest, err)
	}
	return res, nil
}

func readMeta(path string) (cacheMeta, bool) {
	var m cacheMeta
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	if _, err := os.Stat(strings.TrimSuffix(path, ".json")); err != nil {
		return m, false
	}
	return m, true
}

// downloadLimit is the most bytes req may download: the agent's limit, or
// the request's when that is smaller.
func (a *Agent) downloadLimit(req wire.Download) int64 {
	limit := a.cfg.MaxDownloadBytes
	if req.MaxBytes > 0 {
		limit = min(limit, req.MaxBytes)
	}
	return limit
}

// get downloads req.URL into cacheFile, checking its size and sums.
// Redirects follow the rule of internal/redirect (to https, or on the
// URL's own scheme and host).
func (a *Agent) get(ctx context.Context, req wire.Download, want checksums, cacheFile string, emit func(string)) (cacheMeta, error) {
	limit := a.downloadLimit(req)
	shown := redact.String(req.URL)
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}, CheckRedirect: redirect.Check}
	defer client.CloseIdleConnections()
	fail := func(err error) (cacheMeta, error) {
		// net/http quotes a redirect's target as it is.
		return cacheMeta{}, fmt.Errorf("download %s: %s", shown, redact.String(err.Error()))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return fail(err)
	}
	emit(fmt.Sprintf("downloading %s\n", shown))
	resp, err := client.Do(hreq)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cacheMeta{}, fmt.Errorf("download %s: HTTP %s", shown, resp.Status)
	}
	if resp.ContentLength > limit {
		return cacheMeta{}, fmt.Errorf("download %s: %d bytes is more than the limit of %d", shown, resp.ContentLength, limit)
	}
	f, err := os.CreateTemp(filepath.Join(a.cfg.DataDir, "tmp"), "dl-*")
	if err != nil {
		return cacheMeta{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h256, h512 := sha256.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(f, h256, h512), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail(err)
	}
	if n > limit {
		return cacheMeta{}, fmt.Errorf("download %s: more than the limit of %d bytes", shown, limit)
	}
	got := checksums{hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h512.Sum(nil))}
	if want.sha512 != "" && got.sha512 != want.sha512 {
		return cacheMeta{}, fmt.Errorf("download %s: SHA-512 is %s, expected %s", shown, got.sha512, want.sha512)
	}
	if want.sha256 != "" && got.sha256 != want.sha256 {
		return cacheMeta{}, fmt.Errorf("download %s: SHA-256 is %s, expected %s", shown, got.sha256, want.sha256)
	}
	if err := f.Sync(); err != nil {
		return cacheMeta{}, err
	}
	if err := os.Rename(f.Name(), cacheFile); err != nil {
		return cacheMeta{}, err
	}
	meta := cacheMeta{URL: shown, SHA256: got.sha256, SHA512: got.sha512, Bytes: n}
	b, _ := json.Marshal(meta)
	if err := writeAtomic(cacheFile+".json", b, 0o600); err != nil {
		return cacheMeta{}, err
	}
	verified := "not checked: no checksum given"
	switch {
	case want.sha512 != "" && want.sha256 != "":
		verified = "SHA-512 and SHA-256 match"
	case want.sha512 != "":
		verified = "SHA-512 matches"
	case want.sha256 != "":
		verified = "SHA-256 matches"
	}
	emit(fmt.Sprintf("downloaded %d bytes, sha256 %s (%s)\n", n, got.sha256, verified))
	return meta, nil
}

// unpackMarker, at the top of an unpacked tree, holds the SHA-256 of the
// archive it came from; a later unpack of the same archive into the same
// place keeps that tree instead of replacing it.
const unpackMarker = ".doris-agent-unpacked"

// unpackInto extracts src into a temp dir beside dest, marks it with the
// archive's checksum, then swaps it in. An archive refused halfway (or over
// lim) leaves nothing: the temp dir is removed.
func unpackInto(ctx context.Context, src, dest, sum string, lim unpack.Limits) error {
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unpack.Extract(ctx, f, tmp, lim); err != nil {
		return err
	}
	// O_EXCL: an archive entry of the marker's name (a link, say) is
	// never written through.
	m, err := os.OpenFile(filepath.Join(tmp, unpackMarker), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("mark the unpacked tree: %w", err)
	}
	_, err = m.WriteString(sum + "\n")
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mark the unpacked tree: %w", err)
	}
	return swapIn(tmp, dest)
}

// swapIn renames tmp to dest, moving an existing dest aside first.
func swapIn(tmp, dest string) error {
	if _, err := os.Lstat(dest); err == nil {
		old := fmt.Sprintf("%s.old-%d", dest, time.Now().UnixNano())
		if err := os.Rename(dest, old); err != nil {
			return err
		}
		defer os.RemoveAll(old)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, dest)
}

func copyInto(src, dest string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(0o644); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), dest)
}
