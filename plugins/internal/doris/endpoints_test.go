package doris

import "testing"

func TestEndpoints(t *testing.T) {
	for _, c := range []struct {
		ts   []Target
		want string
	}{
		{nil, ""},
		{[]Target{{Endpoint: "10.0.0.2:9050"}}, "10.0.0.2:9050"},
		{[]Target{{Endpoint: "h1:9010"}, {Endpoint: "[fd00::1]:9010"}}, "h1:9010, [fd00::1]:9010"},
	} {
		if got := Endpoints(c.ts); got != c.want {
			t.Errorf("Endpoints(%v) = %q, want %q", c.ts, got, c.want)
		}
	}
}
