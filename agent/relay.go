package agent

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/internal/redact"
)

// relayAttempts bounds how often one download from the manager resumes a
// transfer that broke off.
const relayAttempts = 5

// errFatal marks a relay answer that resuming cannot change (a refusal).
type errFatal struct{ error }

// getFromManager fetches req's package from the manager's relay
// (wire.PackagesPath) with the agent's certificate, checked against the
// same sums as a direct download. The bytes received so far are kept in
// cache/<key>.part: a transfer that breaks off resumes there (Range),
// within this call and in a later one.
func (a *Agent) getFromManager(ctx context.Context, req wire.Download, want checksums, cacheFile string, emit func(string)) (cacheMeta, error) {
	shown := redact.String(req.URL)
	if want.sha256 == "" {
		return cacheMeta{}, fmt.Errorf("download %s from the manager: the request names no sha256", shown)
	}
	limit := a.downloadLimit(req)
	// The manager this agent reports to now (after a failover, not the
	// one it was installed by): every manager serves the relay.
	base := a.managers.current()
	if base == "" {
		base = a.cfg.ServerURL
	}
	u := strings.TrimRight(base, "/") + wire.PackagesPath + want.sha256 + "?task=" + url.QueryEscape(req.TaskID)
	part := cacheFile + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return cacheMeta{}, err
	}
	defer f.Close()
	h256, h512 := sha256.New(), sha512.New()
	have, err := io.Copy(io.MultiWriter(h256, h512), f)
	if err != nil {
		return cacheMeta{}, fmt.Errorf("read the part of %s received before: %w", shown, err)
	}
	start := have
	// The manager client's overall timeout is for small calls; a package
	// is bounded by ctx.
	client := &http.Client{Transport: a.mgr.Load().Transport}
	emit(fmt.Sprintf("downloading %s from the manager\n", shown))
	if have > 0 {
		emit(fmt.Sprintf("resuming after the %d bytes received before\n", have))
	}
	for attempt := 1; ; attempt++ {
		err = a.relayOnce(ctx, client, u, f, &have, limit, h256, h512)
		if err == nil {
			break
		}
		var fatal errFatal
		if errors.As(err, &fatal) || attempt == relayAttempts || ctx.Err() != nil {
			return cacheMeta{}, fmt.Errorf("download %s from the manager: %w", shown, err)
		}
		emit(fmt.Sprintf("the transfer broke off after %d bytes (%v); resuming\n", have, err))
		select {
		case <-ctx.Done():
			return cacheMeta{}, fmt.Errorf("download %s from the manager: %w", shown, ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	got := checksums{hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h512.Sum(nil))}
	bad := func(name, got, wanted string) (cacheMeta, error) {
		// A part that does not add up is no base to resume from.
		_ = os.Remove(part)
		return cacheMeta{}, fmt.Errorf("download %s from the manager: %s is %s, expected %s", shown, name, got, wanted)
	}
	if want.sha512 != "" && got.sha512 != want.sha512 {
		return bad("SHA-512", got.sha512, want.sha512)
	}
	if got.sha256 != want.sha256 {
		return bad("SHA-256", got.sha256, want.sha256)
	}
	if err := f.Sync(); err != nil {
		return cacheMeta{}, err
	}
	if err := os.Rename(part, cacheFile); err != nil {
		return cacheMeta{}, err
	}
	meta := cacheMeta{URL: shown, SHA256: got.sha256, SHA512: got.sha512, Bytes: have}
	b, _ := json.Marshal(meta)
	if err := writeAtomic(cacheFile+".json", b, 0o600); err != nil {
		return cacheMeta{}, err
	}
	verified := "SHA-256 matches the manager's"
	if want.sha512 != "" {
		verified = "SHA-512 matches, and the SHA-256 the manager's"
	}
	emit(fmt.Sprintf("received %d bytes from the manager (%d of them before), sha256 %s (%s)\n", have, start, got.sha256, verified))
	return meta, nil
}

// relayOnce asks the relay for the package from byte *have on and appends
// what comes to f and the hashes. A 200 answer (no range) or a 416 (the
// part is longer than the package) starts over from byte 0.
func (a *Agent) relayOnce(ctx context.Context, client *http.Client, u string, f *os.File, have *int64, limit int64, hs ...hash.Hash) error {
	restart := func() error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		for _, h := range hs {
			h.Reset()
		}
		*have = 0
		return nil
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return errFatal{err}
	}
	if *have > 0 {
		hreq.Header.Set("Range", fmt.Sprintf("bytes=%d-", *have))
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if err := restart(); err != nil {
			return errFatal{err}
		}
	case http.StatusPartialContent:
		var from int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &from); err != nil || from != *have {
			return errFatal{fmt.Errorf("asked for bytes from %d, got Content-Range %q", *have, resp.Header.Get("Content-Range"))}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := restart(); err != nil {
			return errFatal{err}
		}
		return errors.New("the part received before is longer than the package: starting over")
	default:
		var env wire.Envelope[json.RawMessage]
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &env) == nil && env.Msg != "" {
			msg = env.Msg
		}
		err := fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, msg)
		if resp.StatusCode >= 500 {
			return err // the manager's own fetch may work on a later try
		}
		return errFatal{err}
	}
	if resp.ContentLength >= 0 && *have+resp.ContentLength > limit {
		return errFatal{fmt.Errorf("%d bytes is more than the limit of %d", *have+resp.ContentLength, limit)}
	}
	w := []io.Writer{f}
	for _, h := range hs {
		w = append(w, h)
	}
	n, err := io.Copy(io.MultiWriter(w...), io.LimitReader(resp.Body, limit-*have+1))
	*have += n
	if *have > limit {
		return errFatal{fmt.Errorf("more than the limit of %d bytes", limit)}
	}
	return err
}
