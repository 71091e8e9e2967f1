package agent

import (
	"context"
	"crypto/sha256"
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
)

type cacheMeta struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
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

// fetch downloads req.URL into the cache (once per URL+checksum), then
// copies it to Dest or unpacks it there.
func (a *Agent) fetch(req wire.Download, emit func(string)) (wire.DownloadResult, error) {
	want := strings.ToLower(strings.TrimSpace(req.SHA256))
	k := sha256.Sum256([]byte(req.URL + "\x00" + want))
	key := hex.EncodeToString(k[:])
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
		meta, err = a.get(ctx, req, want, cacheFile, emit)
		if err != nil {
			return wire.DownloadResult{}, err
		}
	} else {
		emit(fmt.Sprintf("using cached %s (%d bytes, sha256 %s)\n", req.URL, meta.Bytes, meta.SHA256))
	}

	res := wire.DownloadResult{Path: req.Dest, SHA256: meta.SHA256, Bytes: meta.Bytes, Cached: cached}
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
			return res, fmt.Errorf("unpack %s: %w", req.URL, err)
		}
		return res, nil
	}
	if err := copyInto(cacheFile, req.Dest); err != nil {
		return res, fmt.Errorf("save %s to %s: %w", req.URL, req.Dest, err)
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

func (a *Agent) get(ctx context.Context, req wire.Download, want, cacheFile string, emit func(string)) (cacheMeta, error) {
	limit := a.downloadLimit(req)
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	defer client.CloseIdleConnections()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return cacheMeta{}, fmt.Errorf("download %s: %w", req.URL, err)
	}
	emit(fmt.Sprintf("downloading %s\n", req.URL))
	resp, err := client.Do(hreq)
	if err != nil {
		return cacheMeta{}, fmt.Errorf("download %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cacheMeta{}, fmt.Errorf("download %s: HTTP %s", req.URL, resp.Status)
	}
	if resp.ContentLength > limit {
		return cacheMeta{}, fmt.Errorf("download %s: %d bytes is more than the limit of %d", req.URL, resp.ContentLength, limit)
	}
	f, err := os.CreateTemp(filepath.Join(a.cfg.DataDir, "tmp"), "dl-*")
	if err != nil {
		return cacheMeta{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return cacheMeta{}, fmt.Errorf("download %s: %w", req.URL, err)
	}
	if n > limit {
		return cacheMeta{}, fmt.Errorf("download %s: more than the limit of %d bytes", req.URL, limit)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return cacheMeta{}, fmt.Errorf("download %s: SHA-256 is %s, expected %s", req.URL, got, want)
	}
	if err := f.Sync(); err != nil {
		return cacheMeta{}, err
	}
	if err := os.Rename(f.Name(), cacheFile); err != nil {
		return cacheMeta{}, err
	}
	meta := cacheMeta{URL: req.URL, SHA256: got, Bytes: n}
	b, _ := json.Marshal(meta)
	if err := writeAtomic(cacheFile+".json", b, 0o600); err != nil {
		return cacheMeta{}, err
	}
	emit(fmt.Sprintf("downloaded %d bytes, sha256 %s\n", n, got))
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
