// Package redirect is the rule for HTTP redirects when a package or its
// checksum is fetched (the agent's downloads, the manager's checksum
// look-up): a redirect may go to https, or stay on the scheme and host of
// the URL the operator gave. So a plain-http URL cannot be sent on to
// another plain-http host, and an https one never down to plain http.
package redirect

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dorismanager/dorismanager/internal/redact"
)

// Max is how many redirects are followed.
const Max = 10

// ErrRefused is wrapped by Check's refusals.
var ErrRefused = errors.New("redirect refused")

// Check is an http.Client's CheckRedirect with the rule above.
func Check(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	if len(via) >= Max {
		return fmt.Errorf("%w: stopped after %d redirects", ErrRefused, Max)
	}
	first, to := via[0].URL, req.URL
	if to.Scheme == "https" {
		return nil
	}
	if to.Scheme == first.Scheme && strings.EqualFold(to.Host, first.Host) {
		return nil
	}
	return fmt.Errorf("%w: to %s: a redirect must go to https:// or stay on %s://%s", ErrRefused,
		redact.String(to.String()), first.Scheme, first.Host)
}
