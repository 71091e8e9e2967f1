package console

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/crypto/ssh"
)

// focused describes document.activeElement: its tag, its accessible name
// (aria-label, the label it is tied to, aria-labelledby, or its text),
// whether the focus ring shows, and whether it sits in the selector given.
type focused struct {
	Tag     string `json:"tag"`
	Name    string `json:"name"`
	Ring    bool   `json:"ring"`
	Inside  bool   `json:"inside"`
	Summary string `json:"summary"`
}

func (b *browser) focused(inside string) focused {
	b.t.Helper()
	q, _ := json.Marshal(inside)
	return eval[focused](b, "read the focused element", fmt.Sprintf(`(() => {
		const e = document.activeElement;
		if (!e || e === document.body) return { tag: 'BODY', name: '', ring: false, inside: false, summary: 'body' };
		let name = e.getAttribute('aria-label') || '';
		if (!name && e.labels && e.labels.length) name = e.labels[0].textContent;
		if (!name && e.getAttribute('aria-labelledby')) name = e.getAttribute('aria-labelledby').split(' ').map((i) => (document.getElementById(i) || {}).textContent || '').join(' ');
		if (!name && (e.tagName === 'BUTTON' || e.tagName === 'A')) name = e.textContent;
		name = name.trim();
		const cs = getComputedStyle(e);
		const ring = e.matches(':focus-visible') && cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
		return { tag: e.tagName, name, ring, inside: !!e.closest(%s), summary: e.tagName + (e.id ? '#' + e.id : '') + ' ' + JSON.stringify(name) };
	})()`, q))
}

// key presses keys on whatever has the focus, as a person's keyboard does.
func (b *browser) key(what, keys string) {
	b.t.Helper()
	b.run(what, chromedp.KeyEvent(keys))
}

// keyboardSignIn signs in with the keyboard alone: the page puts the focus
// in the labelled token field, the token is typed, Tab reaches the Sign in
// button (focus ring shown) and Enter submits.
func keyboardSignIn(b *browser, token string) {
	t := b.t
	t.Helper()
	b.wait("the token field has the focus", `document.activeElement === document.querySelector('#login input[name=token]')`, 10*time.Second)
	if f := b.focused("#login"); f.Name != "API token" {
		t.Fatalf("the focused token field is labelled %q, want \"API token\"", f.Name)
	}
	b.key("type the token", token)
	b.key("Tab to the button", kb.Tab)
	f := b.focused("#login")
	if f.Tag != "BUTTON" || f.Name != "Sign in" || !f.Inside {
		t.Fatalf("after Tab the focus is on %s, want the Sign in button", f.Summary)
	}
	if !f.Ring {
		t.Errorf("the Sign in button shows no focus ring when reached by Tab")
	}
	b.key("press Enter", kb.Enter)
}

// tabInto presses Tab from where the focus is until it is inside sel. Every control the focus passes must have an accessible name and
// show its focus ring.
func tabInto(b *browser, sel string, limit int) focused {
	t := b.t
	t.Helper()
	var path []string
	for i := 0; i < limit; i++ {
		b.key("Tab", kb.Tab)
		f := b.focused(sel)
		path = append(path, f.Summary)
		if f.Tag == "BODY" {
			continue
		}
		if f.Name == "" {
			t.Errorf("Tab reached a control without a name: %s (path %s)", f.Summary, strings.Join(path, " > "))
		}
		if !f.Ring {
			t.Errorf("Tab reached %s, which shows no focus ring", f.Summary)
		}
		if f.Inside {
			return f
		}
	}
	t.Fatalf("%d Tabs did not reach %s: %s", limit, sel, strings.Join(path, " > "))
	return focused{}
}

// processCount is the number of processes of the cluster, from the API.
func processCount(b *browser, cluster int) int {
	return eval[int](b, "count processes", fmt.Sprintf(`fetch('/api/process?clusterId=%d').then(r => r.json()).then(e => e.data.length)`, cluster), chromedp.EvalAwaitPromise)
}

