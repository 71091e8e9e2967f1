package secret

import (
	"net/url"
	"strings"
	"testing"
)

func testBox(t *testing.T) *Box {
	t.Helper()
	b, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A URL's password is sealed in place: the result is a URL with the same
// user, host, path and query whose password tells nothing, and opening it
// gives back the URL exactly. URLs without a password stay as they are.
func TestSealURLPassword(t *testing.T) {
	box := testBox(t)
	cases := []struct {
		name, url string
		password  string // as net/url reads it; "" when there is none to seal
	}{
		{"no user info", "https://mirror.example/doris-2.1.tar.gz", ""},
		{"user only", "https://bob@mirror.example/doris-2.1.tar.gz", ""},
		{"empty password", "https://bob:@mirror.example/doris-2.1.tar.gz", ""},
		{"@ and : in the path only", "https://mirror.example/a:b@c/doris.tar.gz", ""},
		{"@ and : in the query only", "https://mirror.example/doris.tar.gz?sig=a:b@c", ""},
		{"password", "https://bob:s3cret@mirror.example/doris-2.1.tar.gz", "s3cret"},
		{"password and port", "http://bob:s3cret@127.0.0.1:8080/x.tar.gz", "s3cret"},
		{"percent-encoded special characters", "https://bob:p%40ss%3Aw%2Frd%25+x@mirror.example/d.tar.gz?a=1#f", "p@ss:w/rd%+x"},
		{"raw @ and : in the password", "https://bob:p@ss:w@mirror.example/d.tar.gz", "p@ss:w"},
		{"password only, no user", "https://:s3cret@mirror.example/d.tar.gz", "s3cret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sealed, err := SealURLPassword(box, c.url)
			if err != nil {
				t.Fatal(err)
			}
			if c.password == "" {
				if sealed != c.url || IsSealedURL(sealed) {
					t.Fatalf("sealed %q, want it unchanged", sealed)
				}
				if opened, err := OpenURLPassword(box, sealed); err != nil || opened != c.url {
					t.Fatalf("opened %q %v, want it unchanged", opened, err)
				}
				return
			}
			if sealed == c.url || !IsSealedURL(sealed) || IsSealedURL(c.url) {
				t.Fatalf("sealed %q (IsSealedURL %v)", sealed, IsSealedURL(sealed))
			}
			pw := c.url[strings.Index(c.url, "://")+3:]
			pw = pw[strings.Index(pw, ":")+1 : strings.LastIndex(pw, "@")]
			if strings.Contains(sealed, pw) {
				t.Fatalf("sealed %q still holds the password %q", sealed, pw)
			}
			want, _ := url.Parse(c.url)
			got, err := url.Parse(sealed)
			if err != nil {
				t.Fatalf("the sealed URL %q does not parse: %v", sealed, err)
			}
			gotPW, _ := got.User.Password()
			if got.Scheme != want.Scheme || got.Host != want.Host || got.Path != want.Path || got.RawQuery != want.RawQuery ||
				got.Fragment != want.Fragment || got.User.Username() != want.User.Username() || !strings.HasPrefix(gotPW, SealedPrefix) {
				t.Fatalf("sealed %q parses as %#v", sealed, got)
			}
			again, err := SealURLPassword(box, sealed)
			if err != nil || again != sealed {
				t.Fatalf("sealed twice: %q %v, want %q", again, err, sealed)
			}
			opened, err := OpenURLPassword(box, sealed)
			if err != nil || opened != c.url {
				t.Fatalf("opened %q %v, want %q", opened, err, c.url)
			}
			u, _ := url.Parse(opened)
			if p, _ := u.User.Password(); p != c.password {
				t.Fatalf("opened password %q, want %q", p, c.password)
			}
			// Opening an open URL changes nothing.
			if o, err := OpenURLPassword(box, opened); err != nil || o != opened {
				t.Fatalf("opened twice: %q %v", o, err)
			}
		})
	}
}

// A sealed password that was altered, or sealed under another key, is
// refused with an error that names the URL without its password.
func TestOpenURLPasswordRefuses(t *testing.T) {
	box, other := testBox(t), testBox(t)
	const plain = "https://bob:s3cret@mirror.example/doris.tar.gz"
	sealed, err := SealURLPassword(box, plain)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(sealed, SealedPrefix) + len(SealedPrefix) + 20
	flip := map[byte]byte{'A': 'B'}[sealed[i]]
	if flip == 0 {
		flip = 'A'
	}
	tampered := sealed[:i] + string(flip) + sealed[i+1:]
	cases := []struct {
		name, url string
		box       Opener
		want      string
	}{
		{"tampered", tampered, box, "authentication failed"},
		{"not base64url", "https://bob:" + SealedPrefix + "!!not-base64!!@mirror.example/doris.tar.gz", box, "not base64url"},
		{"too short", "https://bob:" + SealedPrefix + "AAAA@mirror.example/doris.tar.gz", box, "too short"},
		{"wrong key", sealed, other, "wrong key"},
		{"no key", sealed, nil, "no secret key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := OpenURLPassword(c.box, c.url)
			if err == nil {
				t.Fatalf("opened %q, want an error", got)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bob:***@mirror.example") {
				t.Fatalf("error %q, want it to say %q and name bob:***@mirror.example", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), SealedPrefix) {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// Without a key nothing can be sealed; URLs without a password need none.
func TestSealURLPasswordWithoutKey(t *testing.T) {
	if _, err := SealURLPassword(nil, "https://bob:s3cret@mirror.example/x.tar.gz"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("sealed without a key: %v", err)
	}
	var none *Box
	if _, err := SealURLPassword(none, "https://bob:s3cret@mirror.example/x.tar.gz"); err == nil {
		t.Fatal("sealed with a nil *Box")
	}
	if got, err := SealURLPassword(nil, "https://mirror.example/x.tar.gz"); err != nil || got != "https://mirror.example/x.tar.gz" {
		t.Fatalf("a URL without a password: %q %v", got, err)
	}
}
