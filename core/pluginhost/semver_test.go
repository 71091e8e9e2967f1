package pluginhost

import (
	"strings"
	"testing"
)

func TestConstraintMatch(t *testing.T) {
	versions := []string{"0.0.3", "0.0.4", "0.2.0", "0.2.5", "0.3.0", "1.0.0", "1.1.9", "1.2.0-rc.1", "1.2.0", "1.2.3", "1.2.10", "1.3.0", "1.10.0", "2.0.0-beta", "2.0.0", "2.1.0+build.5"}
	tests := []struct {
		rule    string
		match   string // the versions that match, in the order above
		highest string
		exact   bool
	}{
		{"1.2.3", "1.2.3", "1.2.3", true},
		{"=1.2.3", "1.2.3", "1.2.3", true},
		{"1.2.0-rc.1", "1.2.0-rc.1", "1.2.0-rc.1", true},
		{"1.2", "1.2.0 1.2.3 1.2.10", "1.2.10", false},
		{"1", "1.0.0 1.1.9 1.2.0 1.2.3 1.2.10 1.3.0 1.10.0", "1.10.0", false},
		{"~1.2", "1.2.0 1.2.3 1.2.10", "1.2.10", false},
		{"~1.2.3", "1.2.3 1.2.10", "1.2.10", false},
		{"~1", "1.0.0 1.1.9 1.2.0 1.2.3 1.2.10 1.3.0 1.10.0", "1.10.0", false},
		{"^1.2", "1.2.0 1.2.3 1.2.10 1.3.0 1.10.0", "1.10.0", false},
		{"^0.2", "0.2.0 0.2.5", "0.2.5", false},
		{"^0.0.3", "0.0.3", "0.0.3", false},
		{">=1.2 <2", "1.2.0 1.2.3 1.2.10 1.3.0 1.10.0", "1.10.0", false},
		{">=1.2, <2", "1.2.0 1.2.3 1.2.10 1.3.0 1.10.0", "1.10.0", false},
		{">1.2", "1.3.0 1.10.0 2.0.0 2.1.0+build.5", "2.1.0+build.5", false},
		{">1.2.3 <=1.3", "1.2.10 1.3.0", "1.3.0", false},
		{"<1", "0.0.3 0.0.4 0.2.0 0.2.5 0.3.0", "0.3.0", false},
		{">=2", "2.0.0 2.1.0+build.5", "2.1.0+build.5", false},
		{">=2.0.0-beta", "2.0.0-beta 2.0.0 2.1.0+build.5", "2.1.0+build.5", false},
		{"  >=1.2    <1.3 ", "1.2.0 1.2.3 1.2.10", "1.2.10", false},
		{"9.9.9", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			c, err := ParseConstraint(tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range versions {
				if c.Match(v) {
					got = append(got, v)
				}
			}
			if strings.Join(got, " ") != tc.match {
				t.Errorf("matches %q, want %q", strings.Join(got, " "), tc.match)
			}
			if h := c.Highest(versions); h != tc.highest {
				t.Errorf("Highest = %q, want %q", h, tc.highest)
			}
			if c.Exact() != tc.exact {
				t.Errorf("Exact = %v, want %v", c.Exact(), tc.exact)
			}
		})
	}
}

func TestConstraintRefused(t *testing.T) {
	for rule, want := range map[string]string{
		"":         "empty version",
		"   ":      "empty version",
		"v1.2.3":   "without a leading v",
		">=":       "has no version after it",
		"~":        "has no version after it",
		"1.2.x":    "is not a version",
		"1.02":     "is not a version",
		"latest":   "is not a version",
		"1.2 || 2": "is not a version",
		">=1.2 <":  "has no version after it",
	} {
		_, err := ParseConstraint(rule)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConstraint(%q) = %v, want an error with %q", rule, err, want)
		}
		if err != nil && rule != "" && strings.TrimSpace(rule) != "" && !strings.Contains(err.Error(), "accepted:") {
			t.Errorf("ParseConstraint(%q) = %v does not say what is accepted", rule, err)
		}
	}
}

func TestCompareSemver(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"1.0.0-2", "1.0.0-10", -1},
		{"1.0.0+a", "1.0.0+b", 0},
	} {
		if got := compareSemver(tc.a, tc.b); got != tc.want {
			t.Errorf("compareSemver(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
