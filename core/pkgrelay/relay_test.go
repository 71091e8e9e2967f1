package pkgrelay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
)

// upstream is a package server that counts GETs and bytes sent; hold, if
// set, keeps every answer back until it is closed.
type upstream struct {
	*httptest.Server
	body  []byte
	gets  atomic.Int64
	bytes atomic.Int64
	hold  chan struct{}
}

func newUpstream(t *testing.T, body []byte) *upstream {
	u := &upstream{body: body}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.gets.Add(1)
		if u.hold != nil {
			<-u.hold
		}
		n, _ := w.Write(u.body)
		u.bytes.Add(int64(n))
	}))
	t.Cleanup(u.Close)
	return u
}

func sums(b []byte) Sums {
	a, c := sha256.Sum256(b), sha512.Sum512(b)
	return Sums{hex.EncodeToString(a[:]), hex.EncodeToString(c[:])}
}

type fixture struct {
	st      *store.Store
	relay   *Relay
	reg     *metrics.Registry
	dir     string
	process int64
}

func newFixture(t *testing.T, cacheBytes int64) *fixture {
	t.Helper()
	st, err := store.Open("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, reg: metrics.NewRegistry(), dir: filepath.Join(t.TempDir(), "packages")}
	f.relay, err = New(Config{Dir: f.dir, Store: st, CacheBytes: cacheBytes, Metrics: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	f.process = f.newProcess(t)
	return f
}

func (f *fixture) newProcess(t *testing.T) int64 {
	t.Helper()
	p := store.Process{ClusterID: 1, Status: store.ProcessSuccess, Finish: true} // finished: any number of them
	if err := f.st.CreateProcess(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// task records a task of process on host of cluster 1 installing url.
func (f *fixture) task(t *testing.T, process int64, host, status, url string, s Sums) int64 {
	t.Helper()
	in, _ := json.Marshal(packageInput{ClusterID: 1, Host: host, PackageURL: url, PackageSHA256: s.SHA256, PackageSHA512: s.SHA512})
	ts := []store.Task{{ProcessID: process, Host: host, TaskType: "INSTALL_BE", Status: status, Input: string(in)}}
	if err := f.st.CreateTasks(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	var all []store.Task
	all, err := f.st.TasksOfStep(context.Background(), process, 0)
	if err != nil {
		t.Fatal(err)
	}
	return all[len(all)-1].ID
}

func (f *fixture) upstreamBytes(t *testing.T, process int64) int64 {
	t.Helper()
	p, err := f.st.GetProcess(context.Background(), process)
	if err != nil {
		t.Fatal(err)
	}
	return p.PackageUpstreamBytes
}

func (f *fixture) metric(t *testing.T) float64 {
	t.Helper()
	var b bytes.Buffer
	if err := f.reg.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	m, err := metricstest.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	return metricstest.Sum(m, "dorismanager_package_upstream_bytes_total")
}

func TestConcurrentFetchesShareOneDownload(t *testing.T) {
	body := bytes.Repeat([]byte("doris"), 200_000)
	up := newUpstream(t, body)
	up.hold = make(chan struct{})
	f := newFixture(t, 0)
	id := f.task(t, f.process, "h1", store.StatusRunning, up.URL+"/doris.tar.gz", sums(body))
	const n = 8
	var wg sync.WaitGroup
	entries := make([]Entry, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries[i], errs[i] = f.relay.Fetch(context.Background(), up.URL+"/doris.tar.gz", sums(body), id)
		}()
	}
	// Wait until the first GET arrived, then let it go: every caller is
	// either waiting on it or finds the package kept.
	for up.gets.Load() == 0 {
		runtime.Gosched()
	}
	close(up.hold)
	wg.Wait()
	fetched := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("fetch %d: %v", i, errs[i])
		}
		if entries[i].SHA256 != sums(body).SHA256 || entries[i].Size != int64(len(body)) {
			t.Errorf("fetch %d: %+v", i, entries[i])
		}
		if entries[i].Fetched {
			fetched++
		}
	}
	if up.gets.Load() != 1 || fetched != 1 {
		t.Errorf("GETs of packageUrl = %d, callers that fetched = %d; want 1 and 1", up.gets.Load(), fetched)
	}
	if got := f.upstreamBytes(t, f.process); got != int64(len(body)) {
		t.Errorf("process upstream bytes = %d, want %d", got, len(body))
	}
	if got := f.metric(t); got != float64(len(body)) {
		t.Errorf("dorismanager_package_upstream_bytes_total = %v, want %d", got, len(body))
	}
	// Kept: a later install of the same package pulls nothing.
	if e, err := f.relay.Fetch(context.Background(), up.URL+"/doris.tar.gz", sums(body), id); err != nil || e.Fetched || up.gets.Load() != 1 {
		t.Errorf("second fetch: %+v %v, GETs %d", e, err, up.gets.Load())
	}
}

func TestChecksumMismatchRefusedAndNotKept(t *testing.T) {
	body := []byte("the real package")
	up := newUpstream(t, body)
	f := newFixture(t, 0)
	wrong := sums([]byte("another package"))
	id := f.task(t, f.process, "h1", store.StatusRunning, up.URL, wrong)
	_, err := f.relay.Fetch(context.Background(), up.URL, wrong, id)
	if err == nil || !strings.Contains(err.Error(), "expected "+wrong.SHA512) || !errors.Is(err, ErrBadPackage) {
		t.Fatalf("fetch with the wrong sums: %v, want a SHA-512 mismatch (ErrBadPackage)", err)
	}
	des, _ := os.ReadDir(f.dir)
	if len(des) != 0 {
		t.Errorf("the relay folder holds %d files after a refused package", len(des))
	}
	// Not kept: the right sums fetch again; the refused bytes were counted.
	if _, err := f.relay.Fetch(context.Background(), up.URL, sums(body), id); err != nil || up.gets.Load() != 2 {
		t.Errorf("fetch with the right sums: %v, GETs %d (want 2)", err, up.gets.Load())
	}
	if got := f.upstreamBytes(t, f.process); got != 2*int64(len(body)) {
		t.Errorf("process upstream bytes = %d, want %d", got, 2*len(body))
	}
}

func TestUnverifiedPackageKeyedByWhatWasFetched(t *testing.T) {
	body := []byte("no checksum published")
	up := newUpstream(t, body)
	f := newFixture(t, 0)
	id := f.task(t, f.process, "h1", store.StatusRunning, up.URL, Sums{})
	e, err := f.relay.Fetch(context.Background(), up.URL, Sums{}, id)
	if err != nil || e.SHA256 != sums(body).SHA256 {
		t.Fatalf("fetch: %+v %v", e, err)
	}
	// The same process's next host gets it without a GET, and the sum
	// learned is enforced: the upstream changing does not change it.
	up.body = []byte("changed upstream")
	if e2, err := f.relay.Fetch(context.Background(), up.URL, Sums{}, id); err != nil || e2.SHA256 != e.SHA256 || up.gets.Load() != 1 {
		t.Errorf("same process: %+v %v GETs %d", e2, err, up.gets.Load())
	}
	// Another install fetches again.
	other := f.task(t, f.newProcess(t), "h1", store.StatusRunning, up.URL, Sums{})
	if e3, err := f.relay.Fetch(context.Background(), up.URL, Sums{}, other); err != nil || e3.SHA256 != sums(up.body).SHA256 {
		t.Errorf("another process: %+v %v", e3, err)
	}
}

func TestRedirectRuleAndLimit(t *testing.T) {
	plain := newUpstream(t, []byte("x"))
	redir := httptest.NewServer(http.RedirectHandler(plain.URL+"/pkg", http.StatusFound))
	t.Cleanup(redir.Close)
	f := newFixture(t, 0)
	url := strings.Replace(redir.URL, "127.0.0.1", "user:secret@127.0.0.1", 1)
	id := f.task(t, f.process, "h1", store.StatusRunning, url, Sums{})
	_, err := f.relay.Fetch(context.Background(), url, Sums{}, id)
	if err == nil || !strings.Contains(err.Error(), "redirect refused") || strings.Contains(err.Error(), "secret") || errors.Is(err, ErrBadPackage) {
		t.Errorf("redirect to another plain-http host: %v, want refused without the password (not as a bad package: the host may try)", err)
	}
	small, err := New(Config{Dir: t.TempDir(), Store: f.st, MaxBytes: 4})
	if err != nil {
		t.Fatal(err)
	}
	big := newUpstream(t, []byte("more than four"))
	if _, err := small.Fetch(context.Background(), big.URL, Sums{}, id); err == nil || !strings.Contains(err.Error(), "limit of 4") || !errors.Is(err, ErrBadPackage) {
		t.Errorf("package over the limit: %v", err)
	}
}

func TestLeastRecentlyUsedGoPastTheCap(t *testing.T) {
	a, b := bytes.Repeat([]byte("a"), 600), bytes.Repeat([]byte("b"), 600)
	upA, upB := newUpstream(t, a), newUpstream(t, b)
	f := newFixture(t, 1000)
	idA := f.task(t, f.process, "h1", store.StatusRunning, upA.URL, sums(a))
	idB := f.task(t, f.process, "h1", store.StatusRunning, upB.URL, sums(b))
	if _, err := f.relay.Fetch(context.Background(), upA.URL, sums(a), idA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.relay.Fetch(context.Background(), upB.URL, sums(b), idB); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, sums(a).SHA256)); !os.IsNotExist(err) {
		t.Errorf("package A still kept past the cap: %v", err)
	}
	// A relay started on the folder knows what is kept.
	again, err := New(Config{Dir: f.dir, Store: f.st})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := again.Fetch(context.Background(), upB.URL, sums(b), idB); err != nil || e.Fetched {
		t.Errorf("kept package after a restart: %+v %v", e, err)
	}
}

func TestHandlerServesOnlyTheAgentOfTheTask(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	up := newUpstream(t, body)
	f := newFixture(t, 0)
	s := sums(body)
	running := f.task(t, f.process, "h1", store.StatusRunning, up.URL, s)
	done := f.task(t, f.process, "h1", store.StatusSuccess, up.URL, s)
	h := f.relay.Handler(func(r *http.Request) (store.Agent, error) {
		switch r.Header.Get("X-Test-Agent") {
		case "h1":
			return store.Agent{ClusterID: 1, Host: "h1"}, nil
		case "h2":
			return store.Agent{ClusterID: 1, Host: "h2"}, nil
		case "other-cluster":
			return store.Agent{ClusterID: 2, Host: "h1"}, nil
		}
		return store.Agent{}, httpx.Errorf(http.StatusUnauthorized, "no certificate")
	})
	get := func(agent string, task int64, sum, rng string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/agent-api/v1/packages/%s?task=%d", sum, task), nil)
		r.Header.Set("X-Test-Agent", agent)
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		name, agent string
		task        int64
		sum         string
		status      int
	}{
		{"no certificate", "", running, s.SHA256, http.StatusUnauthorized},
		{"agent of another cluster", "other-cluster", running, s.SHA256, http.StatusForbidden},
		{"agent of another host", "h2", running, s.SHA256, http.StatusForbidden},
		{"task not running", "h1", done, s.SHA256, http.StatusForbidden},
		{"no such task", "h1", 999, s.SHA256, http.StatusForbidden},
		{"another package", "h1", running, sums([]byte("x")).SHA256, http.StatusForbidden},
		{"not a sum", "h1", running, "../../etc/passwd", http.StatusBadRequest},
	} {
		if w := get(c.agent, c.task, c.sum, ""); w.Code != c.status {
			t.Errorf("%s: HTTP %d %.200s, want %d", c.name, w.Code, w.Body, c.status)
		}
	}
	if up.gets.Load() != 0 {
		t.Errorf("refused requests fetched packageUrl %d times", up.gets.Load())
	}
	w := get("h1", running, s.SHA256, "")
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), body) {
		t.Fatalf("agent of the task: HTTP %d, %d bytes", w.Code, w.Body.Len())
	}
	// A transfer cut off at byte 4000 resumes there.
	w = get("h1", running, s.SHA256, "bytes=4000-")
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), body[4000:]) {
		t.Errorf("range: HTTP %d, %d bytes", w.Code, w.Body.Len())
	}
	if up.gets.Load() != 1 {
		t.Errorf("GETs of packageUrl = %d, want 1", up.gets.Load())
	}
}

