// Package minirole is a small role for the tests of sdktest's process
// checks: served in-process by the tests and as a binary by
// testdata/miniplugin, so that both give the same answers.
package minirole

import (
	"context"
	"path"

	"github.com/dorismanager/dorismanager/sdk"
)

// Role is the mini role at a version.
type Role struct{ Version string }

var _ sdk.Role = Role{}

// Info implements sdk.Role.
func (r Role) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "mini", Role: "MINI", Version: r.Version, APIMajor: sdk.APIMajor, APIMinor: sdk.APIMinor,
		PidFile: "mini.pid", Description: "a role for sdktest's own tests"}, nil
}

// Precheck runs one command on the host.
func (Role) Precheck(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"uname", "-r"}})
	if err != nil {
		return sdk.Result{}, err
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: "uname failed on " + req.Node.Host, Detail: res.Output}
	}
	return sdk.Result{Summary: "kernel " + res.Output}, nil
}

// Install writes a marker file into the role home.
func (Role) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	if err := h.WriteFile(ctx, path.Join(req.Node.Home, "installed"), []byte("yes\n"), 0o644); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "installed"}, nil
}

// Configure reports a port.
func (Role) Configure(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "configured", Facts: sdk.Facts{sdk.PortFact("http"): "8080"}}, nil
}

// Start succeeds.
func (Role) Start(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "started"}, nil
}

// Stop succeeds.
func (Role) Stop(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "stopped"}, nil
}

// Status reports a stopped role.
func (Role) Status(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	f := sdk.Facts{}
	f.SetBool(sdk.FactRunning, false)
	f.SetBool(sdk.FactHealthy, false)
	return sdk.Result{Summary: "not running", Facts: f}, nil
}

// Remove succeeds.
func (Role) Remove(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{Summary: "removed"}, nil
}
