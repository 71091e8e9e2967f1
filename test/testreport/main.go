// Command testreport reads `go test -json` on standard input and prints
// what a person wants from a whole run: each package's result line as it
// comes, the full output of every test that failed, the slowest tests (so
// drift is visible from run to run) and a closing count. It exits 1 when
// any test, package or build failed.
//
//	go test -json ./... 2>&1 | go run ./test/testreport
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build events
	Test       string
	Elapsed    float64
	Output     string
}

type result struct {
	name    string // package + test
	elapsed time.Duration
}

type report struct {
	out     io.Writer
	buf     map[string]*strings.Builder // output per running test
	slow    []result
	counts  map[string]int // pass, fail, skip
	failed  bool
	pkgFail []string
}

func newReport(out io.Writer) *report {
	return &report{out: out, buf: map[string]*strings.Builder{}, counts: map[string]int{}}
}

func (r *report) line(raw []byte) {
	var e event
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &e) != nil {
		// Not test2json: a build error or the go command's own words.
		fmt.Fprintf(r.out, "%s\n", raw)
		if strings.HasPrefix(string(raw), "FAIL") {
			r.failed = true
		}
		return
	}
	switch {
	case e.Action == "build-output":
		fmt.Fprint(r.out, e.Output)
	case e.Action == "build-fail":
		r.failed = true
	case e.Test == "":
		r.pkgLine(e)
	default:
		r.testEvent(e)
	}
}

func (r *report) pkgLine(e event) {
	switch e.Action {
	case "output":
		// The package's own lines: ok/FAIL/? summaries, panics, TestMain's words.
		if o := e.Output; o != "PASS\n" && o != "FAIL\n" && !strings.HasPrefix(o, "=== ") {
			fmt.Fprint(r.out, o)
		}
	case "fail":
		r.failed = true
		r.pkgFail = append(r.pkgFail, e.Package)
	}
}

func (r *report) testEvent(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "output":
		b := r.buf[key]
		if b == nil {
			b = &strings.Builder{}
			r.buf[key] = b
		}
		if b.Len() < 1<<20 { // a runaway test cannot eat the memory
			b.WriteString(e.Output)
		}
	case "pass", "skip":
		r.counts[e.Action]++
		r.slow = append(r.slow, result{key, secs(e.Elapsed)})
		delete(r.buf, key)
	case "fail":
		r.counts["fail"]++
		r.failed = true
		r.slow = append(r.slow, result{key, secs(e.Elapsed)})
		// A failed subtest's parent fails too; print each output once,
		// at the innermost test, which holds the reason.
		if b := r.buf[key]; b != nil {
			fmt.Fprintf(r.out, "--- output of %s (FAIL, %s)\n%s", key, secs(e.Elapsed), b.String())
		}
		delete(r.buf, key)
	}
}

func secs(f float64) time.Duration {
	return time.Duration(f * float64(time.Second)).Round(10 * time.Millisecond)
}

func (r *report) close(top int) {
	sort.SliceStable(r.slow, func(i, j int) bool { return r.slow[i].elapsed > r.slow[j].elapsed })
	if n := min(top, len(r.slow)); n > 0 {
		fmt.Fprintf(r.out, "\nslowest tests:\n")
		for _, s := range r.slow[:n] {
			fmt.Fprintf(r.out, "  %9s  %s\n", s.elapsed, s.name)
		}
	}
	if len(r.pkgFail) > 0 {
		fmt.Fprintf(r.out, "\nfailed packages: %s\n", strings.Join(r.pkgFail, " "))
	}
	fmt.Fprintf(r.out, "\n%d passed, %d failed, %d skipped\n", r.counts["pass"], r.counts["fail"], r.counts["skip"])
}

func main() {
	top := flag.Int("slowest", 15, "how many of the slowest tests to list")
	flag.Parse()
	r := newReport(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		r.line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stdout, "testreport: reading go test output:", err)
		r.failed = true
	}
	r.close(*top)
	if r.failed {
		os.Exit(1)
	}
}