// A task's input keeps the package URL's password sealed: the relay opens
// it to fetch the package (the mirror wants the password), keeps nothing
// of it on disk, and without the key refuses, saying why.
func TestHandlerFetchesWithTheSealedPassword(t *testing.T) {
	body := bytes.Repeat([]byte("sealed"), 1000)
	var gets atomic.Int64
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write(body)
	}))
	defer mirror.Close()
	box, err := secret.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secret.SealURLPassword(box, strings.Replace(mirror.URL, "http://", "http://bob:s3cret@", 1)+"/doris.tgz")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 0) // its relay has no key
	s := sums(body)
	id := f.task(t, f.process, "h1", store.StatusRunning, sealed, s)
	dir := filepath.Join(t.TempDir(), "packages")
	withKey, err := New(Config{Dir: dir, Store: f.st, Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	get := func(r *Relay) *httptest.ResponseRecorder {
		h := r.Handler(func(*http.Request) (store.Agent, error) { return store.Agent{ClusterID: 1, Host: "h1"}, nil })
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/agent-api/v1/packages/%s?task=%d", s.SHA256, id), nil))
		return w
	}
	w := get(f.relay)
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "no secret key") ||
		strings.Contains(w.Body.String(), "s3cret") || strings.Contains(w.Body.String(), secret.SealedPrefix) || gets.Load() != 0 {
		t.Fatalf("without the key: HTTP %d %s, %d fetches", w.Code, w.Body, gets.Load())
	}
	if w := get(withKey); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), body) {
		t.Fatalf("with the key: HTTP %d %.200s", w.Code, w.Body)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if bytes.Contains(b, []byte("s3cret")) || bytes.Contains(b, []byte(secret.SealedPrefix)) {
			t.Errorf("%s holds the password", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
