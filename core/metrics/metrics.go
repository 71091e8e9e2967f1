// Package metrics keeps the manager's counters, histograms and scrape-time
// gauges in a Registry and writes them in the Prometheus text exposition
// format (version 0.0.4). It is small on purpose: the manager needs three
// kinds of series and one output format, not a client library's
// dependency tree. A Registry is created by the server and passed to the
// packages that record into it; there is no global one.
package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Buckets in seconds for the usual durations.
var (
	// HTTPBuckets suit API requests (milliseconds to seconds).
	HTTPBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// CallBuckets suit plugin calls (a status probe to a long install).
	CallBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 600, 1800}
	// TaskBuckets suit whole tasks (seconds to an hour).
	TaskBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

var nameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
var labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Registry holds metric families. Registering a name twice, or with bad
// names, panics: both are programming errors found by the first test run.
type Registry struct {
	mu   sync.Mutex
	fams map[string]family
}

type family interface {
	write(ctx context.Context, b *bytes.Buffer) error
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{fams: map[string]family{}} }

func (r *Registry) add(name string, labels []string, f family) {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("metrics: bad metric name %q", name))
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) || l == "le" {
			panic(fmt.Sprintf("metrics: bad label name %q of %s", l, name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.fams[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	r.fams[name] = f
}

// series is the label values of one series, kept with their joined key.
type series struct {
	values []string
}

func key(values []string) string { return strings.Join(values, "\xff") }

func checkValues(name string, labels, values []string) {
	if len(values) != len(labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values (%v), got %d", name, len(labels), labels, len(values)))
	}
}

// Counter is a family of monotonically increasing values. A nil *Counter
// records nothing, so recording is optional for its users.
type Counter struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	vals       map[string]*counterVal
}

type counterVal struct {
	series
	v float64
}

// Counter registers a counter; its name should end in _total. One
// without labels is written as 0 until it counts, so a scrape finds it.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	c := &Counter{name: name, help: help, labels: labels, vals: map[string]*counterVal{}}
	if len(labels) == 0 {
		c.vals[""] = &counterVal{}
	}
	r.add(name, labels, c)
	return c
}

// Inc adds 1 to the series of the label values.
func (c *Counter) Inc(values ...string) { c.Add(1, values...) }

// Add adds v (>= 0) to the series of the label values.
func (c *Counter) Add(v float64, values ...string) {
	if c == nil {
		return
	}
	checkValues(c.name, c.labels, values)
	if v < 0 || math.IsNaN(v) {
		panic(fmt.Sprintf("metrics: counter %s cannot add %v", c.name, v))
	}
	k := key(values)
	c.mu.Lock()
	defer c.mu.Unlock()
	cv := c.vals[k]
	if cv == nil {
		cv = &counterVal{series: series{values: append([]string(nil), values...)}}
		c.vals[k] = cv
	}
	cv.v += v
}

func (c *Counter) write(_ context.Context, b *bytes.Buffer) error {
	header(b, c.name, c.help, "counter")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range sortedKeys(c.vals) {
		cv := c.vals[k]
		sample(b, c.name, c.labels, cv.values, "", "", cv.v)
	}
	return nil
}

// Histogram is a family of distributions over fixed buckets. A nil
// *Histogram records nothing.
type Histogram struct {
	name, help string
	labels     []string
	buckets    []float64
	mu         sync.Mutex
	vals       map[string]*histVal
}

type histVal struct {
	series
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

// Histogram registers a histogram with the given upper bounds (sorted
// ascending; +Inf is implied).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Histogram {
	if !sort.Float64sAreSorted(buckets) || len(buckets) == 0 {
		panic(fmt.Sprintf("metrics: buckets of %s must be given in ascending order", name))
	}
	h := &Histogram{name: name, help: help, labels: labels, buckets: append([]float64(nil), buckets...), vals: map[string]*histVal{}}
	r.add(name, labels, h)
	return h
}

// Observe records v in the series of the label values.
func (h *Histogram) Observe(v float64, values ...string) {
	if h == nil {
		return
	}
	checkValues(h.name, h.labels, values)
	k := key(values)
	h.mu.Lock()
	defer h.mu.Unlock()
	hv := h.vals[k]
	if hv == nil {
		hv = &histVal{series: series{values: append([]string(nil), values...)}, counts: make([]uint64, len(h.buckets))}
		h.vals[k] = hv
	}
	if i := sort.SearchFloat64s(h.buckets, v); i < len(h.buckets) {
		hv.counts[i]++
	}
	hv.count++
	hv.sum += v
}

func (h *Histogram) write(_ context.Context, b *bytes.Buffer) error {
	header(b, h.name, h.help, "histogram")
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range sortedKeys(h.vals) {
		hv := h.vals[k]
		var cum uint64
		for i, ub := range h.buckets {
			cum += hv.counts[i]
			sample(b, h.name+"_bucket", h.labels, hv.values, "le", formatFloat(ub), float64(cum))
		}
		sample(b, h.name+"_bucket", h.labels, hv.values, "le", "+Inf", float64(hv.count))
		sample(b, h.name+"_sum", h.labels, hv.values, "", "", hv.sum)
		sample(b, h.name+"_count", h.labels, hv.values, "", "", float64(hv.count))
	}
	return nil
}

// Sample is one value of a scrape-time gauge, with its label values.
type Sample struct {
	Values []string
	Value  float64
}

type gaugeFunc struct {
	name, help string
	labels     []string
	collect    func(ctx context.Context) ([]Sample, error)
}

// GaugeFunc registers a gauge whose samples collect returns at every
// scrape (for example counts read from the store).
func (r *Registry) GaugeFunc(name, help string, labels []string, collect func(ctx context.Context) ([]Sample, error)) {
	r.add(name, labels, &gaugeFunc{name: name, help: help, labels: labels, collect: collect})
}

func (g *gaugeFunc) write(ctx context.Context, b *bytes.Buffer) error {
	ss, err := g.collect(ctx)
	if err != nil {
		return fmt.Errorf("collect %s: %w", g.name, err)
	}
	for _, s := range ss {
		checkValues(g.name, g.labels, s.Values)
	}
	sort.Slice(ss, func(i, j int) bool { return key(ss[i].Values) < key(ss[j].Values) })
	header(b, g.name, g.help, "gauge")
	for _, s := range ss {
		sample(b, g.name, g.labels, s.Values, "", "", s.Value)
	}
	return nil
}

// Write writes every family in the text format, sorted by name. A family
// whose collection fails is left out and its error returned (joined with
// the others) after the rest was written.
func (r *Registry) Write(ctx context.Context, w io.Writer) error {
	r.mu.Lock()
	names := sortedKeys(r.fams)
	fams := make([]family, len(names))
	for i, n := range names {
		fams[i] = r.fams[n]
	}
	r.mu.Unlock()
	var out bytes.Buffer
	var errs []string
	for _, f := range fams {
		var b bytes.Buffer
		if err := f.write(ctx, &b); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out.Write(b.Bytes())
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// ContentType is the text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry. A family that cannot be collected (the
// database is down) is left out of the answer and logged, so the others
// still reach Prometheus.
func (r *Registry) Handler(log hclog.Logger) http.Handler {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		if err := r.Write(req.Context(), w); err != nil {
			log.Warn("metrics scrape incomplete", "error", err)
		}
	})
}

func header(b *bytes.Buffer, name, help, typ string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

func sample(b *bytes.Buffer, name string, labels, values []string, extraName, extraValue string, v float64) {
	b.WriteString(name)
	if len(labels) > 0 || extraName != "" {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `%s="%s"`, l, escapeValue(values[i]))
		}
		if extraName != "" {
			if len(labels) > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `%s="%s"`, extraName, extraValue)
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
var valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeValue(s string) string { return valueEscaper.Replace(s) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
