package pkgsum

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	hex512 = strings.Repeat("ab", 64)
	hex256 = strings.Repeat("cd", 32)
)

const pkg = "apache-doris-2.0.3-bin-x64.tar.gz"

func TestParse(t *testing.T) {
	upper := strings.ToUpper(hex512)
	gpg := pkg + ": " + strings.Join(groups(upper)[:8], " ") + "\n" + strings.Repeat(" ", len(pkg)+2) + strings.Join(groups(upper)[8:], " ") + "\n"
	cases := []struct {
		name, text, algo, want, err string
	}{
		{"GNU", hex512 + "  " + pkg + "\n", SHA512, hex512, ""},
		{"GNU binary mode", hex512 + " *" + pkg + "\n", SHA512, hex512, ""},
		{"GNU upper case", upper + "  " + pkg, SHA512, hex512, ""},
		{"GNU with a path", hex512 + "  ./dist/" + pkg + "\r\n", SHA512, hex512, ""},
		{"GNU list, ours in it", "# sums\n" + strings.Repeat("ef", 64) + "  other.tar.gz\n" + hex512 + "  " + pkg + "\n", SHA512, hex512, ""},
		{"GNU SHA-256", hex256 + "  " + pkg, SHA256, hex256, ""},
		{"BSD", "SHA512 (" + pkg + ") = " + hex512 + "\n", SHA512, hex512, ""},
		{"OpenSSL", "SHA512(" + pkg + ")= " + hex512, SHA512, hex512, ""},
		{"OpenSSL 3", "SHA2-512(" + pkg + ")= " + hex512, SHA512, hex512, ""},
		{"BSD SHA-256", "SHA256 (" + pkg + ") = " + hex256, SHA256, hex256, ""},
		{"gpg --print-md", gpg, SHA512, hex512, ""},
		{"bare sum", hex512 + "\n", SHA512, hex512, ""},

		{"another file's sum", hex512 + "  apache-doris-2.1.0-bin-x64.tar.gz\n", SHA512, "", `"apache-doris-2.1.0-bin-x64.tar.gz", not of "` + pkg + `"`},
		{"BSD, another file", "SHA512 (evil.tar.gz) = " + hex512, SHA512, "", `"evil.tar.gz", not of`},
		{"list without ours", hex512 + "  a.tgz\n" + hex512 + "  b.tgz\n", SHA512, "", `no checksum of "` + pkg + `" (it lists "a.tgz", "b.tgz")`},
		{"gpg, another file", "evil.tar.gz: " + strings.Join(groups(upper), " "), SHA512, "", `"evil.tar.gz", not of`},
		{"SHA-256 length in a .sha512", hex256 + "  " + pkg, SHA512, "", "64 hex digits; a SHA512 sum has 128"},
		{"BSD SHA-256 line in a .sha512", "SHA256 (" + pkg + ") = " + hex256, SHA512, "", "is a SHA256 checksum, not SHA512"},
		{"bare sum too short", hex512[:100], SHA512, "", "100 hex digits"},
		{"empty", "\n\n", SHA512, "", "empty"},
		{"HTML error page", "<html><body>Not here</body></html>", SHA512, "", "line 1 is not"},
		{"not hex", strings.Repeat("z", 128) + "  " + pkg, SHA512, "", "line 1 is not"},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.text), c.algo, pkg)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s: Parse = %q, %v; want %q", c.name, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: Parse = %q, %v; want an error saying %q", c.name, got, err, c.err)
		}
	}
}

// groups splits hex into gpg's groups of 8.
func groups(hex string) []string {
	var g []string
	for i := 0; i < len(hex); i += 8 {
		g = append(g, hex[i:i+8])
	}
	return g
}

