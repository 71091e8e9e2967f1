package main

import (
	"math"
	"testing"
)

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16MiB", 16 << 20, true},
		{"16 MiB", 16 << 20, true},
		{"1GiB", 1 << 30, true},
		{"512KiB", 512 << 10, true},
		{"1000B", 1000, true},
		{"1000", 1000, true},
		{"0", math.MaxInt64, true},
		{"off", math.MaxInt64, true},
		{"", 0, false},
		{"-1MiB", 0, false},
		{"16MB", 0, false},
		{"lots", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, c := range cases {
		got, err := parseBytes(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}
