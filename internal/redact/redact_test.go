package redact

import (
	"net/url"
	"testing"
)

func TestString(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no credentials", "http://10.0.0.1/doris.tar.gz", "http://10.0.0.1/doris.tar.gz"},
		{"user and password", "https://alice:s3cret@repo.example/doris.tar.gz", "https://alice:***@repo.example/doris.tar.gz"},
		{"user only", "https://alice@repo.example/x", "https://alice@repo.example/x"},
		{"empty user", "http://:s3cret@h/x", "http://:***@h/x"},
		{"port", "http://u:p@h:8080/x", "http://u:***@h:8080/x"},
		{"no path", "http://u:p@h", "http://u:***@h"},
		{"query", "http://u:p@h?x=1", "http://u:***@h?x=1"},
		{"at sign in the password", "http://u:p@ss@h/x", "http://u:***@h/x"},
		{"colon in the password", "http://u:a:b@h/x", "http://u:***@h/x"},
		{"sub-delims in the password", "http://u:a,b;c$d!@h/x", "http://u:***@h/x"},
		{"percent-encoded password", "http://u:p%40ss@h/x", "http://u:***@h/x"},
		{"inside an error", `download "http://u:p@h/x.tgz": HTTP 404 Not Found`, `download "http://u:***@h/x.tgz": HTTP 404 Not Found`},
		{"two URLs", "from http://a:1@h1/x to https://b:2@h2/y", "from http://a:***@h1/x to https://b:***@h2/y"},
		{"in JSON", `{"packageUrl":"http://u:p@h/x"}`, `{"packageUrl":"http://u:***@h/x"}`},
		{"already redacted", "http://u:***@h/x", "http://u:***@h/x"},
		{"port, not a password", "http://h:8080/a@b", "http://h:8080/a@b"},
		{"mail address", "mail root@example.com", "mail root@example.com"},
		{"other scheme", "ftp://u:p@h/x", "ftp://u:***@h/x"},
	}
	for _, c := range cases {
		if got := String(c.in); got != c.want {
			t.Errorf("%s: String(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
		if got := string(Bytes([]byte(c.in))); got != c.want {
			t.Errorf("%s: Bytes(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// Whatever password url.Parse reads from a URL, String hides it.
func TestStringHidesWhatURLParseReads(t *testing.T) {
	for _, raw := range []string{
		"http://u:p@h/x", "http://u:p@ss@h/x", "https://u:a:b@h:1/x?q#f", "http://u:(x)*+=&'@h", "http://u:%41bc@h/",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		got := String(raw)
		r, err := url.Parse(got)
		if err != nil {
			t.Fatalf("String(%q) = %q: %v", raw, got, err)
		}
		pw, _ := r.User.Password()
		if pw != Mask || r.User.Username() != u.User.Username() || r.Host != u.Host || r.Path != u.Path {
			t.Errorf("String(%q) = %q: want the same URL with password %s", raw, got, Mask)
		}
	}
}
