package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// browser is one headless Chromium tab on the console.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string // screenshot folder
	n     int
	// timings are the pages' render times, gathered before each reload.
	timings []pageTiming
}

type pageTiming struct {
	Page string  `json:"page"`
	MS   float64 `json:"ms"`
}

// collectTimings takes the render times the page recorded so far.
func (b *browser) collectTimings() {
	b.t.Helper()
	b.timings = append(b.timings, eval[[]pageTiming](b, "read timings", `(() => { const t = window.__consoleTimings || []; window.__consoleTimings = []; return t; })()`)...)
}

// newBrowser starts Chromium with the flags this closed network needs
// (no background connections) and a user data dir of its own. The
// manager's certificate comes from its own CA, which this throwaway
// profile does not hold: certificate errors are ignored for it.
func newBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, shots: shots}
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, deadline.D(30*time.Second))
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.text())
	}
}

// text is the page's visible text, for failure messages.
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// shot saves a full-page PNG as NN-name.png.
func (b *browser) shot(name string) string {
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
	return p
}

// wait polls a JavaScript condition until it is true. An alert on the
// page (a refused call) ends the wait at once with its text.
func (b *browser) wait(what, cond string, limit time.Duration) {
	b.t.Helper()
	end := time.Now().Add(deadline.D(limit))
	expr := fmt.Sprintf(`(() => { const a = document.querySelector('[role=alert]'); if (a) return 'ALERT: ' + a.textContent; return (%s) ? 'OK' : ''; })()`, cond)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		cancel()
		switch {
		case err == nil && got == "OK":
			return
		case err == nil && strings.HasPrefix(got, "ALERT: "):
			b.shot("alert")
			b.t.Fatalf("%s: the page shows an error: %s", what, strings.TrimPrefix(got, "ALERT: "))
		}
		if time.Now().After(end) {
			b.shot("timeout")
			b.t.Fatalf("%s: not within %v (last error %v)\npage: %s", what, deadline.D(limit), err, b.text())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stepDone is the condition "the wizard shows step name with its tasks in state".
func stepIs(name, state string) string {
	return fmt.Sprintf(`(document.querySelector('#step-title')||{}).textContent?.includes('(%s)') && (document.querySelector('#tasks')||{dataset:{}}).dataset.state === '%s'`, name, state)
}

// setValue sets a form control's value as a person's edit would
// (input and change events), for selects and whole textareas.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	expr := fmt.Sprintf(`(() => { const n = document.querySelector(%s); if (!n) return false; n.value = %s;
		n.dispatchEvent(new Event('input', {bubbles: true})); n.dispatchEvent(new Event('change', {bubbles: true})); return n.value === %s; })()`, q, v, v)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("could not set %s to %.40q", sel, value)
		}
		return chromedp.Void{}, err
	}
}

// eval runs a JavaScript expression and returns its value.
func eval[T any](b *browser, what, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, deadline.D(30*time.Second))
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// TestConsoleWizard signs in, walks the whole wizard by clicking and
// typing, fails a config on purpose, reads the failed task's log, fixes
// and deploys again, builds the cluster and sees it in the cluster page.
func TestConsoleWizard(t *testing.T) {
	shots := os.Getenv("DM_CONSOLE_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "dm-console-shots-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{BinDir: binDir})
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the sandbox when the test failed:\n%s", s.Diagnose())
		}
		s.Close()
	})
	if err := s.StartManager(ctx); err != nil {
		t.Fatalf("start manager: %v", err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, s.Hosts.Keys.Ed25519, 0o600); err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, h := range s.Hosts.Hosts {
		hosts = append(hosts, h.Addr)
	}

	b := newBrowser(t, shots)

	// Sign in.
	b.run("open the console", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#login input[name=token]`)))
	b.shot("sign-in")
	keyboardSignIn(b, s.Token)
	b.wait("the clusters page", `document.querySelector('main').dataset.page === 'clusters'`, 20*time.Second)
	if eval[bool](b, "read document.cookie", `document.cookie.includes('dm_session') || document.cookie.includes('`+s.Token[:12]+`')`) {
		t.Errorf("the session cookie or the token is readable by the page's scripts")
	}

	// Step 0: hosts, a wrong SSH key (uploaded), package; then the right
	// key through the re-run form.
	wrongKey := filepath.Join(t.TempDir(), "id_wrong")
	if err := os.WriteFile(wrongKey, newKey(t), 0o600); err != nil {
		t.Fatal(err)
	}
	b.run("open the wizard", chromedp.Click(chromedp.CSS(`main a[href="#/wizard"]`)))
	b.wait("the hosts form", `!!document.querySelector('#step-hosts')`, 20*time.Second)
	b.run("fill in the hosts form",
		chromedp.SendKeys(chromedp.CSS(`#step-hosts input[name=clusterName]`), "console-demo"),
		chromedp.SendKeys(chromedp.CSS(`#step-hosts textarea[name=hosts]`), strings.Join(hosts, "\n")),
		chromedp.SetUploadFiles(chromedp.CSS(`#step-hosts input[name=sshKey]`), []string{wrongKey}),
		setValue(`#step-hosts input[name=installDir]`, sandbox.InstallDir),
		chromedp.SendKeys(chromedp.CSS(`#step-hosts input[name=packageUrl]`), s.PackageURL))
	b.shot("wizard-hosts")
	b.run("install the agents", chromedp.Click(chromedp.CSS(`#step-hosts button[type=submit]`)))
	b.wait("INSTALL_AGENT failed (wrong key)", stepIs("INSTALL_AGENT", "failed")+` && !!document.querySelector('#step-rerun')`, 3*time.Minute)
	if n := eval[int](b, "failed agents", `document.querySelectorAll('#tasks tbody .st-FAILURE').length`); n != len(hosts) {
		t.Fatalf("%d agents failed with the wrong key, want %d\npage: %s", n, len(hosts), b.text())
	}
	if got := eval[string](b, "the re-run form's hosts", `document.querySelector('#step-rerun textarea[name=hosts]').value`); len(strings.Fields(got)) != len(hosts) {
		t.Errorf("the re-run form names hosts %q, want the %d failed ones", got, len(hosts))
	}
	b.shot("wizard-agents-wrong-key")
	b.run("the right key in the re-run form", chromedp.SetUploadFiles(chromedp.CSS(`#step-rerun input[name=sshKey]`), []string{keyFile}),
		chromedp.Click(chromedp.CSS(`#step-rerun button[type=submit]`)))
	b.wait("INSTALL_AGENT done", stepIs("INSTALL_AGENT", "done"), 3*time.Minute)
	b.shot("wizard-agents-installed")

	// Step 1: FE FOLLOWER on hosts 1 and 2, OBSERVER on 3, BE everywhere, BROKER on 3.
	b.wait("the roles form", `!!document.querySelector('#step-roles')`, 10*time.Second)
	b.run("place the roles",
		setValue(fmt.Sprintf(`#step-roles select[name="fe-%s"]`, hosts[1]), "FOLLOWER"),
		setValue(fmt.Sprintf(`#step-roles select[name="fe-%s"]`, hosts[2]), "OBSERVER"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#step-roles input[name="broker-%s"]`, hosts[2]))),
		setValue(`#step-roles textarea[name=params]`, ""),
		chromedp.SendKeys(chromedp.CSS(`#step-roles textarea[name=params]`), "javaHome="+sandbox.JavaHome+"\nminOpenFiles=10000\nstartTimeout=120s\naliveTimeout=120s"))
	b.shot("wizard-roles")
	b.run("install the roles", chromedp.Click(chromedp.CSS(`#step-roles button[type=submit]`)))
	b.wait("INSTALL_SERVICE done", stepIs("INSTALL_SERVICE", "done"), 4*time.Minute)

	// Step 2: a bad BE config first (a relative storage path).
	b.wait("the configs form", `!!document.querySelector('#step-configs textarea[name="conf-BE"]')`, 10*time.Second)
	beConf := eval[string](b, "read the default BE config", `document.querySelector('#step-configs textarea[name="conf-BE"]').value`)
	if !strings.Contains(beConf, "storage_root_path = ${DORIS_HOME}/storage") || !strings.Contains(beConf, "priority_networks = ") {
		t.Fatalf("the BE config is not pre-filled with defaults: %q", beConf)
	}
	bad := strings.Replace(beConf, "storage_root_path = ${DORIS_HOME}/storage", "storage_root_path = storage", 1)
	b.run("deploy a bad BE config", setValue(`#step-configs textarea[name="conf-BE"]`, bad),
		chromedp.Click(chromedp.CSS(`#step-configs button[type=submit]`)))
	b.wait("DEPLOY_CONFIG failed", stepIs("DEPLOY_CONFIG", "failed"), 2*time.Minute)
	b.run("open the failed task's log", chromedp.Click(chromedp.CSS(`#tasks tr:has(.st-FAILURE) button[aria-label^="Log"]`)))
	b.wait("the failed task's log names the bad entry", `[...document.querySelectorAll('#tasks .logrow:not([hidden])')].some(r => r.textContent.includes('must be absolute') && !!r.querySelector('pre.tail'))`, 30*time.Second)
	t.Logf("the failed task's log as the page shows it:\n%s", eval[string](b, "read the log",
		`(() => { const r = document.querySelector('#tasks .logrow:not([hidden])'); r.scrollIntoView(); return r.innerText; })()`))
	b.shot("wizard-config-failed-log")

	// Retry runs the task again with the same (still bad) config: it fails again.
	failedID := eval[string](b, "the failed task's id", `document.querySelector('#tasks tr:has(.st-FAILURE)').dataset.task`)
	info := `fetch('/api/process/task/info/` + failedID + `').then(r => r.json()).then(e => e.data.status + ' ' + e.data.executorId + ' ' + e.data.startTime)`
	before := eval[string](b, "the failed task before the retry", info, chromedp.EvalAwaitPromise)
	b.run("retry the failed task", chromedp.Click(chromedp.CSS(`#tasks tr[data-task="`+failedID+`"] button[aria-label^="Retry"]`)))
	for end := time.Now().Add(deadline.D(time.Minute)); ; {
		now := eval[string](b, "the failed task after the retry", info, chromedp.EvalAwaitPromise)
		if now != before && strings.HasPrefix(now, "FAILURE ") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the retried task %s: %s, before the retry %s", failedID, now, before)
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.wait("the step shows the retried task failed", stepIs("DEPLOY_CONFIG", "failed"), 30*time.Second)

	// Skip it (the other BEs' configs still fail): shown as skipped; then
	// unskip it while the process is still at this step: a failure again.
	row := `#tasks tr[data-task="` + failedID + `"]`
	b.run("skip the failed task", chromedp.Click(chromedp.CSS(row+` button[aria-label^="Skip"]`)))
	b.wait("the task shown skipped", `!!document.querySelector('`+row+`.skipped .st-SKIPPED') && !!document.querySelector('`+row+` button[aria-label^="Unskip"]') && `+
		`document.querySelector('#tasks .note').textContent.includes(' 1 skipped')`, 30*time.Second)
	if txt := eval[string](b, "the skipped row", `document.querySelector('`+row+`').innerText`); !strings.Contains(txt, "left out of later steps") {
		t.Errorf("the skipped task's row does not say what skipping means: %q", txt)
	}
	b.shot("wizard-task-skipped")
	b.run("unskip it", chromedp.Click(chromedp.CSS(row+` button[aria-label^="Unskip"]`)))
	b.wait("the task failed again", `!!document.querySelector('`+row+` .st-FAILURE') && !document.querySelector('`+row+`.skipped') && `+
		`document.querySelector('#tasks .note').textContent.includes(' 0 skipped') && `+stepIs("DEPLOY_CONFIG", "failed"), 30*time.Second)

	// Fix it and deploy again (deployConfig replaces the step's tasks).
	b.run("fix the BE config", setValue(`#step-configs textarea[name="conf-BE"]`, beConf),
		chromedp.Click(chromedp.CSS(`#step-configs button[type=submit]`)))
	b.wait("DEPLOY_CONFIG done", stepIs("DEPLOY_CONFIG", "done")+` && !!document.querySelector('#step-start')`, 2*time.Minute)
	b.shot("wizard-configs-deployed")

	// Step 3: start.
	b.run("start the roles", chromedp.Click(chromedp.CSS(`#step-start button[type=submit]`)))
	b.wait("START_SERVICE done", stepIs("START_SERVICE", "done"), 5*time.Minute)
	b.shot("wizard-started")

	// Step 4: build.
	b.wait("the build form", `!!document.querySelector('#step-build')`, 10*time.Second)
	// By keyboard alone: from the content's start (where "Skip to content"
	// lands) Tab to the build form's labelled password field, Tab to its
	// button, Space presses it.
	b.run("to the content's start", check(`(document.querySelector('main').focus(), document.activeElement.id === 'main')`))
	if f := tabInto(b, "#step-build", 60); f.Tag != "INPUT" || f.Name != "Password for the root account (optional)" {
		t.Fatalf("Tab entered the build form at %s, want its password field", f.Summary)
	}
	b.key("Tab to the build button", kb.Tab)
	if f := b.focused("#step-build"); f.Tag != "BUTTON" || f.Name != "Build the cluster" || !f.Ring {
		t.Fatalf("the second Tab reached %s (focus ring %v), want the Build the cluster button", f.Summary, f.Ring)
	}
	b.key("press Space", " ")
	b.wait("BUILD_CLUSTER done", stepIs("BUILD_CLUSTER", "done")+` && !!document.querySelector('#step-finish')`, 5*time.Minute)
	if failed := eval[int](b, "count failed tasks", `document.querySelectorAll('#tasks .st-FAILURE').length`); failed != 0 {
		t.Errorf("%d tasks ended FAILURE", failed)
	}
	b.shot("wizard-built")
	b.collectTimings()
	b.run("finish", chromedp.Click(chromedp.CSS(`#step-finish button[type=submit]`)))

	// The cluster's page: every node UP (the status cache refreshes every 5 s).
	b.wait("the cluster page", `document.querySelector('main').dataset.page === 'cluster' && !!document.querySelector('#nodes')`, 30*time.Second)
	end := time.Now().Add(deadline.D(90 * time.Second))
	for {
		up := eval[int](b, "count nodes UP", `document.querySelectorAll('#nodes tbody .st-UP').length`)
		total := eval[int](b, "count nodes", `document.querySelectorAll('#nodes tbody tr').length`)
		if total == 7 && up == total {
			break
		}
		if time.Now().After(end) {
			b.shot("nodes-not-up")
			t.Fatalf("%d of %d nodes UP (want 7)\npage: %s", up, total, b.text())
		}
		time.Sleep(deadline.D(2 * time.Second))
		b.collectTimings()
		b.run("reload the cluster page", chromedp.Reload())
		b.wait("the cluster page", `document.querySelector('main').dataset.page === 'cluster' && !!document.querySelector('#nodes')`, 30*time.Second)
	}
	b.wait("hardware and roles filled in", `!document.querySelector('main [aria-busy]')`, 30*time.Second)
	hw := eval[int](b, "hardware rows", `document.querySelectorAll('#hardware tbody tr').length`)
	roles := eval[int](b, "role rows", `document.querySelectorAll('#roles tbody tr').length`)
	if hw != 3 || roles != 7 {
		t.Errorf("hardware rows %d (want 3), role rows %d (want 7)", hw, roles)
	}
	b.shot("cluster")
	b.run("phone-sized viewport", chromedp.EmulateViewport(390, 844))
	b.shot("cluster-phone")
	b.run("desktop viewport", chromedp.EmulateViewport(1280, 800))

	b.collectTimings() // the later reloads would drop them
	// Day 2: restart the broker through its dialog; the past install's
	// tasks and a log; the page with 50 nodes.
	dayTwo(b, 1, hosts[2])
	pastProcess(b)
	wideLayout(b, s.URL, 1)

	// Render times, measured in the page (performance.now around each
	// route, data fetched and shown), each page opened fresh as well.
	for _, page := range []string{"clusters", "wizard", "cluster/1"} {
		b.collectTimings()
		b.run("open "+page, chromedp.Navigate(s.URL+"/#/"+page), chromedp.Reload())
		b.wait("the "+page+" page", `!!document.querySelector('main').dataset.page && !document.querySelector('main [aria-busy]')`, 20*time.Second)
	}
	b.collectTimings()
	calls := eval[[]pageTiming](b, "the cluster page's calls", `performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/')).map((e) => ({ page: new URL(e.name).pathname + new URL(e.name).search, ms: e.duration }))`)
	for _, c := range calls {
		t.Logf("call %s: %.1f ms", c.Page, c.MS)
	}
	for _, tm := range b.timings {
		t.Logf("render %s: %.1f ms", tm.Page, tm.MS)
	}
	if raw, err := json.Marshal(b.timings); err == nil {
		_ = os.WriteFile(filepath.Join(shots, "timings.json"), raw, 0o644)
	}

	// Sign out: the session ends, the page asks for a token again.
	b.run("sign out", chromedp.Click(chromedp.CSS(`#signout`)))
	b.wait("the sign-in form", `!!document.querySelector('#login')`, 10*time.Second)
	if status := eval[int](b, "the API after sign-out", `fetch('/api/cluster').then(r => r.status)`, chromedp.EvalAwaitPromise); status != 401 {
		t.Errorf("GET /api/cluster after sign-out answered %d, want 401", status)
	}
}
