package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// Option adjusts Conformance.
type Option func(*conformance)

// WithBinary checks a built plugin binary of the role too: its "describe"
// output must agree with the role's Info, and it is started through the
// real go-plugin handshake (StartBinary) so that every call "through gRPC"
// goes to that process. A binary that crashes, exits or hangs at start
// fails the test with the last lines it wrote to stderr.
func WithBinary(path string) Option { return func(c *conformance) { c.binary = path } }

// WithStartTimeout bounds the start of the WithBinary binary (default
// DefaultStartTimeout).
func WithStartTimeout(d time.Duration) Option { return func(c *conformance) { c.startTimeout = d } }

// WithRequest sets the request the calls use (default: one node at
// 10.0.0.1 with the role's name, install dir /opt/doris, in a one-node
// cluster).
func WithRequest(req sdk.Request) Option { return func(c *conformance) { c.req = &req } }

// WithHost sets a constructor of scripted hosts for the round-trip calls,
// so a role can get past its first host call (default: an empty FakeHost).
func WithHost(newHost func() *FakeHost) Option { return func(c *conformance) { c.newHost = newHost } }

// WithCallTimeout bounds how long one call may take before the role is
// reported as hanging (default 30s).
func WithCallTimeout(d time.Duration) Option { return func(c *conformance) { c.timeout = d } }

type conformance struct {
	binary       string
	startTimeout time.Duration
	req          *sdk.Request
	newHost      func() *FakeHost
	timeout      time.Duration
}

type method struct {
	name string
	call func(sdk.Role, context.Context, sdk.Host, sdk.Request) (sdk.Result, error)
}

var methods = []method{
	{"Precheck", sdk.Role.Precheck},
	{"Install", sdk.Role.Install},
	{"Configure", sdk.Role.Configure},
	{"Start", sdk.Role.Start},
	{"Stop", sdk.Role.Stop},
	{"Status", sdk.Role.Status},
	{"Remove", sdk.Role.Remove},
}

// optionalMethods are checked for roles that implement them.
var optionalMethods = []struct {
	method
	capability string
	implements func(sdk.Role) bool
}{
	{method{"Register", func(r sdk.Role, ctx context.Context, h sdk.Host, q sdk.Request) (sdk.Result, error) {
		return r.(sdk.Member).Register(ctx, h, q)
	}}, sdk.CapMembership, is[sdk.Member]},
	{method{"Unregister", func(r sdk.Role, ctx context.Context, h sdk.Host, q sdk.Request) (sdk.Result, error) {
		return r.(sdk.Member).Unregister(ctx, h, q)
	}}, sdk.CapMembership, is[sdk.Member]},
	{method{"Upgrade", func(r sdk.Role, ctx context.Context, h sdk.Host, q sdk.Request) (sdk.Result, error) {
		return r.(sdk.Upgrader).Upgrade(ctx, h, q)
	}}, sdk.CapUpgrade, is[sdk.Upgrader]},
	{method{"Reconfigure", func(r sdk.Role, ctx context.Context, h sdk.Host, q sdk.Request) (sdk.Result, error) {
		return r.(sdk.Reconfigurer).Reconfigure(ctx, h, q)
	}}, sdk.CapReconfigure, is[sdk.Reconfigurer]},
}

func is[T any](r sdk.Role) bool { _, ok := r.(T); return ok }

// methodsOf lists the methods role implements.
func methodsOf(role sdk.Role) []method {
	out := append([]method(nil), methods...)
	for _, m := range optionalMethods {
		if m.implements(role) {
			out = append(out, m.method)
		}
	}
	return out
}

