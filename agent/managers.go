package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// managers are the agent endpoints of the managers sharing one database:
// the configured ones, then those the last answer named. Calls go to the
// current one; when it does not answer, to the next ones in turn, and the
// first that answers becomes current.
type managers struct {
	mu         sync.Mutex
	configured []string
	list       []string
	cur        string
}

func newManagers(cfg wire.Config, learned []string) *managers {
	m := &managers{configured: cfg.ManagerURLs()}
	m.list = wire.MergeURLs(m.configured, httpsOnly(learned))
	if len(m.list) > 0 {
		m.cur = m.list[0]
	}
	return m
}

// learnedFile keeps the managers learned from answers (JSON list) in the
// data dir, so an agent that restarts while the configured managers are
// gone still finds the others.
const learnedFile = "managers.json"

// loadLearned reads the learned managers; none when the file is missing
// or unreadable (the configured ones still work).
func loadLearned(dataDir string) []string {
	b, err := os.ReadFile(filepath.Join(dataDir, learnedFile))
	if err != nil {
		return nil
	}
	var urls []string
	if json.Unmarshal(b, &urls) != nil {
		return nil
	}
	return urls
}

func httpsOnly(urls []string) []string {
	var ok []string
	for _, u := range urls {
		if strings.HasPrefix(u, "https://") && len(u) <= 512 {
			ok = append(ok, u)
		}
	}
	return ok
}

// order returns every URL, the current one first.
func (m *managers) order() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.list))
	i := 0
	for j, u := range m.list {
		if u == m.cur {
			i = j
		}
	}
	out = append(out, m.list[i:]...)
	return append(out, m.list[:i]...)
}

// use makes u current; it reports whether that is a change.
func (m *managers) use(u string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := m.cur != u
	m.cur = u
	return changed
}

// learn replaces the learned URLs by those of an answer (nil: no
// change); the configured ones and the current one stay. Only https
// URLs are taken. It returns the URLs new to the agent, and whether the
// list changed at all.
func (m *managers) learn(urls []string) (added []string, changed bool) {
	if urls == nil {
		return nil, false
	}
	ok := httpsOnly(urls)
	m.mu.Lock()
	defer m.mu.Unlock()
	next := wire.MergeURLs(wire.MergeURLs(m.configured, []string{m.cur}), ok)
	old := map[string]bool{}
	for _, u := range m.list {
		old[u] = true
	}
	for _, u := range next {
		if !old[u] {
			added = append(added, u)
		}
	}
	changed = !slices.Equal(next, m.list)
	m.list = next
	return added, changed
}

// learnFrom takes the managers an answer named and keeps them on disk
// when the list changed.
func (a *Agent) learnFrom(urls []string) {
	added, changed := a.managers.learn(urls)
	if len(added) > 0 {
		a.log.Info("learned of more managers to fail over to", "managers", added)
	}
	if !changed {
		return
	}
	b, _ := json.Marshal(httpsOnly(urls))
	if err := writeAtomic(filepath.Join(a.cfg.DataDir, learnedFile), b, 0o600); err != nil {
		a.log.Warn("cannot keep the managers' list for the next start", "error", err)
	}
}

// current is the manager calls go to first.
func (m *managers) current() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// errUnavailable marks an answer that sends the agent to the next
// manager: no connection, or the manager failing (5xx) rather than
// refusing.
var errUnavailable = errors.New("manager unavailable")

// post sends body to the current manager, else to the others in turn,
// and decodes the envelope's data into out. A refusal (4xx) is the
// answer of every manager (they share the database) and is returned
// without trying the others.
func (a *Agent) post(ctx context.Context, path string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	urls := a.managers.order()
	if len(urls) == 0 {
		return 0, errors.New("no manager URL is configured (serverURL): reinstall the agent from the manager")
	}
	var errs []error
	for _, u := range urls {
		status, err := a.postTo(ctx, u, path, b, out)
		if err == nil || !errors.Is(err, errUnavailable) {
			if err == nil && a.managers.use(u) {
				a.log.Warn("now reporting to another manager", "manager", u, "unavailable", errors.Join(errs...))
			}
			return status, err
		}
		if ctx.Err() != nil {
			return status, ctx.Err()
		}
		errs = append(errs, err)
	}
	return 0, errors.Join(errs...)
}

// postTo is one call to the manager at base.
func (a *Agent) postTo(ctx context.Context, base, path string, b []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.mgr.Load().Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env wire.Envelope[json.RawMessage]
	if err := json.Unmarshal(rb, &env); err != nil {
		if resp.StatusCode >= 500 {
			return resp.StatusCode, fmt.Errorf("%w: %s%s: HTTP %d: %.200s", errUnavailable, base, path, resp.StatusCode, rb)
		}
		return resp.StatusCode, fmt.Errorf("%s: HTTP %d: %.200s", path, resp.StatusCode, rb)
	}
	if resp.StatusCode >= 500 {
		return resp.StatusCode, fmt.Errorf("%w: %s%s: HTTP %d: %s", errUnavailable, base, path, resp.StatusCode, env.Msg)
	}
	if resp.StatusCode != http.StatusOK || env.Code != 0 {
		return resp.StatusCode, fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, env.Msg)
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}
