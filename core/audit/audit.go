// Package audit says what the audit log may hold and how it is asked: the
// redaction every recorded message goes through (no credentials, tokens or
// keys ever land in it) and the filters shared by GET /api/audit and
// `dorismanager audit`.
package audit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
)

// MaxReason is how much of a message an entry keeps (bytes).
const MaxReason = 300

var (
	privateKey = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
	urlCreds   = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s:]*):[^/?#@\s]*@`)
	apiToken   = regexp.MustCompile(`\bdm_[0-9A-Fa-f]{6,}`)
	bearer     = regexp.MustCompile(`(?i)\b(Bearer\s+)[A-Za-z0-9._~+/-]{8,}=*`)
	// A secret named in JSON ("passphrase": "x") or a query (password=x).
	secretField = `(?:password|passwd|passphrase|secret|token|sshkey|private_?key)`
	jsonSecret  = regexp.MustCompile(`(?i)("` + secretField + `"\s*:\s*)("(?:[^"\\]|\\.)*"|[^\s,}\]]+)`)
	querySecret = regexp.MustCompile(`(?i)\b(` + secretField + `=)[^\s&,;]+`)
)

// Redact removes secrets from s: private keys, passwords in URLs (kept as
// user:***@), API and bearer tokens, and the values of JSON fields and
// query parameters named like secrets.
func Redact(s string) string {
	s = privateKey.ReplaceAllString(s, "[private key]")
	s = urlCreds.ReplaceAllString(s, "${1}${2}:***@")
	s = apiToken.ReplaceAllString(s, "dm_***")
	s = bearer.ReplaceAllString(s, "${1}***")
	s = jsonSecret.ReplaceAllString(s, "${1}***")
	s = querySecret.ReplaceAllString(s, "${1}***")
	return s
}

// Reason is msg as an entry keeps it: redacted, one line, at most
// MaxReason bytes.
func Reason(msg string) string {
	s := strings.Join(strings.Fields(Redact(msg)), " ")
	if len(s) <= MaxReason {
		return s
	}
	cut := MaxReason - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Filter names, as query parameters of GET /api/audit and flags of
// `dorismanager audit`.
const (
	FilterUser    = "user"
	FilterCluster = "cluster"
	FilterSince   = "since"
	FilterUntil   = "until"
	FilterAction  = "action"
	FilterOutcome = "outcome"
	FilterLimit   = "limit"
	FilterBefore  = "before"
)

// ParseQuery reads the filters from get (a query string's Get, or the CLI
// flags): user, cluster (id), since/until (a time such as
// 2024-05-01T12:00:00Z or 2024-05-01, or an age such as 24h or 7d), action
// (a piece of "METHOD route"), outcome (ok, refused, error or a status),
// limit (page size, at most store.MaxAuditPage) and before (an entry id:
// the next page). Errors say which filter to fix.
func ParseQuery(get func(string) string, now time.Time) (store.AuditQuery, error) {
	var q store.AuditQuery
	q.UserName = strings.TrimSpace(get(FilterUser))
	q.Action = strings.TrimSpace(get(FilterAction))
	if len(q.Action) > 255 {
		return q, httpx.BadRequest("%s: at most 255 characters", FilterAction)
	}
	q.Outcome = strings.ToLower(strings.TrimSpace(get(FilterOutcome)))
	switch q.Outcome {
	case "", store.OutcomeOK, store.OutcomeRefused, store.OutcomeError:
	default:
		if n, err := strconv.Atoi(q.Outcome); err != nil || n < 100 || n > 599 {
			return q, httpx.BadRequest("%s %q: use ok, refused, error or an HTTP status such as 403", FilterOutcome, q.Outcome)
		}
	}
	ids := map[string]*int64{FilterCluster: &q.ClusterID, FilterBefore: &q.Before}
	for _, name := range []string{FilterCluster, FilterBefore} {
		if s := strings.TrimSpace(get(name)); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return q, httpx.BadRequest("%s %q must be a positive id", name, s)
			}
			*ids[name] = n
		}
	}
	if s := strings.TrimSpace(get(FilterLimit)); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > store.MaxAuditPage {
			return q, httpx.BadRequest("%s %q: a number from 1 to %d", FilterLimit, s, store.MaxAuditPage)
		}
		q.Limit = n
	}
	times := map[string]*time.Time{FilterSince: &q.Since, FilterUntil: &q.Until}
	for _, name := range []string{FilterSince, FilterUntil} {
		if s := strings.TrimSpace(get(name)); s != "" {
			t, err := parseTime(s, now)
			if err != nil {
				return q, httpx.BadRequest("%s %q: %v", name, s, err)
			}
			*times[name] = t
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, httpx.BadRequest("%s must be before %s", FilterSince, FilterUntil)
	}
	return q, nil
}

// parseTime reads a point in time, or an age before now.
func parseTime(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, httpx.TimeLayout, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	var age time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return time.Time{}, fmt.Errorf("use a time (2024-05-01T12:00:00Z, 2024-05-01) or an age (24h, 7d)")
		}
		age = time.Duration(days) * 24 * time.Hour
	} else {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("use a time (2024-05-01T12:00:00Z, 2024-05-01) or an age (24h, 7d)")
		}
		age = d
	}
	return now.Add(-age).UTC(), nil
}