// Conformance checks that a role behaves as the manager expects, directly
// and across the real gRPC boundary (Connect, or with WithBinary the built
// binary started through the go-plugin handshake):
//   - Info is sane: name, an upper-case role, a semver version without a
//     leading "v", and this SDK's API major; "describe" prints the same;
//   - every method returns a Result or an *sdk.Failure with a summary, never
//     panics, and gives the same kind of outcome through the wire as
//     directly (facts and failures round-trip);
//   - a host that fails every call yields Failures that round-trip with
//     their summary and retryable flag intact;
//   - every method returns promptly for an already cancelled context and
//     when its context is cancelled while a host call blocks;
//   - requests naming unknown hosts, empty paths and missing fields do not
//     panic.
func Conformance(t *testing.T, role sdk.Role, opts ...Option) {
	t.Helper()
	c := &conformance{newHost: NewFakeHost, timeout: 30 * time.Second}
	for _, o := range opts {
		o(c)
	}
	remote := c.remote(t, role)
	methods := methodsOf(role)

	var info sdk.Info
	t.Run("Info", func(t *testing.T) {
		info = c.checkInfo(t, role, remote)
	})
	req := c.request(info)

	t.Run("RoundTrip", func(t *testing.T) {
		for _, m := range methods {
			t.Run(m.name, func(t *testing.T) {
				local, lerr := c.run(t, "direct", m, role, c.newHost(), req)
				wire, werr := c.run(t, "through gRPC", m, remote, c.newHost(), req)
				compareOutcomes(t, local, lerr, wire, werr)
			})
		}
	})

	t.Run("FailureRoundTrip", func(t *testing.T) {
		for _, m := range methods {
			t.Run(m.name, func(t *testing.T) {
				_, lerr := c.run(t, "direct", m, role, failingHost(), req)
				_, werr := c.run(t, "through gRPC", m, remote, failingHost(), req)
				if lerr == nil || werr == nil {
					return // the role may not need the host for this call
				}
				lf, wf := sdk.AsFailure(lerr), sdk.AsFailure(werr)
				if lf.Summary != wf.Summary || lf.Retryable != wf.Retryable {
					t.Errorf("failure changed on the wire: direct %+v, through gRPC %+v", *lf, *wf)
				}
			})
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		for _, m := range methods {
			t.Run(m.name, func(t *testing.T) {
				for _, r := range []sdk.Role{role, remote} {
					h := c.newHost()
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					_, err := c.callBounded(t, ctx, m, r, h, req)
					if err == nil && len(h.Calls()) > 0 {
						t.Errorf("%s succeeded with a cancelled context after %d host calls", m.name, len(h.Calls()))
					}
				}
			})
		}
	})

	t.Run("CancelWhileBlocked", func(t *testing.T) {
		for _, m := range methods {
			t.Run(m.name, func(t *testing.T) {
				for _, r := range []sdk.Role{role, remote} {
					bh := &blockingHost{FakeHost: c.newHost(), entered: make(chan struct{})}
					ctx, cancel := context.WithCancel(context.Background())
					go func() {
						select {
						case <-bh.entered:
							cancel()
						case <-ctx.Done():
						}
					}()
					_, err := c.callBounded(t, ctx, m, r, bh, req)
					cancel()
					if bh.blocked() && err == nil {
						t.Errorf("%s succeeded although a host call it made was cancelled", m.name)
					}
				}
			})
		}
	})

	t.Run("OddRequests", func(t *testing.T) {
		odd := []sdk.Request{
			{},
			{Node: sdk.Node{Host: "no-such-host.invalid", Role: info.Role, InstallDir: "/nonexistent/../x"}},
			{Node: sdk.Node{Host: "10.255.255.1", Role: info.Role, InstallDir: "relative/dir", Ports: map[string]int{"http_port": -1}},
				Targets: []sdk.Node{{}}, Params: map[string]string{"": ""}, Conf: "=\n\x00\n"},
		}
		for i, r := range odd {
			for _, m := range methods {
				t.Run(fmt.Sprintf("%s/%d", m.name, i), func(t *testing.T) {
					c.run(t, "direct", m, role, c.newHost(), r)
					c.run(t, "through gRPC", m, remote, c.newHost(), r)
				})
			}
		}
	})
}

// remote is the manager's side of the role: the WithBinary process, or
// role served in-process behind the gRPC transport.
func (c *conformance) remote(t *testing.T, role sdk.Role) *sdk.RoleClient {
	t.Helper()
	if c.binary == "" {
		return Connect(t, role)
	}
	rc, err := StartBinary(t, c.binary, c.startTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func (c *conformance) checkInfo(t *testing.T, role sdk.Role, remote sdk.Role) sdk.Info {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	info, err := role.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if err := info.Validate(); err != nil {
		t.Errorf("Info breaks the rules the manager enforces: %v", err)
	}
	for _, m := range optionalMethods {
		if has, impl := info.Has(m.capability), m.implements(role); has != impl {
			t.Errorf("capability %q announced: %v, but %s implemented: %v (announce exactly what the role implements)", m.capability, has, m.name, impl)
		}
	}
	if info.APIMinor < 0 {
		t.Errorf("Info.APIMinor = %d", info.APIMinor)
	}
	var buf bytes.Buffer
	if err := sdk.Describe(ctx, role, &buf); err != nil {
		t.Errorf("describe: %v", err)
	} else {
		checkDescribe(t, "sdk.Describe", buf.Bytes(), info)
	}
	if c.binary != "" {
		out, err := exec.CommandContext(ctx, c.binary, sdk.DescribeArg).Output()
		if err != nil {
			t.Errorf("%s describe: %v", c.binary, err)
		} else {
			checkDescribe(t, c.binary+" describe", out, info)
		}
	}
	winfo, err := remote.Info(ctx)
	if err != nil {
		t.Errorf("Info through gRPC: %v", err)
	} else if !reflect.DeepEqual(normInfo(winfo), normInfo(info)) {
		t.Errorf("Info through gRPC = %+v, direct %+v", winfo, info)
	}
	return info
}

func checkDescribe(t *testing.T, what string, out []byte, info sdk.Info) {
	var got sdk.Info
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Errorf("%s printed %q, not an Info JSON object: %v", what, out, err)
		return
	}
	if !reflect.DeepEqual(normInfo(got), normInfo(info)) {
		t.Errorf("%s = %+v, Info = %+v", what, got, info)
	}
}

func normInfo(i sdk.Info) sdk.Info {
	if len(i.Capabilities) == 0 {
		i.Capabilities = nil
	}
	if len(i.Params) == 0 {
		i.Params = nil
	}
	if len(i.Order.After) == 0 {
		i.Order.After = nil
	}
	return i
}

func (c *conformance) request(info sdk.Info) sdk.Request {
	if c.req != nil {
		return *c.req
	}
	node := sdk.Node{Host: "10.0.0.1", Role: info.Role, InstallDir: "/opt/roles", Home: path.Join("/opt/roles", info.HomeDir())}
	return sdk.Request{
		TaskID:  1,
		Node:    node,
		Cluster: sdk.Cluster{ID: 1, Name: "conformance", Nodes: []sdk.Node{node}},
		Conf:    "# conformance\n",
	}
}

// run calls one method with a deadline and reports panics and hangs as test
// errors. A returned error must be a Failure with a summary.
func (c *conformance) run(t *testing.T, how string, m method, r sdk.Role, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := c.callBounded(t, ctx, m, r, h, req)
	if err != nil {
		f := sdk.AsFailure(err)
		if strings.TrimSpace(f.Summary) == "" {
			t.Errorf("%s %s: failure without a summary: %#v", how, m.name, err)
		}
		if strings.Contains(f.Summary, "panicked") {
			t.Errorf("%s %s: %s", how, m.name, f.Summary)
		}
	}
	return res, err
}

// callBounded runs the call in a goroutine so that a hanging or panicking
// role fails the test instead of stalling or crashing it.
func (c *conformance) callBounded(t *testing.T, ctx context.Context, m method, r sdk.Role, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	t.Helper()
	type outcome struct {
		res   sdk.Result
		err   error
		panic any
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{panic: p}
			}
		}()
		res, err := m.call(r, ctx, h, req)
		done <- outcome{res: res, err: err}
	}()
	bound := time.NewTimer(c.timeout + 5*time.Second)
	defer bound.Stop()
	select {
	case o := <-done:
		if o.panic != nil {
			t.Errorf("%s panicked: %v", m.name, o.panic)
			return sdk.Result{}, fmt.Errorf("panic: %v", o.panic)
		}
		return o.res, o.err
	case <-bound.C:
		t.Errorf("%s did not return within %s of its context's end", m.name, c.timeout+5*time.Second)
		return sdk.Result{}, errors.New("hang")
	}
}

