package secret

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/internal/redact"
)

// A package URL may carry a password (https://user:password@mirror/...).
// At rest the password is sealed in place: the URL keeps its user, host
// and path and stays a valid URL, but its password becomes SealedPrefix
// followed by the base64url of Box.Seal(password), for example
// https://user:dmsealed.AbC...@mirror/doris.tar.gz. The password is sealed
// as written in the URL (percent-encoded), so opening gives back the very
// URL that was sealed.

// SealedPrefix begins a sealed password in a URL.
const SealedPrefix = "dmsealed."

// Sealer seals a secret (Box).
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
}

// Opener opens what a Sealer sealed (Box).
type Opener interface {
	Open(sealed []byte) ([]byte, error)
}

// passwordSpan is where the password of rawURL is: after the first ':' of
// its user info, which ends at the last '@' before the path, query or
// fragment (as net/url reads it). ok is false when the URL has no user
// info, a user without a password, or an empty password.
func passwordSpan(rawURL string) (start, end int, ok bool) {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return 0, 0, false
	}
	authStart := i + len("://")
	auth := rawURL[authStart:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.Index(auth[:at], ":")
	if colon < 0 || colon+1 == at {
		return 0, 0, false
	}
	return authStart + colon + 1, authStart + at, true
}

// IsSealedURL reports whether rawURL's password is sealed.
func IsSealedURL(rawURL string) bool {
	start, end, ok := passwordSpan(rawURL)
	return ok && strings.HasPrefix(rawURL[start:end], SealedPrefix)
}

// SealURLPassword returns rawURL with its password sealed by box. A URL
// without a password, or whose password is sealed already, is returned
// as is (box is not needed for it).
func SealURLPassword(box Sealer, rawURL string) (string, error) {
	start, end, ok := passwordSpan(rawURL)
	if !ok || strings.HasPrefix(rawURL[start:end], SealedPrefix) {
		return rawURL, nil
	}
	if box == nil {
		return "", fmt.Errorf("seal the password of %s: no secret key is configured", redact.String(rawURL))
	}
	sealed, err := box.Seal([]byte(rawURL[start:end]))
	if err != nil {
		return "", fmt.Errorf("seal the password of %s: %w", redact.String(rawURL), err)
	}
	return rawURL[:start] + SealedPrefix + base64.RawURLEncoding.EncodeToString(sealed) + rawURL[end:], nil
}

// OpenURLPassword returns rawURL with its sealed password opened by box,
// as it was before SealURLPassword. A URL whose password is not sealed
// (or that has none) is returned as is. Errors name the URL with its
// password hidden.
func OpenURLPassword(box Opener, rawURL string) (string, error) {
	start, end, ok := passwordSpan(rawURL)
	if !ok || !strings.HasPrefix(rawURL[start:end], SealedPrefix) {
		return rawURL, nil
	}
	shown := redact.String(rawURL)
	if box == nil {
		return "", fmt.Errorf("the password of %s is sealed and no secret key is configured to open it", shown)
	}
	b, err := base64.RawURLEncoding.DecodeString(rawURL[start+len(SealedPrefix) : end])
	if err != nil {
		return "", fmt.Errorf("open the sealed password of %s: it is not base64url (the stored URL was altered)", shown)
	}
	pw, err := box.Open(b)
	if err != nil {
		return "", fmt.Errorf("open the sealed password of %s (was secret.key replaced?): %w", shown, err)
	}
	return rawURL[:start] + string(pw) + rawURL[end:], nil
}
