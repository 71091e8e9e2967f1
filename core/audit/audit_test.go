package audit

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestRedact(t *testing.T) {
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
	cases := []struct{ in, want string }{
		{"download http://alice:s3cret@10.0.0.1/doris.tgz failed", "download http://alice:***@10.0.0.1/doris.tgz failed"},
		{"https://:pw@h/x", "https://:***@h/x"},
		{"no creds in http://10.0.0.1:8080/x", "no creds in http://10.0.0.1:8080/x"},
		{"key " + key + " refused", "key [private key] refused"},
		{"half a key -----BEGIN RSA PRIVATE KEY-----\nMIIE", "half a key [private key]"},
		{"token dm_0123456789abcdef0123 unknown", "token dm_*** unknown"},
		{`{"passphrase":"hunter2","user":"root"}`, `{"passphrase":***,"user":"root"}`},
		{`password=hunter2&x=1`, `password=***&x=1`},
		{`sshKey=abc def`, `sshKey=*** def`},
		{`{"token": 12345, "x": 1}`, `{"token": ***, "x": 1}`},
		{"Authorization: Bearer abcdefgh12345", "Authorization: Bearer ***"},
		{`missing API token: send the header "Authorization: Bearer <token>"`, `missing API token: send the header "Authorization: Bearer <token>"`},
		{"the token has expired; the password is wrong", "the token has expired; the password is wrong"},
		{"plain message about cluster 3", "plain message about cluster 3"},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestReason(t *testing.T) {
	long := strings.Repeat("é", 400)
	r := Reason(long)
	if len(r) > MaxReason || !strings.HasSuffix(r, "...") || !strings.HasPrefix(r, "é") {
		t.Fatalf("long reason: %d bytes %q", len(r), r[:10])
	}
	for _, c := range r[:len(r)-3] {
		if c != 'é' {
			t.Fatalf("cut inside a character: %q", r)
		}
	}
	if got := Reason("two\nlines  and\ttabs"); got != "two lines and tabs" {
		t.Fatalf("one line: %q", got)
	}
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	ok := []struct {
		in   string
		want store.AuditQuery
	}{
		{"", store.AuditQuery{}},
		{"user=alice&cluster=3&action=stop&outcome=Refused&limit=50&before=900",
			store.AuditQuery{UserName: "alice", ClusterID: 3, Action: "stop", Outcome: "refused", Limit: 50, Before: 900}},
		{"outcome=403", store.AuditQuery{Outcome: "403"}},
		{"since=24h", store.AuditQuery{Since: now.Add(-24 * time.Hour)}},
		{"since=7d&until=1h", store.AuditQuery{Since: now.Add(-7 * 24 * time.Hour), Until: now.Add(-time.Hour)}},
		{"since=2024-05-01", store.AuditQuery{Since: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}},
		{"until=2024-05-01T13:00:00%2B01:00", store.AuditQuery{Until: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}},
		{"since=2024-05-01T12:00:00.000%2B00:00", store.AuditQuery{Since: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}},
	}
	for _, c := range ok {
		v, _ := url.ParseQuery(c.in)
		got, err := ParseQuery(v.Get, now)
		if err != nil || !got.Since.Equal(c.want.Since) || !got.Until.Equal(c.want.Until) {
			t.Errorf("%q: %+v %v", c.in, got, err)
			continue
		}
		got.Since, got.Until, c.want.Since, c.want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
	bad := map[string]string{
		"cluster=x":                          "cluster",
		"cluster=0":                          "cluster",
		"before=-1":                          "before",
		"limit=0":                            "limit",
		"limit=1001":                         "limit",
		"outcome=fine":                       "outcome",
		"outcome=42":                         "outcome",
		"since=yesterday":                    "since",
		"until=-5h":                          "until",
		"since=1h&until=2h":                  "before",
		"action=" + strings.Repeat("a", 256): "action",
	}
	for in, field := range bad {
		v, _ := url.ParseQuery(in)
		if _, err := ParseQuery(v.Get, now); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%q: %v, want an error naming %s", in, err, field)
		}
	}
}
