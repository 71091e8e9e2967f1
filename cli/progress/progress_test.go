package progress

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/cli/rest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// clock advances by step at every reading.
func clock(step time.Duration) func() time.Time {
	t := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func task(id int64, typ, host, status, resp string) rest.Task {
	t := rest.Task{ID: id, TaskType: typ, Host: host, Status: status, Skip: "NO"}
	if resp != "" {
		t.Response = &resp
	}
	return t
}

// polls is a step as a printer sees it: queued tasks, one that runs, fails
// and is retried, one that ends before it was ever seen running, a skip.
var polls = [][]rest.Task{
	{task(4, "INSTALL_FE", "10.0.0.11", "SUBMITTED", ""), task(5, "INSTALL_BE", "10.0.0.11", "RUNNING", ""), task(6, "INSTALL_BE", "10.0.0.12", "SUBMITTED", "")},
	{task(4, "INSTALL_FE", "10.0.0.11", "RUNNING", ""), task(5, "INSTALL_BE", "10.0.0.11", "RUNNING", ""), task(6, "INSTALL_BE", "10.0.0.12", "SUCCESS", "BE installed in /opt/doris/be from be")},
	{task(4, "INSTALL_FE", "10.0.0.11", "FAILURE", "precheck failed:\n  port 9030 is in use by pid 77"), task(5, "INSTALL_BE", "10.0.0.11", "RUNNING", ""), task(6, "INSTALL_BE", "10.0.0.12", "SUCCESS", "BE installed in /opt/doris/be from be")},
	{task(4, "INSTALL_FE", "10.0.0.11", "SUBMITTED", ""), task(5, "INSTALL_BE", "10.0.0.11", "FAILURE", strings.Repeat("x", 200)), task(6, "INSTALL_BE", "10.0.0.12", "SUCCESS", "BE installed in /opt/doris/be from be")},
	{task(4, "INSTALL_FE", "10.0.0.11", "SUCCESS", "FE installed in /opt/doris/fe from fe"), func() rest.Task {
		t := task(5, "INSTALL_BE", "10.0.0.11", "FAILURE", strings.Repeat("x", 200))
		t.Skip = "YES"
		return t
	}(), task(6, "INSTALL_BE", "10.0.0.12", "SUCCESS", "BE installed in /opt/doris/be from be")},
}

func run(p Printer) {
	p.Step("step 1/5 INSTALL_SERVICE")
	for i, tasks := range polls {
		p.Update(tasks)
		p.Update(tasks) // an unchanged poll prints nothing
		if i == 2 {
			p.Line("task 4 INSTALL_FE on 10.0.0.11 failed; last lines of its log:\n  port 9030 in use")
		}
	}
	p.StepDone("step INSTALL_SERVICE done in 2.0s")
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestPlainGolden(t *testing.T) {
	var b bytes.Buffer
	run(NewPlain(&b, clock(100*time.Millisecond)))
	golden(t, "plain.golden", b.Bytes())
}

func TestTTY(t *testing.T) {
	var b bytes.Buffer
	run(NewTTY(&b, clock(100*time.Millisecond), false, 120))
	out := b.String()
	if strings.Contains(out, red) || strings.Contains(out, green) {
		t.Error("colour codes without colour")
	}
	// Each redraw first moves up over the 3 task lines and clears them.
	if n := strings.Count(out, "\x1b[3A\x1b[J"); n < len(polls) {
		t.Errorf("%d redraws of the 3-line block, want at least %d:\n%q", n, len(polls), out)
	}
	// What stays on screen: the last drawing.
	last := out[strings.LastIndex(out, "\x1b[J")+len("\x1b[J"):]
	for _, want := range []string{"✓ INSTALL_FE", "FE installed in /opt/doris/fe from fe", "↷ INSTALL_BE", "SKIPPED", "step INSTALL_SERVICE done in 2.0s"} {
		if !strings.Contains(last, want) {
			t.Errorf("final screen lacks %q:\n%s", want, last)
		}
	}
	var c bytes.Buffer
	run(NewTTY(&c, clock(100*time.Millisecond), true, 120))
	if !strings.Contains(c.String(), red+"FAILURE"+reset) {
		t.Error("no red FAILURE with colour")
	}
}

// After Release (a question asked below the block) the next Update draws
// the block anew below, moving up over nothing.
func TestTTYRelease(t *testing.T) {
	var b bytes.Buffer
	p := NewTTY(&b, clock(time.Millisecond), false, 100)
	p.Step("step")
	p.Update(polls[0])
	p.Release()
	b.Reset()
	p.Update(polls[1])
	if strings.Contains(b.String(), "\x1b[") && strings.Contains(b.String(), "A\x1b[J") {
		t.Errorf("the update after Release moved the cursor up: %q", b.String())
	}
	if strings.Count(b.String(), "\n") != 3 {
		t.Errorf("want the 3-line block drawn again: %q", b.String())
	}
}
