// Package redact hides the passwords of URLs (scheme://user:password@host/...)
// in text that people see: API answers, task logs, errors, the manager's and
// the agents' logs. The user name stays; the password becomes ***, as Go's
// net/http writes it in its own errors.
package redact

import (
	"bytes"
	"regexp"
	"strings"
)

// userinfo matches "scheme://user:password@". The password runs to the
// last '@' of the URL's authority (Go's url.Parse reads it so), which ends
// at '/', '?', '#', white space or a character that cannot be in a URL; a
// password with other odd characters is hidden too, with more text than it
// rather than less.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:"<>\\]*):[^\s/?#"<>\\]*@`)

// Mask replaces the password.
const Mask = "***"

// String returns s with the password of every URL in it replaced by ***.
func String(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}:"+Mask+"@")
}

// Bytes is String for bytes; b is returned as is when it has no password.
func Bytes(b []byte) []byte {
	if bytes.IndexByte(b, '@') < 0 {
		return b
	}
	return userinfo.ReplaceAll(b, []byte("${1}:"+Mask+"@"))
}
