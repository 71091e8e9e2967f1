// Package console is the manager's web console: one HTML shell, a style
// sheet and a few framework-free ES modules, embedded in the binary. The
// pages talk to the REST API (signed in through /api/session), so every
// rule and validation message is the API's own.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dorismanager/dorismanager/core/httpx"
)

//go:embed assets
var assets embed.FS

// files are the assets by name (flat: one folder).
var files = func() map[string][]byte {
	out := map[string][]byte{}
	entries, err := fs.ReadDir(assets, "assets")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	for _, e := range entries {
		b, err := assets.ReadFile("assets/" + e.Name())
		if err != nil {
			panic(err)
		}
		out[e.Name()] = b
	}
	return out
}()

// Names lists the assets served under /console/assets/.
func Names() []string {
	out := make([]string, 0, len(files))
	for n := range files {
		if n != "index.html" {
			out = append(out, n)
		}
	}
	return out
}

// csp allows nothing but the manager's own scripts, styles and API: no
// inline script, no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func headers(w http.ResponseWriter, ctype string) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Assets are small and change with the binary: always revalidated.
	h.Set("Cache-Control", "no-cache")
}

// Shell serves the console's one page (GET /); it routes by the URL's
// fragment.
func Shell(w http.ResponseWriter, r *http.Request) {
	headers(w, "text/html; charset=utf-8")
	_, _ = w.Write(files["index.html"])
}

// Asset serves /console/assets/{file}.
func Asset(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "file")
	b, ok := files[name]
	if !ok || name == "index.html" {
		httpx.Fail(w, httpx.NotFound("no console asset %q", truncate(name, 80)))
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	}
	headers(w, ctype)
	_, _ = w.Write(b)
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
