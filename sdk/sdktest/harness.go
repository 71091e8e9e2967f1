package sdktest

import (
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/dorismanager/dorismanager/sdk"
)

// Connect serves role in-process behind the real gRPC transport (go-plugin's
// test connection, with the GRPCBroker) and returns the manager's side of
// it. Every call on the returned Role is encoded, crosses a socket, and its
// Host calls come back through the broker, as they would with a plugin
// process. The connection is closed when the test ends.
func Connect(t testing.TB, role sdk.Role) *sdk.RoleClient {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		sdk.PluginName: &sdk.RolePlugin{Impl: role},
	})
	// Closing the client asks the server to shut down (go-plugin's
	// controller); stopping it here as well would race with that.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("dispense role: %v", err)
	}
	rc, ok := raw.(*sdk.RoleClient)
	if !ok {
		t.Fatalf("dispensed %T, want *sdk.RoleClient", raw)
	}
	return rc
}
