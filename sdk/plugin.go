package sdk

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	rolepb "github.com/dorismanager/dorismanager/sdk/proto"
)

// PluginName is the name under which a role is dispensed in go-plugin's
// plugin set.
const PluginName = "role"

// Handshake is the go-plugin handshake shared by the manager and every role
// plugin. The magic cookie only keeps a plugin binary from being run by hand
// by mistake; it is not a security measure. ProtocolVersion is unused:
// versions are negotiated through PluginSets.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  APIMajor,
		MagicCookieKey:   "DORIS_MANAGER_ROLE_PLUGIN",
		MagicCookieValue: "b6c1f0a2-doris-role-plugin",
	}
}

// PluginSets is the go-plugin VersionedPlugins of a role: keyed by API
// major, gRPC only. The manager passes PluginSets(nil).
func PluginSets(role Role) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		APIMajor: {PluginName: &RolePlugin{Impl: role}},
	}
}

// RolePlugin adapts a Role to go-plugin's gRPC transport. On the plugin side
// it serves Impl; on the manager side it dispenses a *RoleClient.
type RolePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Role
}

var _ plugin.GRPCPlugin = (*RolePlugin)(nil)

// GRPCServer registers the Role service (plugin side).
func (p *RolePlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	rolepb.RegisterRoleServer(s, &roleServer{impl: p.Impl, broker: broker})
	return nil
}

// GRPCClient returns a *RoleClient (manager side). ctx is cancelled by
// go-plugin when the plugin process exits.
func (p *RolePlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &RoleClient{client: rolepb.NewRoleClient(c), broker: broker, exited: ctx}, nil
}

// serve runs the plugin server until the manager is done with it. The
// logger writes JSON to stderr, which go-plugin parses on the manager side
// into the manager's log and the calling task's log.
func serve(role Role) {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "role",
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.Debug,
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: PluginSets(role),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}
