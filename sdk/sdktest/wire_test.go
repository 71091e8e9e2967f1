package sdktest_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// funcRole runs fn for every method, so a test can act as the plugin.
type funcRole struct {
	fn func(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error)
}

func (funcRole) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "doris-role-func", Role: "FUNC", Version: "0.1.0", APIMajor: sdk.APIMajor}, nil
}
func (r funcRole) Precheck(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Configure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Stop(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Status(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Register(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Remove(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Upgrade(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}
func (r funcRole) Reconfigure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	return r.fn(ctx, h, req)
}

func fullRequest() sdk.Request {
	fe := sdk.Node{Host: "10.0.0.1", Role: "FE", InstallDir: "/opt/doris", Home: "/opt/doris/fe",
		Labels: map[string]string{"feNodeType": "FOLLOWER", "master": "true"},
		Ports:  map[string]int{"http_port": 8030, "query_port": 9030},
		Facts:  sdk.Facts{"running": "true", "port.http_port": "8030"}}
	be := sdk.Node{Host: "10.0.0.2", Role: "BE", InstallDir: "/opt/doris", Skipped: true}
	return sdk.Request{
		TaskID: 42, Node: fe,
		Cluster:    sdk.Cluster{ID: 7, Name: "c1", Nodes: []sdk.Node{fe, be}},
		PackageURL: "http://10.0.0.9/doris.tar.gz", PackageSHA256: strings.Repeat("ab", 32),
		PackageSHA512: strings.Repeat("cd", 64),
		Conf:          "http_port = 8030\n", AutoFix: true, Targets: []sdk.Node{be},
		Params: map[string]string{"k": "v"},
		Force:  true, Purge: true, DryRun: true,
	}
}

func TestRequestResultAndFailureRoundTrip(t *testing.T) {
	want := fullRequest()
	var got sdk.Request
	role := funcRole{fn: func(_ context.Context, _ sdk.Host, req sdk.Request) (sdk.Result, error) {
		got = req
		if req.Params["fail"] == "" {
			return sdk.Result{Summary: "ok", Detail: "d", Facts: sdk.Facts{"port.http_port": "8030"},
				Changes: []sdk.Change{{Key: "a", Old: "1", New: "2", Impact: sdk.ImpactLive}}}, nil
		}
		return sdk.Result{}, &sdk.Failure{Summary: "port 8030 is in use: free it or change http_port", Detail: "ss output", Retryable: true}
	}}
	rc := sdktest.Connect(t, role)
	ctx := context.Background()
	res, err := rc.Configure(ctx, sdktest.NewFakeHost(), want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request changed on the wire:\n got %+v\nwant %+v", got, want)
	}
	if wantRes := (sdk.Result{Summary: "ok", Detail: "d", Facts: sdk.Facts{"port.http_port": "8030"},
		Changes: []sdk.Change{{Key: "a", Old: "1", New: "2", Impact: sdk.ImpactLive}}}); !reflect.DeepEqual(res, wantRes) {
		t.Errorf("result = %+v, want %+v", res, wantRes)
	}

	req := want
	req.Params = map[string]string{"fail": "1"}
	_, err = rc.Start(ctx, sdktest.NewFakeHost(), req)
	var f *sdk.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %T %v, want *sdk.Failure", err, err)
	}
	if wantF := (sdk.Failure{Summary: "port 8030 is in use: free it or change http_port", Detail: "ss output", Retryable: true}); *f != wantF {
		t.Errorf("failure = %+v, want %+v", *f, wantF)
	}
}

func TestPanicBecomesFailure(t *testing.T) {
	rc := sdktest.Connect(t, funcRole{fn: func(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
		panic("boom")
	}})
	_, err := rc.Install(context.Background(), sdktest.NewFakeHost(), sdk.Request{})
	var f *sdk.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Summary, "panicked in Install: boom") {
		t.Fatalf("err = %v, want a failure naming the panic", err)
	}
	// The plugin survives its role's panic.
	if _, err := rc.Info(context.Background()); err != nil {
		t.Errorf("Info after panic: %v", err)
	}
}

// TestHostCallbacks drives every Host method from the plugin side through
// the broker and checks what the manager's Host saw and what came back.
func TestHostCallbacks(t *testing.T) {
	fh := sdktest.NewFakeHost()
	bigOut := strings.Repeat("line of output\n", 4096)
	fh.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
		return sdk.ExecResult{ExitCode: 3, Output: bigOut}, nil
	}, "sh")
	fh.SetFile("/opt/doris/fe/log/fe.out", []byte("0123456789"), 0o644)
	fh.QueryRows("SHOW FRONTENDS", sdk.Rows{Columns: []string{"Host", "Alive"}, Values: [][]string{{"10.0.0.1", "true"}, {"10.0.0.3", ""}}})
	fh.HTTPGetResponse("http://10.0.0.1:8030/", 503, "starting")

	cmd := sdk.Command{Argv: []string{"sh", "-c", `echo "$1"`, "sh", "it's; $(data)"}, Env: map[string]string{"JAVA_HOME": "/usr/lib/jvm"},
		Dir: "/opt/doris", NoFile: 65536, Timeout: 90 * time.Second, Detach: true, Stdin: []byte("in")}
	type seen struct {
		exec    sdk.ExecResult
		read    []byte
		tail    []byte
		missing error
		dl      sdk.DownloadResult
		rows    sdk.Rows
		http    sdk.HTTPResponse
		qerr    error
	}
	var s seen
	role := funcRole{fn: func(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
		var err error
		if s.exec, err = h.Exec(ctx, cmd); err != nil {
			return sdk.Result{}, err
		}
		if err := h.WriteFile(ctx, "/opt/doris/fe/conf/fe.conf", []byte("a = 1\n"), 0o600); err != nil {
			return sdk.Result{}, err
		}
		if s.read, err = h.ReadFile(ctx, "/opt/doris/fe/conf/fe.conf", 0); err != nil {
			return sdk.Result{}, err
		}
		if s.tail, err = h.ReadFile(ctx, "/opt/doris/fe/log/fe.out", 4); err != nil {
			return sdk.Result{}, err
		}
		_, s.missing = h.ReadFile(ctx, "/nope", 0)
		if s.dl, err = h.Download(ctx, sdk.Download{URL: "http://x/p.tar.gz", SHA256: "AB", SHA512: "CD", Dest: "/opt/doris/pkg", Unpack: true}); err != nil {
			return sdk.Result{}, err
		}
		if s.rows, err = h.Query(ctx, "10.0.0.1:9030", "SHOW FRONTENDS"); err != nil {
			return sdk.Result{}, err
		}
		_, s.qerr = h.Query(ctx, "10.0.0.1:9030", "SHOW BROKER")
		if s.http, err = h.HTTPGet(ctx, "http://10.0.0.1:8030/api/bootstrap"); err != nil {
			return sdk.Result{}, err
		}
		h.Logf("done with %d", 7)
		return sdk.Result{Summary: "ok"}, nil
	}}
	rc := sdktest.Connect(t, role)
	if _, err := rc.Start(context.Background(), fh, sdk.Request{}); err != nil {
		t.Fatal(err)
	}

	if ex := fh.CallsOf("Exec"); len(ex) != 1 || !reflect.DeepEqual(ex[0].Command, cmd) {
		t.Errorf("host saw exec %+v, want %+v", ex, cmd)
	}
	if s.exec.ExitCode != 3 || s.exec.Output != bigOut || s.exec.LogPath == "" {
		t.Errorf("exec result: code %d, %d bytes, log %q", s.exec.ExitCode, len(s.exec.Output), s.exec.LogPath)
	}
	if f, ok := fh.File("/opt/doris/fe/conf/fe.conf"); !ok || string(f.Data) != "a = 1\n" || f.Mode != 0o600 {
		t.Errorf("written file = %+v %v", f, ok)
	}
	if string(s.read) != "a = 1\n" || string(s.tail) != "6789" {
		t.Errorf("read %q, tail %q", s.read, s.tail)
	}
	if !errors.Is(s.missing, sdk.ErrNotExist) || !strings.Contains(s.missing.Error(), "/nope") {
		t.Errorf("missing file error = %v, want ErrNotExist naming the path", s.missing)
	}
	if d := fh.CallsOf("Download"); len(d) != 1 || d[0].Download != (sdk.Download{URL: "http://x/p.tar.gz", SHA256: "AB", SHA512: "CD", Dest: "/opt/doris/pkg", Unpack: true}) {
		t.Errorf("host saw download %+v", d)
	}
	if s.dl.Path != "/opt/doris/pkg" || s.dl.SHA256 != "ab" || s.dl.SHA512 != "cd" {
		t.Errorf("download result %+v", s.dl)
	}
	if s.rows.Col(0, "Alive") != "true" || s.rows.Col(1, "Host") != "10.0.0.3" || len(s.rows.Values) != 2 {
		t.Errorf("rows %+v", s.rows)
	}
	if s.qerr == nil || !strings.Contains(s.qerr.Error(), "SHOW BROKER") {
		t.Errorf("query error = %v, want the host's message", s.qerr)
	}
	if s.http.Status != 503 || string(s.http.Body) != "starting" {
		t.Errorf("http %+v", s.http)
	}
	if logs := fh.Logs(); len(logs) != 1 || logs[0] != "done with 7" {
		t.Errorf("logs %q", logs)
	}
}

