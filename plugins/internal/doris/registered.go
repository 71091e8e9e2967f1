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
	RoleFE:     {"SHOW FRONTENDS", ParseFrontends, "edit_log_port"},
	RoleBE:     {"SHOW BACKENDS", ParseBackends, "heartbeat_service_port"},
	RoleBroker: {"SHOW BROKER", ParseBrokers, "broker_ipc_port"},
}

// ClusterRow asks the cluster for req.Node's row in SHOW FRONTENDS,
// BACKENDS or BROKER: listed says whether it is a member; ok=false when no
// FE could be asked (the cluster's word is missing, which is not the same
// as "not a member").
func (b *Base) ClusterRow(ctx context.Context, h sdk.Host, req sdk.Request) (row Member, listed, ok bool) {
	req.Targets = []sdk.Node{req.Node}
	members, err := b.ListMembers(ctx, h, req)
	if err != nil || len(members.Targets) != 1 {
		return Member{}, false, false
	}
	t := members.Targets[0]
	row, listed = Find(members.Listed, t.Addrs, t.Port)
	return row, listed, true
}

// Members is where a Register or Unregister call of a BE or broker starts:
// its targets, the master to send DDL to, and the role's members as the
// cluster lists them now (Show lists them again, for waits).
type Members struct {
	Targets []Target
	Master  Master
	Show    ShowFunc
	Listed  []Member
}

// ListMembers resolves req's targets with the port the cluster knows the
// role by, finds the master (never assumed), and lists the role's members.
func (b *Base) ListMembers(ctx context.Context, h sdk.Host, req sdk.Request) (Members, error) {
	m, known := memberships[b.Spec.Role]
	if !known {
		return Members{}, sdk.Failf("role %s has no cluster membership", b.Spec.Role)
	}
	ts, err := Targets(ctx, h, req, b.Spec, m.portKey)
	if err != nil {
		return Members{}, err
	}
	master, err := FindClusterMaster(ctx, h, req)
	if err != nil {
		return Members{}, err
	}
	show := Show(h, master.QueryAddr, m.show, m.parse)
	listed, err := show(ctx)
	if err != nil {
		return Members{}, &sdk.Failure{Summary: "cannot run " + m.show + " on the master " + master.QueryAddr, Detail: err.Error(), Retryable: true}
	}
	return Members{Targets: ts, Master: master, Show: show, Listed: listed}, nil
}
