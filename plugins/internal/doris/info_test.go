package doris_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/dorismanager/dorismanager/plugins/be/berole"
	"github.com/dorismanager/dorismanager/plugins/broker/brokerrole"
	"github.com/dorismanager/dorismanager/plugins/fe/ferole"
	"github.com/dorismanager/dorismanager/sdk"
)

// The catalogue entries of the Doris roles: what the manager orders,
// validates and watches by.
func TestInfoIsTheCatalogueEntry(t *testing.T) {
	common := map[string]string{"javaHome": "string=", "minFreeDiskGB": "string=5", "stopTimeout": "duration=2m0s", "aliveTimeout": "duration=3m0s"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		role    sdk.Role
		name    string
		home    string
		pidFile string
		order   sdk.Order
		params  map[string]string // name -> type=default
	}{
		{ferole.New("1.2.3"), "FE", "fe", "bin/fe.pid", sdk.Order{OneAtATime: true},
			with(map[string]string{"minOpenFiles": "int=", "startTimeout": "duration=10m0s"})},
		{berole.New("1.2.3"), "BE", "be", "bin/be.pid", sdk.Order{After: []string{"FE"}},
			with(map[string]string{"minOpenFiles": "int=60000", "startTimeout": "duration=5m0s", "unregisterMode": "string=decommission"})},
		{brokerrole.New("1.2.3"), "BROKER", "apache_hdfs_broker", "bin/apache_hdfs_broker.pid", sdk.Order{After: []string{"FE"}},
			with(map[string]string{"minOpenFiles": "int=", "startTimeout": "duration=5m0s", "brokerName": "string="})},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := c.role.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := info.Validate(); err != nil {
				t.Fatalf("Info does not validate: %v", err)
			}
			if info.Role != c.name || info.HomeDir() != c.home || info.PidFile != c.pidFile || !reflect.DeepEqual(info.Order, c.order) ||
				!info.Has(sdk.CapMembership) || info.Description == "" {
				t.Fatalf("info %+v", info)
			}
			got := map[string]string{}
			for _, p := range info.Params {
				got[p.Name] = p.Type + "=" + p.Default
				if p.Description == "" {
					t.Errorf("param %s has no description", p.Name)
				}
			}
			if !reflect.DeepEqual(got, c.params) {
				t.Fatalf("params %v, want %v", got, c.params)
			}
		})
	}
}
