package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/metrics"
	"github.com/dorismanager/dorismanager/core/metrics/metricstest"
)

func TestWriteAndParse(t *testing.T) {
	r := metrics.NewRegistry()
	c := r.Counter("x_requests_total", "Requests.\nSecond line.", "route", "code")
	h := r.Histogram("x_seconds", "Durations.", []float64{0.1, 1}, "kind")
	r.GaugeFunc("x_things", "Things.", []string{"state"}, func(context.Context) ([]metrics.Sample, error) {
		return []metrics.Sample{{Values: []string{"up"}, Value: 3}, {Values: []string{`a"b\c`}, Value: 1}}, nil
	})
	c.Inc("/a/{id}", "200")
	c.Add(2, "/a/{id}", "200")
	c.Inc("/b", "404")
	h.Observe(0.05, "k")
	h.Observe(0.5, "k")
	h.Observe(7, "k")
	var nilC *metrics.Counter
	nilC.Inc("ignored") // a nil counter records nothing and does not panic

	var b bytes.Buffer
	if err := r.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	got, err := metricstest.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	want := map[string]float64{
		`x_requests_total{route="/a/{id}",code="200"}`: 3,
		`x_requests_total{route="/b",code="404"}`:      1,
		`x_seconds_bucket{kind="k",le="0.1"}`:          1,
		`x_seconds_bucket{kind="k",le="1"}`:            2,
		`x_seconds_bucket{kind="k",le="+Inf"}`:         3,
		`x_seconds_sum{kind="k"}`:                      7.55,
		`x_seconds_count{kind="k"}`:                    3,
		`x_things{state="up"}`:                         3,
		`x_things{state="a\"b\\c"}`:                    1,
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v\n%s", series, got[series], v, text)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d:\n%s", len(got), len(want), text)
	}
	if !strings.Contains(text, `# HELP x_requests_total Requests.\nSecond line.`) {
		t.Errorf("help text not escaped:\n%s", text)
	}
	if s := metricstest.Sum(got, "x_requests_total", `code="200"`); s != 3 {
		t.Errorf("Sum code=200 = %v, want 3", s)
	}
}

func TestFailingCollectorLeavesOthers(t *testing.T) {
	r := metrics.NewRegistry()
	r.Counter("a_total", "A.").Inc()
	r.GaugeFunc("b", "B.", nil, func(context.Context) ([]metrics.Sample, error) { return nil, errors.New("database is down") })
	var b bytes.Buffer
	err := r.Write(context.Background(), &b)
	if err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("error = %v, want the collector's", err)
	}
	text := b.String()
	got, perr := metricstest.Parse(strings.NewReader(text))
	if perr != nil || got["a_total"] != 1 {
		t.Fatalf("a_total missing after a failed collector: %v %v\n%s", got, perr, text)
	}
	if strings.Contains(text, "# TYPE b ") {
		t.Errorf("failed family written:\n%s", text)
	}
}

func TestMisuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(r *metrics.Registry)
	}{
		{"twice", func(r *metrics.Registry) { r.Counter("a_total", ""); r.Counter("a_total", "") }},
		{"bad name", func(r *metrics.Registry) { r.Counter("a-b", "") }},
		{"bad label", func(r *metrics.Registry) { r.Counter("a_total", "", "le") }},
		{"label count", func(r *metrics.Registry) { r.Counter("a_total", "", "x").Inc() }},
		{"negative", func(r *metrics.Registry) { r.Counter("a_total", "").Add(-1) }},
		{"buckets", func(r *metrics.Registry) { r.Histogram("h", "", []float64{2, 1}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tc.name)
				}
			}()
			tc.fn(metrics.NewRegistry())
		})
	}
}
