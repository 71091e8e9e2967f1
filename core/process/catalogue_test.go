package process

import (
	"context"
	"fmt"
	"maps"

	"github.com/dorismanager/dorismanager/sdk"
)

// staticCatalogue is a fixed role catalogue, as pluginhost would report it
// for a cluster.
type staticCatalogue map[string]sdk.Info

func (c staticCatalogue) Catalogue(_ context.Context, clusterID int64) (map[string]sdk.Info, error) {
	if clusterID == 666 {
		return nil, fmt.Errorf("catalogue unavailable")
	}
	return maps.Clone(c), nil
}

// dorisParams are the params every Doris role declares.
var dorisParams = []sdk.Param{
	{Name: "javaHome", Type: sdk.ParamString},
	{Name: "minOpenFiles", Type: sdk.ParamInt},
	{Name: "minFreeDiskGB", Type: sdk.ParamString, Default: "5"},
	{Name: "startTimeout", Type: sdk.ParamDuration},
	{Name: "stopTimeout", Type: sdk.ParamDuration, Default: "2m"},
	{Name: "aliveTimeout", Type: sdk.ParamDuration, Default: "3m"},
}

func info(role, home string, order sdk.Order, caps []string, extra ...sdk.Param) sdk.Info {
	return sdk.Info{Name: "doris-role-" + role, Role: role, Version: "1.0.0", APIMajor: sdk.APIMajor, Home: home,
		Capabilities: caps, Order: order, Params: append(append([]sdk.Param{}, dorisParams...), extra...)}
}

// dorisCatalogue mirrors the Info of the FE, BE and BROKER plugins.
func dorisCatalogue() staticCatalogue {
	member := []string{sdk.CapMembership, sdk.CapAutoFix}
	return staticCatalogue{
		"FE": info("FE", "fe", sdk.Order{OneAtATime: true}, member),
		"BE": info("BE", "be", sdk.Order{After: []string{"FE"}}, member,
			sdk.Param{Name: "unregisterMode", Type: sdk.ParamString, Default: "decommission"}),
		"BROKER": info("BROKER", "apache_hdfs_broker", sdk.Order{After: []string{"FE"}}, member,
			sdk.Param{Name: "brokerName", Type: sdk.ParamString}),
	}
}
