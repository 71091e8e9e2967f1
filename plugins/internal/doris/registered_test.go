package doris

import (
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
)

func TestRegistered(t *testing.T) {
	m := Master{Member: Member{Hosts: []string{"10.0.0.1"}}}
	ts := []Target{{Endpoint: "10.0.0.4:9050"}, {Endpoint: "10.0.0.5:9050"}}
	for _, c := range []struct {
		added []string
		want  string
	}{
		{nil, "BE 10.0.0.4:9050, 10.0.0.5:9050 alive in the cluster (master 10.0.0.1)"},
		{[]string{"10.0.0.5:9050"}, "BE 10.0.0.4:9050, 10.0.0.5:9050 alive in the cluster (master 10.0.0.1); added 10.0.0.5:9050"},
	} {
		res := Registered("BE", ts, m, c.added)
		if res.Summary != c.want {
			t.Errorf("added %v: summary %q, want %q", c.added, res.Summary, c.want)
		}
		reg, _ := res.Facts.Bool(sdk.FactRegistered)
		alive, _ := res.Facts.Bool(sdk.FactAlive)
		if !reg || !alive || res.Facts["master"] != "10.0.0.1" {
			t.Errorf("added %v: facts %v", c.added, res.Facts)
		}
	}
}
