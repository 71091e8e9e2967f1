//go:build loadbench

package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The REST prober runs in a process of its own (this test binary started
// again with LOADGEN_PROBER=1): inside the load generator its requests
// would wait for the CPU and the garbage collector of 10,000 simulated
// agents, and the latencies measured would be the generator's. Here it
// is one more client on the machine, as an operator's would be.

func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_PROBER") == "1" {
		os.Exit(proberMain(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// proberSpec is the first line the child reads on stdin (the token is
// not put in its environment or arguments, where ps would show it).
type proberSpec struct {
	BaseURL string
	Token   string
	Every   time.Duration
	Paths   []string
}

// proberReport is the child's answer to "report": the window's latencies
// in nanoseconds, all and by path.
type proberReport struct {
	All    []time.Duration
	ByPath map[string][]time.Duration
	Errors int64
	Last   string
}

// proberMain runs a Prober as the spec says; "reset" on stdin starts a new
// window, "report" prints the window as JSON and ends.
func proberMain(in io.Reader, out io.Writer) int {
	sc := bufio.NewScanner(in)
	if !sc.Scan() {
		fmt.Fprintln(os.Stderr, "prober: no spec on stdin")
		return 2
	}
	var spec proberSpec
	if err := json.Unmarshal(sc.Bytes(), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "prober: spec:", err)
		return 2
	}
	// /readyz answers 503 here (no role plugins installed) after running
	// its checks (store ping): an answer all the same.
	p := &Prober{BaseURL: spec.BaseURL, Token: spec.Token, Every: spec.Every, Paths: spec.Paths,
		Accept: func(path string, status int) bool {
			return status == http.StatusOK || (path == "/readyz" && status == http.StatusServiceUnavailable)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			p.Reset()
		case "report":
			r := proberReport{ByPath: map[string][]time.Duration{}, Errors: p.Errors.Load(), Last: p.LastError()}
			p.All.mu.Lock()
			r.All = append(r.All, p.All.d...)
			p.All.mu.Unlock()
			p.mu.Lock()
			for path, rec := range p.byPath {
				rec.mu.Lock()
				r.ByPath[path] = append([]time.Duration(nil), rec.d...)
				rec.mu.Unlock()
			}
			p.mu.Unlock()
			cancel()
			<-done
			if err := json.NewEncoder(out).Encode(r); err != nil {
				return 1
			}
			return 0
		}
	}
	cancel()
	<-done
	return 1
}

// proberProc is the parent's handle on a prober process.
type proberProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   strings.Builder
}

func startProber(t *testing.T, spec proberSpec) *proberProc {
	t.Helper()
	p := &proberProc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	p.cmd.Env = append(os.Environ(), "LOADGEN_PROBER=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, os.Stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stdin.Close(); _ = p.cmd.Wait() })
	b, _ := json.Marshal(spec)
	p.send(t, string(b))
	return p
}

func (p *proberProc) send(t *testing.T, line string) {
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("prober: %v", err)
	}
}

// Reset starts the measurement window.
func (p *proberProc) Reset(t *testing.T) { p.send(t, "reset") }

// Report ends the prober and returns its window.
func (p *proberProc) Report(t *testing.T) proberReport {
	p.send(t, "report")
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("prober: %v", err)
	}
	var r proberReport
	if err := json.Unmarshal([]byte(p.out.String()), &r); err != nil {
		t.Fatalf("prober report: %v", err)
	}
	return r
}
