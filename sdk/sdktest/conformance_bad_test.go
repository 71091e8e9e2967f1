package sdktest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

type badVersion struct{ toyRole }

func (badVersion) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "doris-role-toy", Role: "TOY", Version: "v1.0", APIMajor: sdk.APIMajor, Capabilities: []string{sdk.CapMembership}}, nil
}

type wrongAPI struct{ toyRole }

func (wrongAPI) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "doris-role-toy", Role: "toy", Version: "1.0.0", APIMajor: sdk.APIMajor + 1, Capabilities: []string{sdk.CapMembership}}, nil
}

// undeclared implements Member without announcing it.
type undeclared struct{ toyRole }

func (undeclared) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "doris-role-toy", Role: "TOY", Version: "1.0.0", APIMajor: sdk.APIMajor}, nil
}

type panicky struct{ toyRole }

func (panicky) Configure(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	var m map[string]int
	m["x"]++
	return sdk.Result{}, nil
}

// deaf uses a background context for its host calls, so it cannot be
// cancelled.
type deaf struct{ toyRole }

func (deaf) Stop(_ context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	_, err := h.Exec(context.Background(), sdk.Command{Argv: []string{"stop"}})
	return sdk.Result{}, err
}

type emptyFailure struct{ toyRole }

func (emptyFailure) Status(context.Context, sdk.Host, sdk.Request) (sdk.Result, error) {
	return sdk.Result{}, &sdk.Failure{}
}

var badRoles = map[string]struct {
	role sdk.Role
	want string
}{
	"version":  {badVersion{toyRole{"1.0.0"}}, "use a semantic version"},
	"api":      {wrongAPI{toyRole{"1.0.0"}}, "this manager speaks API"},
	"role":     {wrongAPI{toyRole{"1.0.0"}}, "upper-case letters and digits"},
	"caps":     {undeclared{toyRole{"1.0.0"}}, "announce exactly what the role implements"},
	"panic":    {panicky{toyRole{"1.0.0"}}, "panicked"},
	"deaf":     {deaf{toyRole{"1.0.0"}}, "did not return within"},
	"nosummry": {emptyFailure{toyRole{"1.0.0"}}, "failure without a summary"},
}

// TestConformanceBadRole is run in a child process by
// TestConformanceCatchesBadRoles, with SDKTEST_BAD naming the role.
func TestConformanceBadRole(t *testing.T) {
	name := os.Getenv("SDKTEST_BAD")
	if name == "" {
		t.Skip("run by TestConformanceCatchesBadRoles")
	}
	sdktest.Conformance(t, badRoles[name].role, sdktest.WithHost(scriptedHost), sdktest.WithCallTimeout(time.Second))
}

func TestConformanceCatchesBadRoles(t *testing.T) {
	for name, bad := range badRoles {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceBadRole$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SDKTEST_BAD="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a bad role:\n%s", out)
			}
			if !strings.Contains(string(out), bad.want) {
				t.Errorf("output does not mention %q:\n%s", bad.want, out)
			}
		})
	}
}
