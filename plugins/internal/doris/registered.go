package doris

import (
	"context"

	"github.com/dorismanager/dorismanager/sdk"
)

// membership says how a role's nodes are listed and identified by the cluster.
type membership struct {
	show    string
	parse   func(sdk.Rows) []Member
	portKey string
}

var memberships = map[string]membership{
	sdk.RoleFE:     {"SHOW FRONTENDS", ParseFrontends, "edit_log_port"},
	sdk.RoleBE:     {"SHOW BACKENDS", ParseBackends, "heartbeat_service_port"},
	sdk.RoleBroker: {"SHOW BROKER", ParseBrokers, "broker_ipc_port"},
}

// Registered asks the cluster whether req.Node is a member: "YES" or "NO",
// or ok=false when no FE could be asked (the cluster's word is missing,
// which is not the same as "not a member").
func (b *Base) Registered(ctx context.Context, h sdk.Host, req sdk.Request) (registered string, ok bool) {
	m, known := memberships[b.Spec.Role]
	if !known {
		return "", false
	}
	master, err := FindClusterMaster(ctx, h, req)
	if err != nil {
		return "", false
	}
	ms, err := Show(h, master.QueryAddr, m.show, m.parse)(ctx)
	if err != nil {
		return "", false
	}
	port := b.Spec.NodePort(req.Node, m.portKey)
	if _, found := Find(ms, NodeAddrs(ctx, h, req.Node.Host), port); found {
		return "YES", true
	}
	return "NO", true
}