// repo serves files by path; a path mapped to a number answers that status.
func repo(t *testing.T, files map[string]any) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch v := files[r.URL.Path].(type) {
		case string:
			w.Write([]byte(v))
		case int:
			w.WriteHeader(v)
		case func(http.ResponseWriter, *http.Request):
			v(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	gnu := func(hex string) string { return hex + "  " + pkg + "\n" }
	// Another host, as far as URLs go: 127.0.0.2 is loopback too.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("127.0.0.2: %v", err)
	}
	elsewhere := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(gnu(hex512))) }))
	elsewhere.Listener.Close()
	elsewhere.Listener = ln
	elsewhere.Start()
	defer elsewhere.Close()
	cases := []struct {
		name  string
		files map[string]any
		want  Sum // Algo and Hex
		err   error
		says  string
	}{
		{"sha512 first", map[string]any{"/r/" + pkg + ".sha512": gnu(hex512), "/r/" + pkg + ".sha256": gnu(hex256)}, Sum{Algo: SHA512, Hex: hex512}, nil, ""},
		{"sha256 when no sha512", map[string]any{"/r/" + pkg + ".sha256": gnu(hex256)}, Sum{Algo: SHA256, Hex: hex256}, nil, ""},
		{"403 counts as missing", map[string]any{"/r/" + pkg + ".sha512": http.StatusForbidden, "/r/" + pkg + ".sha256": gnu(hex256)}, Sum{Algo: SHA256, Hex: hex256}, nil, ""},
		{"redirect on the same host", map[string]any{"/r/" + pkg + ".sha512": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/mirror/"+pkg+".sha512", http.StatusFound)
		}, "/mirror/" + pkg + ".sha512": gnu(hex512)}, Sum{Algo: SHA512, Hex: hex512}, nil, ""},
		{"none", map[string]any{}, Sum{}, ErrNotPublished, "neither"},
		{"another file's sum", map[string]any{"/r/" + pkg + ".sha512": hex512 + "  other.tar.gz\n", "/r/" + pkg + ".sha256": gnu(hex256)}, Sum{}, ErrBadFile, "other.tar.gz"},
		{"server error", map[string]any{"/r/" + pkg + ".sha512": http.StatusInternalServerError}, Sum{}, nil, "HTTP 500"},
		{"too big", map[string]any{"/r/" + pkg + ".sha512": strings.Repeat("#\n", MaxBytes)}, Sum{}, nil, "more than"},
		{"redirect to plain http elsewhere", map[string]any{"/r/" + pkg + ".sha512": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+ln.Addr().String()+"/"+pkg+".sha512", http.StatusFound)
		}}, Sum{}, nil, "redirect refused"},
	}
	f := New(0)
	for _, c := range cases {
		srv := repo(t, c.files)
		got, err := f.Lookup(ctx, srv.URL+"/r/"+pkg)
		switch {
		case c.says == "" && (err != nil || got.Algo != c.want.Algo || got.Hex != c.want.Hex || !strings.HasPrefix(got.From, srv.URL+"/r/"+pkg+".")):
			t.Errorf("%s: Lookup = %+v, %v; want %+v", c.name, got, err, c.want)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says) || c.err != nil && !errors.Is(err, c.err)):
			t.Errorf("%s: Lookup = %+v, %v; want an error (%v) saying %q", c.name, got, err, c.err, c.says)
		}
	}
}

// The package's credentials go with the look-up (the checksum lives beside
// the package, behind the same login) and are shown nowhere.
func TestLookupCredentials(t *testing.T) {
	srv := repo(t, map[string]any{"/r/" + pkg + ".sha512": func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "pw-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(hex512 + "  " + pkg))
	}})
	url := strings.Replace(srv.URL, "http://", "http://bob:pw-secret@", 1) + "/r/" + pkg
	got, err := New(0).Lookup(context.Background(), url)
	if err != nil || got.Hex != hex512 || strings.Contains(got.From, "pw-secret") || !strings.Contains(got.From, "bob:***@") {
		t.Fatalf("Lookup = %+v, %v; want the sum, from a URL without the password", got, err)
	}
	_, err = New(0).Lookup(context.Background(), strings.Replace(url, "pw-secret", "wrong-secret", 1))
	if err == nil || strings.Contains(err.Error(), "wrong-secret") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Lookup with a wrong password: %v; want HTTP 401 without the password", err)
	}
}

// A server that never answers ends the look-up at its time limit.
func TestLookupBounded(t *testing.T) {
	release := make(chan struct{})
	srv := repo(t, map[string]any{"/r/" + pkg + ".sha512": func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}})
	defer close(release)
	_, err := New(200*time.Millisecond).Lookup(context.Background(), srv.URL+"/r/"+pkg)
	if err == nil || !strings.Contains(err.Error(), "deadline") || errors.Is(err, ErrNotPublished) {
		t.Fatalf("Lookup from a silent server: %v; want it cut off", err)
	}
}