func compareOutcomes(t *testing.T, local sdk.Result, lerr error, wire sdk.Result, werr error) {
	t.Helper()
	switch {
	case (lerr == nil) != (werr == nil):
		t.Errorf("outcome differs: direct err=%v, through gRPC err=%v", lerr, werr)
	case lerr != nil:
		var f *sdk.Failure
		if !errors.As(werr, &f) {
			t.Errorf("through gRPC the error is %T (%v), want *sdk.Failure", werr, werr)
		}
		if lf, wf := sdk.AsFailure(lerr), sdk.AsFailure(werr); lf.Retryable != wf.Retryable {
			t.Errorf("retryable differs: direct %v, through gRPC %v", lf.Retryable, wf.Retryable)
		}
	default:
		if !sameKeys(local.Facts, wire.Facts) {
			t.Errorf("facts differ: direct %v, through gRPC %v", local.Facts, wire.Facts)
		}
	}
}

func sameKeys(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

var errUnreachable = errors.New("sdktest: host unreachable")

// failingHost fails every call with the same error.
func failingHost() *FakeHost {
	h := NewFakeHost()
	h.FailAll(errUnreachable)
	return h
}

// blockingHost blocks its first Exec, Download, Query or HTTPGet until ctx
// is done, and signals entered when it starts blocking.
type blockingHost struct {
	*FakeHost
	entered chan struct{}
	once    sync.Once
	did     bool
	mu      sync.Mutex
}

func (b *blockingHost) block(ctx context.Context) error {
	first := false
	b.once.Do(func() { first = true })
	if !first {
		return ctx.Err()
	}
	b.mu.Lock()
	b.did = true
	b.mu.Unlock()
	close(b.entered)
	<-ctx.Done()
	return ctx.Err()
}

func (b *blockingHost) blocked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.did
}