// dayTwo restarts the broker through the Restart dialog: Cancel changes
// nothing, the confirmed restart runs as a process whose tasks end SUCCESS
// in the page, and the process list shows it.
func dayTwo(b *browser, cluster int, brokerHost string) {
	t := b.t
	t.Helper()
	before := processCount(b, cluster)
	b.run("open the restart dialog", chromedp.Click(chromedp.CSS(`#cluster-actions button:nth-child(3)`)))
	b.wait("the restart dialog", `!!document.querySelector('dialog[open]') && document.querySelector('dialog[open] h2').textContent.startsWith('Restart cluster')`, 10*time.Second)
	b.shot("restart-dialog")
	b.run("cancel", chromedp.Click(chromedp.CSS(`dialog[open] button.secondary`)))
	b.wait("the dialog closed", `!document.querySelector('dialog')`, 10*time.Second)
	time.Sleep(time.Second) // what a wrongly started operation would need to show up
	if after := processCount(b, cluster); after != before {
		t.Fatalf("Cancel in the restart dialog: %d processes, before %d", after, before)
	}
	if eval[bool](b, "an operation shown", `!!document.querySelector('#operation table')`) {
		t.Fatalf("Cancel in the restart dialog started an operation in the page")
	}

	b.run("open the restart dialog again", chromedp.Click(chromedp.CSS(`#cluster-actions button:nth-child(3)`)))
	b.wait("the restart dialog", `!!document.querySelector('dialog[open]')`, 10*time.Second)
	label := fmt.Sprintf("BROKER on %s", brokerHost)
	lq, _ := json.Marshal(label)
	b.run("tick the broker", check(fmt.Sprintf(`(() => { const l = [...document.querySelectorAll('dialog[open] label')].find((l) => l.textContent === %s); if (!l) return false; l.click(); return l.control.checked; })()`, lq)))
	b.run("confirm the restart", chromedp.Click(chromedp.CSS(`dialog[open] button[value=ok]`)))
	b.wait("the restart's tasks end", `(document.querySelector('#operation [data-state]')||{dataset:{}}).dataset.state === 'done'`, 3*time.Minute)
	ok := eval[int](b, "restart tasks SUCCESS", `document.querySelectorAll('#operation tbody .st-SUCCESS').length`)
	all := eval[int](b, "restart tasks", `document.querySelectorAll('#operation tbody tr[data-task]').length`)
	if all == 0 || ok != all {
		t.Fatalf("the restart shows %d tasks, %d SUCCESS\npage: %s", all, ok, b.text())
	}
	if !strings.Contains(b.text(), brokerHost) {
		t.Errorf("the restart's tasks do not name the broker's host %s", brokerHost)
	}
	b.wait("the process list shows the restart", `[...document.querySelectorAll('#processes tbody tr')].some((r) => r.textContent.includes('RESTART') && !!r.querySelector('.st-SUCCESS'))`, 30*time.Second)
	if after := processCount(b, cluster); after != before+1 {
		t.Errorf("after one confirmed restart %d processes, before %d", after, before)
	}
	b.shot("restart-done")
}

// pastProcess opens the finished install's tasks from the process list
// and reads one task's log there; a finished process offers no retry,
// skip or unskip.
func pastProcess(b *browser) {
	t := b.t
	t.Helper()
	b.run("open the install's tasks", chromedp.Click(chromedp.CSS(`#processes tr:has(td:nth-child(2)) button[aria-label*="(BUILD_CLUSTER)"]`)))
	b.wait("the install's tasks", `document.querySelectorAll('#process-tasks tbody tr[data-task]').length > 0 && (document.querySelector('#process-tasks [data-state]')||{dataset:{}}).dataset.state === 'done'`, 20*time.Second)
	if n := eval[int](b, "action buttons", `document.querySelectorAll('#process-tasks button[aria-label^="Retry"], #process-tasks button[aria-label^="Skip"], #process-tasks button[aria-label^="Unskip"]').length`); n != 0 {
		t.Errorf("a finished process's tasks offer %d retry/skip/unskip buttons", n)
	}
	b.run("open a task's log", chromedp.Click(chromedp.CSS(`#process-tasks tbody tr[data-task] button[aria-label^="Log"]`)))
	b.wait("the task's log", `!!document.querySelector('#process-tasks .logrow:not([hidden]) pre.tail')`, 20*time.Second)
	log := eval[string](b, "read the log", `(() => { const r = document.querySelector('#process-tasks .logrow:not([hidden])'); r.scrollIntoView(); return r.innerText; })()`)
	t.Logf("a past task's log as the page shows it:\n%s", log)
	if !strings.Contains(log, "answered:") || !strings.Contains(log, "Log of task") {
		t.Errorf("the past task's log row lacks its answer or log: %q", log)
	}
	b.shot("past-process-log")
}

