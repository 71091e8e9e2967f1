package doris

import "github.com/dorismanager/dorismanager/sdk"

// Doris role names, as the API document and the manager's task types spell
// them.
const (
	RoleFE     = "FE"
	RoleBE     = "BE"
	RoleBroker = "BROKER"
)

// FE node types (feNodeType in the API, ALTER SYSTEM ADD FOLLOWER/OBSERVER).
const (
	FEFollower = "FOLLOWER"
	FEObserver = "OBSERVER"
)

// Labels the manager sets on FE nodes from the API's installInfos.
const (
	// LabelFENodeType is FEFollower or FEObserver ("" = follower).
	LabelFENodeType = "feNodeType"
	// LabelMaster is "true" on the FE the operator (or the install order)
	// designated as the first master. Register still asks the cluster who
	// the master is.
	LabelMaster = "master"
)

// FENodeType is a node's feNodeType label.
func FENodeType(n sdk.Node) string { return n.Labels[LabelFENodeType] }

// IsMaster reports whether the node is labelled the designated master.
func IsMaster(n sdk.Node) bool { return n.Labels[LabelMaster] == "true" }

// WithLabel returns n with a label set, leaving the caller's map unchanged.
func WithLabel(n sdk.Node, name, value string) sdk.Node {
	labels := make(map[string]string, len(n.Labels)+1)
	for k, v := range n.Labels {
		labels[k] = v
	}
	labels[name] = value
	n.Labels = labels
	return n
}
