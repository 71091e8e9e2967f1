// Command testrole is a role plugin for the pluginhost tests. Its identity
// is stamped in at build time with -ldflags -X.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/dorismanager/dorismanager/sdk"
)

var (
	version  = "0.0.0"
	role     = "TEST"
	apiMajor = "" // default sdk.APIMajor
	apiMinor = "" // default sdk.APIMinor
	// wireMajor, when set, serves the role under that API major only, to
	// test version negotiation.
	wireMajor = ""
	// Misbehaviours, each set to "1" by a test build: crash or hang when
	// started as a plugin (describe still answers), hang in describe, or
	// give another Info over gRPC than in describe.
	crashAtStart = ""
	hangAtStart  = ""
	describeHang = ""
	lieOverWire  = ""
	// home is Info.Home ("" for the default).
	home = ""
)

// describing is true while the binary runs "describe".
var describing = len(os.Args) > 1 && os.Args[1] == sdk.DescribeArg

type testRole struct{ log hclog.Logger }

func (testRole) Info(context.Context) (sdk.Info, error) {
	major, minor := sdk.APIMajor, sdk.APIMinor
	if apiMajor != "" {
		major, _ = strconv.Atoi(apiMajor)
	}
	if apiMinor != "" {
		minor, _ = strconv.Atoi(apiMinor)
	}
	name := "doris-role-test"
	if lieOverWire != "" && !describing {
		name = "another-name"
	}
	return sdk.Info{Name: name, Role: role, Version: version, APIMajor: major, APIMinor: minor, Home: home,
		Capabilities: []string{sdk.CapMembership}}, nil
}

// Precheck reports which version answered.
func (testRole) Precheck(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "version " + version, Facts: map[string]string{"version": version, "pid": strconv.Itoa(os.Getpid())}}, nil
}

// Install makes a few typical Host calls.
func (testRole) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"java", "-version"}})
	if err != nil {
		return sdk.Result{}, err
	}
	p := req.Node.InstallDir + "/conf/test.conf"
	if err := h.WriteFile(ctx, p, []byte(req.Conf), 0o644); err != nil {
		return sdk.Result{}, err
	}
	back, err := h.ReadFile(ctx, p, 0)
	if err != nil {
		return sdk.Result{}, err
	}
	rows, err := h.Query(ctx, req.Node.Host+":9030", "SHOW FRONTENDS")
	if err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "installed", Facts: map[string]string{
		"exit": strconv.Itoa(res.ExitCode), "conf": string(back), "alive": rows.Col(0, "Alive")}}, nil
}

// Configure fails the way a role reports a step failure.
func (testRole) Configure(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{}, &sdk.Failure{Summary: "http_port 8030 is in use", Detail: "ss -ltn", Retryable: true}
}

// Start tells the host its pid, then blocks until cancelled.
func (testRole) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	if err := h.WriteFile(ctx, "/pid", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return sdk.Result{}, err
	}
	<-ctx.Done()
	return sdk.Result{}, ctx.Err()
}

// Stop logs through hclog (plugin stderr) and then waits for the host to
// confirm the line reached the task log.
func (r testRole) Stop(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	r.log.Info("stopping test role", "task_id", req.TaskID, "marker", req.Params["marker"])
	fmt.Fprintln(os.Stderr, "raw stderr line", req.Params["marker"])
	if _, err := h.Exec(ctx, sdk.Command{Argv: []string{"wait-for-log"}}); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "stopped"}, nil
}

// Status crashes the process mid-call with a panic no recover catches.
func (testRole) Status(ctx context.Context, _ sdk.Host, _ sdk.Request) (sdk.Result, error) {
	go func() { panic("status exploded") }()
	<-ctx.Done()
	return sdk.Result{}, ctx.Err()
}

func (testRole) Register(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "registered"}, nil
}

func (testRole) Remove(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "removed"}, nil
}

func (testRole) Unregister(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "unregistered"}, nil
}

func main() {
	switch {
	case describing && describeHang != "":
		time.Sleep(time.Hour)
	case !describing && crashAtStart != "":
		fmt.Fprintln(os.Stderr, "loading config: no such file")
		panic("boom at start")
	case !describing && hangAtStart != "":
		fmt.Fprintln(os.Stderr, "warming up forever")
		time.Sleep(time.Hour)
	}
	r := testRole{log: hclog.New(&hclog.LoggerOptions{Name: "testrole", Output: os.Stderr, JSONFormat: true})}
	if wireMajor != "" && !describing {
		major, _ := strconv.Atoi(wireMajor)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake(),
			VersionedPlugins: map[int]plugin.PluginSet{major: {sdk.PluginName: &sdk.RolePlugin{Impl: r}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return
	}
	sdk.Serve(r)
}
