// Package metricstest reads the text exposition format back, for tests
// that check what a /metrics endpoint serves.
package metricstest

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Parse returns the samples of a text exposition keyed by the series as
// written (`name{a="x",b="y"}`), and checks that every sample belongs to
// a family announced by a # TYPE line before it.
func Parse(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	types := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[1] == "TYPE" {
				types[f[2]] = f[3]
			}
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			return nil, fmt.Errorf("line %d: no value: %q", n, line)
		}
		series, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value %q: %w", n, val, err)
		}
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			if !strings.HasSuffix(series, "}") {
				return nil, fmt.Errorf("line %d: unterminated labels: %q", n, line)
			}
			name = series[:j]
		}
		if _, ok := types[familyOf(name, types)]; !ok {
			return nil, fmt.Errorf("line %d: sample %s without a # TYPE line", n, name)
		}
		if _, dup := out[series]; dup {
			return nil, fmt.Errorf("line %d: series %s twice", n, series)
		}
		out[series] = v
	}
	return out, sc.Err()
}

// familyOf maps a histogram's _bucket/_sum/_count sample to its family.
func familyOf(name string, types map[string]string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && types[base] == "histogram" {
			return base
		}
	}
	return name
}

// Sum adds the values of every series of family name whose labels contain
// all of the given `label="value"` pairs.
func Sum(samples map[string]float64, name string, labels ...string) float64 {
	var s float64
	for series, v := range samples {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(","+strings.TrimSuffix(rest, "}")+",", ","+l+",") {
				ok = false
				break
			}
		}
		if ok {
			s += v
		}
	}
	return s
}