// TestCancelReachesHost checks that cancelling the manager's call cancels a
// Host call the plugin is blocked in, and that the plugin sees
// context.Canceled.
func TestCancelReachesHost(t *testing.T) {
	entered := make(chan struct{})
	fh := sdktest.NewFakeHost()
	hostCtxDone := make(chan struct{})
	var pluginErr error
	role := funcRole{fn: func(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
		_, pluginErr = h.Exec(ctx, sdk.Command{Argv: []string{"sleep", "1000"}})
		return sdk.Result{}, pluginErr
	}}
	blocking := &ctxHost{FakeHost: fh, entered: entered, done: hostCtxDone}
	rc := sdktest.Connect(t, role)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := rc.Start(ctx, blocking, sdk.Request{})
	if err == nil {
		t.Fatal("cancelled call succeeded")
	}
	<-hostCtxDone // the host's Exec saw its context end
}

type ctxHost struct {
	*sdktest.FakeHost
	entered, done chan struct{}
}

func (c *ctxHost) Exec(ctx context.Context, cmd sdk.Command) (sdk.ExecResult, error) {
	close(c.entered)
	<-ctx.Done()
	close(c.done)
	return sdk.ExecResult{}, ctx.Err()
}

func TestOptionalMethodNotImplemented(t *testing.T) {
	type onlyRole struct{ sdk.Role }
	rc := sdktest.Connect(t, onlyRole{funcRole{fn: func(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
		return sdk.Result{Summary: "ok"}, nil
	}}})
	ctx := context.Background()
	req := sdk.Request{Node: sdk.Node{Role: "FUNC"}}
	for name, call := range map[string]func() error{
		"Register":    func() error { _, err := rc.Register(ctx, sdktest.NewFakeHost(), req); return err },
		"Unregister":  func() error { _, err := rc.Unregister(ctx, sdktest.NewFakeHost(), req); return err },
		"Upgrade":     func() error { _, err := rc.Upgrade(ctx, sdktest.NewFakeHost(), req); return err },
		"Reconfigure": func() error { _, err := rc.Reconfigure(ctx, sdktest.NewFakeHost(), req); return err },
	} {
		var f *sdk.Failure
		if err := call(); !errors.As(err, &f) || !strings.Contains(f.Summary, name+" is not supported by the FUNC plugin") {
			t.Errorf("%s on a role without it: %v, want a Failure saying it is not supported", name, err)
		}
	}
	if res, err := rc.Remove(ctx, sdktest.NewFakeHost(), req); err != nil || res.Summary != "ok" {
		t.Errorf("Remove = %+v, %v", res, err)
	}
}

