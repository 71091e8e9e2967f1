package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// toyRole is a small but complete role used to exercise the SDK: every
// method goes through the Host the way a real role does.
type toyRole struct{ version string }

func (r toyRole) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "doris-role-toy", Role: "TOY", Version: r.version,
		APIMajor: sdk.APIMajor, APIMinor: sdk.APIMinor, Capabilities: []string{sdk.CapMembership}, Home: "toy", PidFile: "bin/toy.pid"}, nil
}

func (toyRole) Precheck(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"java", "-version"}, NoFile: 65536})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("run java -version on %s: %w", req.Node.Host, err)
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: "Java is not installed on " + req.Node.Host + ": install JDK 8 or later", Detail: res.Output}
	}
	return sdk.Result{Summary: "java ok", Facts: map[string]string{"java": strings.TrimSpace(res.Output)}}, nil
}

func (toyRole) Install(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	d, err := h.Download(ctx, sdk.Download{URL: req.PackageURL, SHA256: req.PackageSHA256, Dest: path.Join(req.Node.InstallDir, "toy"), Unpack: true})
	if err != nil {
		return sdk.Result{}, &sdk.Failure{Summary: "download the package", Detail: err.Error(), Retryable: true}
	}
	return sdk.Result{Summary: "installed", Facts: map[string]string{"sha256": d.SHA256}}, nil
}

func (toyRole) Configure(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	p := path.Join(req.Node.InstallDir, "toy/conf/toy.conf")
	if err := h.WriteFile(ctx, p, []byte(req.Conf), 0o644); err != nil {
		return sdk.Result{}, fmt.Errorf("write %s: %w", p, err)
	}
	back, err := h.ReadFile(ctx, p, 0)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("read back %s: %w", p, err)
	}
	if string(back) != req.Conf {
		return sdk.Result{}, sdk.Failf("%s reads back differently", p)
	}
	return sdk.Result{Summary: "configured", Facts: map[string]string{"port.http_port": "8030"}}, nil
}

func (toyRole) Start(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{path.Join(req.Node.InstallDir, "toy/bin/start.sh"), "--daemon"}, Detach: true})
	if err != nil {
		return sdk.Result{}, err
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: "start script failed", Detail: res.Output, Retryable: true}
	}
	resp, err := h.HTTPGet(ctx, fmt.Sprintf("http://%s:8030/api/bootstrap", req.Node.Host))
	if err != nil {
		return sdk.Result{}, err
	}
	h.Logf("health answered %d", resp.Status)
	return sdk.Result{Summary: "started"}, nil
}

func (toyRole) Stop(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	if _, err := h.Exec(ctx, sdk.Command{Argv: []string{path.Join(req.Node.InstallDir, "toy/bin/stop.sh")}}); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "stopped"}, nil
}

func (toyRole) Status(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	_, err := h.ReadFile(ctx, path.Join(req.Node.InstallDir, "toy/bin/toy.pid"), 64)
	switch {
	case errors.Is(err, sdk.ErrNotExist):
		return sdk.Result{Summary: "not running", Facts: map[string]string{"running": "false", "healthy": "false"}}, nil
	case err != nil:
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "running", Facts: map[string]string{"running": "true", "healthy": "true"}}, nil
}

func (toyRole) Register(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	fe := req.Node.Host + ":9030"
	if _, err := h.Query(ctx, fe, "ALTER SYSTEM ADD BACKEND '"+req.Node.Host+":9050'"); err != nil {
		return sdk.Result{}, err
	}
	rows, err := h.Query(ctx, fe, "SHOW BACKENDS")
	if err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "registered", Facts: map[string]string{"alive": rows.Col(0, "Alive")}}, nil
}

func (toyRole) Unregister(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	if _, err := h.Query(ctx, req.Node.Host+":9030", "ALTER SYSTEM DROPP BACKEND '"+req.Node.Host+":9050'"); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "unregistered"}, nil
}

func (toyRole) Remove(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	home := path.Join(req.Node.InstallDir, "toy")
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"rm", "-rf", "--", home}})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("remove %s: %w", home, err)
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: "could not remove " + home, Detail: res.Output}
	}
	return sdk.Result{Summary: "removed " + home}, nil
}
