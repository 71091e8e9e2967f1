package redirect

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := []struct {
		name string
		from []string // the requests so far, the first one the operator's
		to   string
		ok   bool
	}{
		{"http to https elsewhere", []string{"http://a/p.tgz"}, "https://b/p.tgz", true},
		{"https to https elsewhere", []string{"https://a/p.tgz"}, "https://b/p.tgz", true},
		{"http on the same host", []string{"http://a:8080/p.tgz"}, "http://a:8080/other/p.tgz", true},
		{"host case", []string{"http://Repo.Example/p.tgz"}, "http://repo.example/q.tgz", true},
		{"http to another host", []string{"http://a/p.tgz"}, "http://b/p.tgz", false},
		{"http to another port", []string{"http://a/p.tgz"}, "http://a:8080/p.tgz", false},
		{"https down to http, same host", []string{"https://a/p.tgz"}, "http://a/p.tgz", false},
		{"back to the first host after https", []string{"http://a/p.tgz", "https://b/p.tgz"}, "http://a/q.tgz", true},
		{"elsewhere after https", []string{"http://a/p.tgz", "https://b/p.tgz"}, "http://b/q.tgz", false},
		{"other scheme", []string{"http://a/p.tgz"}, "ftp://a/p.tgz", false},
		{"too many", []string{"https://a/1", "https://a/2", "https://a/3", "https://a/4", "https://a/5",
			"https://a/6", "https://a/7", "https://a/8", "https://a/9", "https://a/10"}, "https://a/11", false},
	}
	for _, c := range cases {
		var via []*http.Request
		for _, u := range c.from {
			via = append(via, req(u))
		}
		err := Check(req(c.to), via)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%s: Check = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// The refusal names where the redirect went, without its password. (The
// url.Error net/http wraps it in quotes the target as it is: callers redact
// whole messages.)
func TestCheckRedactsAndWorksInAClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://u:secret@127.0.0.2:1/p.tgz", http.StatusFound)
	}))
	defer srv.Close()
	c := &http.Client{CheckRedirect: Check}
	resp, err := c.Get(srv.URL + "/p.tgz")
	if err == nil {
		resp.Body.Close()
		t.Fatal("redirect to another plain-http host followed")
	}
	var ue *url.Error
	if !errors.Is(err, ErrRefused) || !errors.As(err, &ue) {
		t.Fatalf("error %q: want a refusal", err)
	}
	if msg := ue.Err.Error(); strings.Contains(msg, "secret") || !strings.Contains(msg, "u:***@127.0.0.2:1") {
		t.Fatalf("refusal %q: want the target without its password", msg)
	}
}