func TestHTTPPostAndExecPidCrossTheWire(t *testing.T) {
	fh := sdktest.NewFakeHost()
	fh.HandleHTTPPost("http://10.0.0.2:8040/api/update_config", func(url, ct string, body []byte) (sdk.HTTPResponse, error) {
		return sdk.HTTPResponse{Status: 200, Body: []byte(ct + "|" + string(body))}, nil
	})
	fh.HandleExec(func(sdk.Command) (sdk.ExecResult, error) {
		return sdk.ExecResult{Pid: 4242, Running: true}, nil
	}, "start.sh")
	var post sdk.HTTPResponse
	var exec sdk.ExecResult
	rc := sdktest.Connect(t, funcRole{fn: func(ctx context.Context, h sdk.Host, _ sdk.Request) (sdk.Result, error) {
		var err error
		if post, err = h.HTTPPost(ctx, "http://10.0.0.2:8040/api/update_config?k=v", "text/plain", []byte("x=1")); err != nil {
			return sdk.Result{}, err
		}
		exec, err = h.Exec(ctx, sdk.Command{Argv: []string{"start.sh"}, Detach: true})
		return sdk.Result{Summary: "ok"}, err
	}})
	if _, err := rc.Start(context.Background(), fh, sdk.Request{}); err != nil {
		t.Fatal(err)
	}
	if post.Status != 200 || string(post.Body) != "text/plain|x=1" {
		t.Errorf("HTTPPost = %d %q", post.Status, post.Body)
	}
	if exec.Pid != 4242 || !exec.Running {
		t.Errorf("Exec = pid %d running %v, want 4242 true", exec.Pid, exec.Running)
	}
}