// wideLayout checks the cluster page with 50 nodes at 1280x800 and at a
// phone's 390x844: the page itself never scrolls sideways (wide tables
// scroll inside their own box). Only the layout is tested here: the status
// call is answered by the test in the browser with 50 generated nodes of
// the real cluster's name; hardware, roles and processes stay real.
func wideLayout(b *browser, baseURL string, cluster int) {
	t := b.t
	t.Helper()
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	name := eval[string](b, "the cluster's name", fmt.Sprintf(`fetch('/api/cluster/%d/status').then(r => r.json()).then(e => e.data.name)`, cluster), chromedp.EvalAwaitPromise)
	nodes := make([]map[string]any, 50)
	for i := range nodes {
		role := []string{"FE", "BE", "BE", "BE", "BROKER"}[i%5]
		nodes[i] = map[string]any{"host": fmt.Sprintf("doris-node-%02d.rack-%d.example.internal", i, i/10), "role": role, "feNodeType": nil,
			"master": i == 0, "status": "UP", "alive": true, "version": "doris-2.0.3-rc04-a3f2b9c", "agent": "RUNNING",
			"lastChecked": "2024-05-03T10:00:05.000+00:00", "detail": nil}
		if role == "FE" {
			nodes[i]["feNodeType"] = "FOLLOWER"
		}
		if i%7 == 3 {
			nodes[i]["status"], nodes[i]["alive"] = "DOWN", false
			nodes[i]["detail"] = "the BE process is not running: /opt/doris/be/log/be.out ends with 'fail to open StorageEngine, res=[E-200]storage_root_path=/data/doris/storage-with-a-long-name'"
		}
	}
	body, err := json.Marshal(map[string]any{"msg": "success", "code": 0,
		"data": map[string]any{"clusterId": cluster, "name": name, "destroyed": false, "nodes": nodes}})
	if err != nil {
		t.Fatal(err)
	}
	events := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: fmt.Sprintf("*/api/cluster/%d/status", cluster)}}}); err != nil {
		t.Fatalf("intercept the status call: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}, Body: body})
		}
	}()
	defer func() {
		if _, err := chromedp.Call(b.ctx, fetch.Disable, struct{}{}); err != nil {
			t.Logf("stop intercepting: %v", err)
		}
		cancel()
		<-done
	}()
	for _, vp := range []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		b.run("viewport "+vp.name, chromedp.EmulateViewport(vp.w, vp.h), chromedp.Navigate(fmt.Sprintf("%s/#/cluster/%d", baseURL, cluster)), chromedp.Reload())
		b.wait("50 nodes", `document.querySelector('main').dataset.page === 'cluster' && document.querySelectorAll('#nodes tbody tr').length === 50 && !document.querySelector('main [aria-busy]')`, 30*time.Second)
		type widths struct {
			Page  int `json:"page"`
			View  int `json:"view"`
			Table int `json:"table"`
			Box   int `json:"box"`
		}
		w := eval[widths](b, "widths", `({ page: document.scrollingElement.scrollWidth, view: window.innerWidth,
			table: document.querySelector('#nodes').scrollWidth, box: document.querySelector('#nodes').parentElement.clientWidth })`)
		t.Logf("50 nodes, %s %dx%d: page %d px wide in a %d px window; node table %d px in a %d px box", vp.name, vp.w, vp.h, w.Page, w.View, w.Table, w.Box)
		if w.Page > w.View {
			t.Errorf("%s: with 50 nodes the page is %d px wide in a %d px window", vp.name, w.Page, w.View)
		}
		b.shot("cluster-50-nodes-" + vp.name)
	}
	b.run("desktop viewport", chromedp.EmulateViewport(1280, 800))
	// The render times of these loads are the test's own answer's, not
	// the manager's: they stay out of BENCHMARKS.md.
	b.run("drop the stubbed loads' timings", check(`(window.__consoleTimings = [], true)`))
}

// newKey is a fresh ed25519 key in OpenSSH PEM that no test host trusts.
func newKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(blk)
}

// check is an action that evaluates a JavaScript expression that must be true.
func check(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("false: %.80s", expr)
		}
		return chromedp.Void{}, err
	}
}
