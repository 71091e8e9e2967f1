package deadline

import (
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	cases := []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{"", 10 * time.Second, false},
		{"2", 20 * time.Second, false},
		{"0.5", 5 * time.Second, false},
		{"1.25", 12500 * time.Millisecond, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"fast", 0, true},
		{"1e9", 0, true},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(Env, c.env)
			if _, err := Scale(); (err != nil) != c.bad {
				t.Fatalf("Scale with %q: err = %v, want error %v", c.env, err, c.bad)
			}
			if c.bad {
				defer func() {
					if recover() == nil {
						t.Errorf("D with %q did not refuse it", c.env)
					}
				}()
			}
			if got := D(10 * time.Second); got != c.want {
				t.Errorf("D(10s) with %q = %s, want %s", c.env, got, c.want)
			}
		})
	}
}
