package doristest

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// Conformance runs sdktest.Conformance for a Doris role against a host
// where the role is installed, configured and answers its health probe,
// and checks the plugin binary (pkg, e.g. "./plugins/fe", built with
// -X main.version=version) unless the tests run with -short.
func Conformance(t *testing.T, role sdk.Role, version string, s doris.Spec, pkg string) {
	newHost := func() *sdktest.FakeHost {
		h := New()
		h.Install(s, "")
		h.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, `{"code":0,"msg":"success"}`)
		h.HTTPGetResponse("http://10.0.0.1:8040/api/health", 200, `{"status":"OK"}`)
		h.QueryRows("SHOW FRONTENDS", FrontendsRows("10.0.0.1:9010:9030:FOLLOWER:true:true"))
		h.QueryRows("SHOW BACKENDS", BackendsRows("10.0.0.1:9050:true"))
		h.QueryRows("SHOW BROKER", BrokersRows("broker_10_0_0_1:10.0.0.1:8000:true"))
		h.QueryRows("ALTER SYSTEM", sdk.Rows{})
		return h.FakeHost
	}
	node := sdk.Node{Host: "10.0.0.1", Role: s.Role, InstallDir: "/opt/doris", Home: s.Home("/opt/doris"), Labels: map[string]string{doris.LabelMaster: "true"}}
	req := sdk.Request{
		TaskID: 1, Node: node, Cluster: sdk.Cluster{ID: 1, Name: "conformance", Nodes: []sdk.Node{node}},
		Conf:       "# conformance\n",
		PackageURL: "http://repo.invalid/apache-doris-2.0.3-bin-x64.tar.gz",
		Params:     map[string]string{"startTimeout": "1s", "stopTimeout": "1s", "aliveTimeout": "1s"},
	}
	opts := []sdktest.Option{sdktest.WithHost(newHost), sdktest.WithRequest(req), sdktest.WithCallTimeout(2 * time.Second)}
	if !testing.Short() {
		bin := filepath.Join(t.TempDir(), "plugin")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", bin, pkg)
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
		opts = append(opts, sdktest.WithBinary(bin))
	}
	sdktest.Conformance(t, role, opts...)
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(string(out[:len(out)-1]))
}
