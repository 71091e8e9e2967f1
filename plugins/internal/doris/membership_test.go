package doris

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// WaitAlive waits out errors that may pass, and stops early, saying what
// to fix, on a BE that chose another address than the one it was added
// as, once that has lasted Settle; the error a restarted BE's row still
// shows until the next heartbeat does not stop it.
func TestWaitAliveRefusals(t *testing.T) {
	const mismatch = "backend ip saved in master does not equal to backend local ip10.0.0.2 vs. 198.51.100.7"
	target := Target{Endpoint: "10.0.0.2:9050", Addrs: []string{"10.0.0.2"}, Port: 9050}
	row := func(alive bool, msg string) Member {
		return Member{Hosts: []string{"10.0.0.2"}, Port: 9050, Alive: alive, ErrMsg: msg}
	}
	cases := []struct {
		name  string
		rows  []Member // one per poll; the last repeats
		want  []string // in the failure; none: success
		early bool     // fails before the timeout
	}{
		{name: "address mismatch", rows: []Member{row(false, mismatch)}, early: true, want: []string{
			"10.0.0.2:9050 refuses the FE's heartbeats: it chose the address 198.51.100.7 for itself, not 10.0.0.2",
			"priority_networks", "10.0.0.2/32", mismatch}},
		{name: "stale mismatch after a restart", rows: []Member{row(false, mismatch), row(false, mismatch), row(true, "")}},
		{name: "mismatch then another error", rows: []Member{row(false, mismatch), row(false, "connection refused")},
			want: []string{"not alive after", "connection refused"}},
		{name: "refused connections are waited out", rows: []Member{row(false, "dial tcp 10.0.0.2:9050: connection refused")},
			want: []string{"BE not alive after", "ErrMsg: dial tcp"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Initial: 5 * time.Millisecond, Max: 5 * time.Millisecond, Settle: 40 * time.Millisecond}
			n := 0
			show := func(context.Context) ([]Member, error) {
				r := tc.rows[min(n, len(tc.rows)-1)]
				n++
				return []Member{r}, nil
			}
			const timeout = 2 * time.Second
			began := time.Now()
			err := b.WaitAlive(context.Background(), timeout, "BE", show, []Target{target})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			var f *sdk.Failure
			if !errors.As(err, &f) {
				t.Fatalf("got %v, want a failure", err)
			}
			text := f.Summary + "\n" + f.Detail
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("failure %q does not say %q", text, w)
				}
			}
			if early := time.Since(began) < timeout; early != tc.early {
				t.Errorf("ended after %s: early %v, want %v", time.Since(began), early, tc.early)
			}
		})
	}
}