func (b *blockingHost) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	if err := b.block(ctx); err != nil {
		return sdk.ExecResult{}, err
	}
	return b.FakeHost.Exec(ctx, cmd)
}

func (b *blockingHost) Download(ctx context.Context, d sdk.Download) (sdk.DownloadResult, error) {
	if err := b.block(ctx); err != nil {
		return sdk.DownloadResult{}, err
	}
	return b.FakeHost.Download(ctx, d)
}

func (b *blockingHost) Query(ctx context.Context, fe, sql string) (sdk.Rows, error) {
	if err := b.block(ctx); err != nil {
		return sdk.Rows{}, err
	}
	return b.FakeHost.Query(ctx, fe, sql)
}

func (b *blockingHost) HTTPPost(ctx context.Context, url, contentType string, body []byte) (sdk.HTTPResponse, error) {
	if err := b.block(ctx); err != nil {
		return sdk.HTTPResponse{}, err
	}
	return b.FakeHost.HTTPPost(ctx, url, contentType, body)
}

func (b *blockingHost) HTTPGet(ctx context.Context, url string) (sdk.HTTPResponse, error) {
	if err := b.block(ctx); err != nil {
		return sdk.HTTPResponse{}, err
	}
	return b.FakeHost.HTTPGet(ctx, url)
}
