package agent

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// Downloads are checked against SHA-512 and SHA-256, either or both; a
// mismatch fails naming the algorithm and both sums, and nothing is kept.
func TestDownloadChecksums(t *testing.T) {
	a, srv := newAgent(t)
	pkg := tgz(t, "pkg/bin/x", "x")
	s256, s512 := sha256.Sum256(pkg), sha512.Sum512(pkg)
	good256, good512 := hex.EncodeToString(s256[:]), hex.EncodeToString(s512[:])
	other := sha512.Sum512([]byte("not the package"))
	bad512 := hex.EncodeToString(other[:])
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer files.Close()
	dir := t.TempDir()
	cases := []struct {
		name           string
		sha256, sha512 string
		status         int    // HTTP status of a refused request
		err            string // in the final line's error; "" for success
	}{
		{"sha512 matches", "", good512, 0, ""},
		{"upper-case sha512 matches", "", strings.ToUpper(good512), 0, ""},
		{"both match", good256, good512, 0, ""},
		{"sha512 differs", "", bad512, 0, "SHA-512 is " + good512 + ", expected " + bad512},
		{"sha256 matches, sha512 differs", good256, bad512, 0, "SHA-512 is " + good512},
		{"sha512 matches, sha256 differs", strings.Repeat("0", 64), good512, 0, "SHA-256 is " + good256},
		{"sha512 too short", "", good512[:64], http.StatusBadRequest, "sha512 must be 128 hex digits"},
		{"sha512 not hex", "", strings.Repeat("x", 128), http.StatusBadRequest, "sha512 must be 128 hex digits"},
		{"sha256 not hex", "zz", "", http.StatusBadRequest, "sha256 must be 64 hex digits"},
	}
	for i, c := range cases {
		dest := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		// Each case its own URL, so no case is answered from another's cache.
		url := files.URL + "/p.tgz?case=" + string(rune('a'+i))
		resp, lines := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "c" + string(rune('a'+i)), URL: url,
			SHA256: c.sha256, SHA512: c.sha512, Dest: dest, Unpack: true})
		if c.status != 0 {
			if resp.StatusCode != c.status {
				t.Errorf("%s: HTTP %d, want %d", c.name, resp.StatusCode, c.status)
			}
			continue
		}
		last := lines[len(lines)-1]
		if c.err == "" {
			if last.Download == nil || last.Download.SHA512 != good512 || last.Download.SHA256 != good256 {
				t.Errorf("%s: %+v; want a download reporting both sums", c.name, lines)
			}
			if _, err := os.Stat(filepath.Join(dest, "pkg/bin/x")); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !strings.Contains(last.Error, c.err) {
			t.Errorf("%s: error %q, want it to say %q", c.name, last.Error, c.err)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("%s: %s exists after a refused download", c.name, dest)
		}
	}
	// A refused download leaves nothing in the cache beyond the good ones.
	ents, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "cache"))
	if len(ents) != 2*3 { // file + .json for each of the three successes
		t.Errorf("cache holds %d files, want 6 (three downloads)", len(ents))
	}
	ents, _ = os.ReadDir(filepath.Join(a.cfg.DataDir, "tmp"))
	if len(ents) != 0 {
		t.Errorf("tmp holds %d files after the downloads", len(ents))
	}
}

// A download follows redirects on its own scheme and host or to https, not
// to plain http elsewhere; whatever it says names URLs without passwords.
func TestDownloadRedirectsAndPasswords(t *testing.T) {
	a, srv := newAgent(t)
	pkg := tgz(t, "pkg/bin/x", "x")
	// Another host, as far as URLs go: 127.0.0.2 is loopback too.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 to stand for another host: %v", err)
	}
	elsewhere := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	elsewhere.Listener.Close()
	elsewhere.Listener = ln
	elsewhere.Start()
	defer elsewhere.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/p.tgz", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://mirror:hunter2@"+ln.Addr().String()+"/p.tgz", http.StatusFound)
		case "/p.tgz":
			w.Write(pkg)
		default:
			http.NotFound(w, r)
		}
	}))
	defer files.Close()
	withPassword := strings.Replace(files.URL, "http://", "http://alice:s3cret@", 1)
	dir := t.TempDir()
	cases := []struct {
		name, url, err string
	}{
		{"redirect on the same host", files.URL + "/same", ""},
		{"redirect to plain http elsewhere", files.URL + "/away", "redirect refused"},
		{"password in the URL, 404", withPassword + "/missing", "HTTP 404"},
		{"password in the URL, redirect refused", withPassword + "/away", "redirect refused"},
	}
	var said strings.Builder
	for i, c := range cases {
		_, lines := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "r" + string(rune('a'+i)), URL: c.url,
			Dest: filepath.Join(dir, string(rune('a'+i)))})
		for _, l := range lines {
			said.WriteString(l.Output + l.Error + "\n")
		}
		last := lines[len(lines)-1]
		switch {
		case c.err == "" && last.Download == nil:
			t.Errorf("%s: %+v; want a download", c.name, last)
		case c.err != "" && !strings.Contains(last.Error, c.err):
			t.Errorf("%s: %+v; want an error saying %q", c.name, last, c.err)
		}
	}
	if s := said.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "hunter2") || !strings.Contains(s, "alice:***@") {
		t.Errorf("the agent's answers show a password, or no redacted URL:\n%s", s)
	}
	// Nor does the cache's record of the URL keep it.
	_, lines := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "pw-ok", URL: withPassword + "/p.tgz", Dest: filepath.Join(dir, "ok")})
	if lines[len(lines)-1].Download == nil {
		t.Fatalf("download with a password: %+v", lines)
	}
	metas, _ := filepath.Glob(filepath.Join(a.cfg.DataDir, "cache", "*.json"))
	for _, m := range metas {
		b, _ := os.ReadFile(m)
		if strings.Contains(string(b), "s3cret") {
			t.Errorf("%s keeps the password: %s", m, b)
		}
	}
}
