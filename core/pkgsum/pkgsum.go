// Package pkgsum finds the checksum a release publishes beside its package,
// as Apache does for every release (<package URL>.sha512, else .sha256),
// and reads the formats such files come in. The manager looks it up once,
// at installService, and the hosts check their downloads against it.
package pkgsum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/internal/redirect"
)

// Algorithms, in the order they are looked for.
const (
	SHA512 = "sha512"
	SHA256 = "sha256"
)

// hexLen is the length of each algorithm's sum in hex digits.
var hexLen = map[string]int{SHA512: 128, SHA256: 64}

// Bounds of a look-up.
const (
	// MaxBytes bounds a checksum file (Apache's are about 200 bytes; a
	// list of many files' sums still fits).
	MaxBytes = 64 << 10
	// DefaultTimeout bounds the whole look-up, both files.
	DefaultTimeout = 20 * time.Second
)

// Sum is a package's published checksum.
type Sum struct {
	Algo string // SHA512 or SHA256
	Hex  string // lower case
	From string // the checksum file's URL, without a password
}

// ErrNotPublished: neither <url>.sha512 nor <url>.sha256 exists (HTTP 404,
// 410, or 403 as object stores answer for a missing key).
var ErrNotPublished = errors.New("no checksum is published beside the package")

// ErrBadFile: a checksum file exists but cannot be used (not a checksum,
// or one for another file). A look-up never goes past such a file.
var ErrBadFile = errors.New("the published checksum file cannot be used")

// Fetcher looks checksums up over HTTP(S).
type Fetcher struct {
	client  *http.Client
	timeout time.Duration
}

// New returns a Fetcher whose look-ups take at most timeout (0: DefaultTimeout).
func New(timeout time.Duration) *Fetcher {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Fetcher{timeout: timeout, client: &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: redirect.Check,
	}}
}

// Lookup returns the checksum published beside pkgURL: <pkgURL>.sha512,
// else <pkgURL>.sha256. ErrNotPublished when there is neither; errors
// wrapping ErrBadFile for a file that is there but unusable; other errors
// when a file could not be fetched. Messages name URLs without passwords.
func (f *Fetcher) Lookup(ctx context.Context, pkgURL string) (Sum, error) {
	u, err := url.Parse(pkgURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Sum{}, fmt.Errorf("package URL %s: want http(s)://host/path", redact.String(pkgURL))
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." {
		return Sum{}, fmt.Errorf("package URL %s names no file", redact.String(pkgURL))
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	for _, algo := range []string{SHA512, SHA256} {
		su := *u
		su.Path += "." + algo
		if su.RawPath != "" {
			su.RawPath += "." + algo
		}
		text, err := f.get(ctx, su.String())
		if errors.Is(err, ErrNotPublished) {
			continue
		}
		shown := redact.String(su.String())
		if err != nil {
			return Sum{}, fmt.Errorf("fetch %s: %w", shown, err)
		}
		sum, err := Parse(text, algo, name)
		if err != nil {
			return Sum{}, fmt.Errorf("%w: %s: %v", ErrBadFile, shown, err)
		}
		return Sum{Algo: algo, Hex: sum, From: shown}, nil
	}
	return Sum{}, fmt.Errorf("%w: neither %s.sha512 nor .sha256 exists", ErrNotPublished, redact.String(pkgURL))
}

func (f *Fetcher) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL is the one being fetched, maybe with a password
		}
		return nil, errors.New(redact.String(err.Error()))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden:
		return nil, ErrNotPublished
	default:
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	if resp.ContentLength > MaxBytes {
		return nil, fmt.Errorf("%d bytes is more than a checksum file may have (%d)", resp.ContentLength, MaxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, errors.New(redact.String(err.Error()))
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("more than the %d bytes a checksum file may have", MaxBytes)
	}
	return b, nil
}

var (
	// GNU coreutils (sha512sum): "<hex>  <name>", or "<hex> *<name>" in
	// binary mode.
	gnuLine = regexp.MustCompile(`^([0-9A-Fa-f]+) [ *]?(.+)$`)
	// BSD and OpenSSL: "SHA512 (<name>) = <hex>", "SHA512(<name>)= <hex>".
	bsdLine = regexp.MustCompile(`^(SHA[0-9-]+|sha[0-9-]+) ?\((.+)\) ?= ?([0-9A-Fa-f]+)$`)
	// gpg --print-md: "<name>: <hex in groups>", the groups over several lines.
	gpgText = regexp.MustCompile(`^(\S+): *((?:[0-9A-Fa-f]{1,8}\s*)+)$`)
	bareHex = regexp.MustCompile(`^[0-9A-Fa-f]+$`)
)

// Parse reads the algo checksum (SHA512 or SHA256) of the file named name
// from a checksum file's text: GNU "<hex>  <name>" lines (the one for name
// among several), BSD "SHA512 (<name>) = <hex>", gpg --print-md output, or
// a bare hex sum alone. A file for another name, another algorithm or a
// sum of the wrong length is refused, saying which.
func Parse(text []byte, algo, name string) (string, error) {
	want, ok := hexLen[algo]
	if !ok {
		return "", fmt.Errorf("unknown algorithm %q", algo)
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(text), "\r\n", "\n"))
	if s == "" {
		return "", errors.New("the file is empty")
	}
	check := func(sum string) (string, error) {
		if len(sum) != want {
			return "", fmt.Errorf("the sum has %d hex digits; a %s sum has %d", len(sum), strings.ToUpper(algo), want)
		}
		return strings.ToLower(sum), nil
	}
	if bareHex.MatchString(s) {
		return check(s)
	}
	if m := gpgText.FindStringSubmatch(s); m != nil && !strings.Contains(s, "(") {
		if base(m[1]) != name {
			return "", fmt.Errorf("it is the checksum of %q, not of %q", m[1], name)
		}
		return check(strings.Join(strings.Fields(m[2]), ""))
	}
	var names []string
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var file, sum string
		if m := bsdLine.FindStringSubmatch(line); m != nil {
			if a := bsdAlgo(m[1]); a != algo {
				return "", fmt.Errorf("line %d is a %s checksum, not %s", i+1, m[1], strings.ToUpper(algo))
			}
			file, sum = m[2], m[3]
		} else if m := gnuLine.FindStringSubmatch(line); m != nil {
			file, sum = m[2], m[1]
		} else {
			return "", fmt.Errorf("line %d is not \"<hex>  <file name>\" nor \"%s (<file name>) = <hex>\"", i+1, strings.ToUpper(algo))
		}
		if base(file) == name {
			return check(sum)
		}
		names = append(names, file)
	}
	if len(names) == 1 {
		return "", fmt.Errorf("it is the checksum of %q, not of %q", names[0], name)
	}
	return "", fmt.Errorf("it has no checksum of %q (it lists %s)", name, quoteList(names, 5))
}

// bsdAlgo is the algorithm a BSD or OpenSSL line names: SHA512, sha512,
// SHA-512 and OpenSSL 3's SHA2-512 are all SHA512.
func bsdAlgo(s string) string {
	a := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(a) == len("sha2512") && strings.HasPrefix(a, "sha2") {
		a = "sha" + a[len("sha2"):]
	}
	return a
}

// base is the file name of a name a checksum file gives (it may carry a
// path: "./x.tar.gz", "dist/x.tar.gz").
func base(name string) string { return path.Base(strings.TrimSpace(name)) }

func quoteList(names []string, max int) string {
	var q []string
	for i, n := range names {
		if i == max {
			q = append(q, fmt.Sprintf("and %d more", len(names)-max))
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	return strings.Join(q, ", ")
}
