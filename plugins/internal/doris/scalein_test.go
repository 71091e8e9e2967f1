package doris

import (
	"context"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

func fe(name string, role string, alive bool) Member {
	return Member{Name: name, Hosts: []string{name}, Port: 9010, Role: role, Alive: alive}
}

func TestCheckFollowerQuorum(t *testing.T) {
	a, b, c := fe("a", FEFollower, true), fe("b", FEFollower, true), fe("c", FEFollower, true)
	deadB, deadC := fe("b", FEFollower, false), fe("c", FEFollower, false)
	obs, deadObs := fe("o", FEObserver, true), fe("p", FEObserver, false)
	cases := []struct {
		name    string
		fes     []Member
		drop    []Member
		wantErr string
	}{
		{"one of three alive", []Member{a, b, c}, []Member{c}, ""},
		{"two of three alive", []Member{a, b, c}, []Member{b, c}, ""},
		{"alive one beside a dead one", []Member{a, b, deadC}, []Member{b}, "1 of the 2 FOLLOWERs left would be alive"},
		{"dead one", []Member{a, b, deadC}, []Member{deadC}, ""},
		{"two dead of five", []Member{a, b, c, fe("d", FEFollower, false), fe("e", FEFollower, false)}, []Member{c}, "2 of the 4 FOLLOWERs left"},
		{"last follower", []Member{a}, []Member{a}, "no FOLLOWER would remain"},
		{"only observers go", []Member{a, deadB, deadC, obs}, []Member{obs}, "1 of the 3 FOLLOWERs left"},
		{"observer in a healthy cluster", []Member{a, b, obs, deadObs}, []Member{obs, deadObs}, ""},
		{"two followers, drop one", []Member{a, b}, []Member{b}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFollowerQuorum(tc.fes, tc.drop)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func be(id string, alive, decom bool) Member {
	return Member{Name: id, Hosts: []string{"10.0.0." + id}, Port: 9050, Alive: alive, Decommissioned: decom}
}

func TestCheckBEsHoldReplicas(t *testing.T) {
	b1, b2, b3, b4 := be("1", true, false), be("2", true, false), be("3", true, false), be("4", true, false)
	dead4, decom4 := be("4", false, false), be("4", true, true)
	rep3 := Replication{Max: 3, Table: "db.t"}
	cases := []struct {
		name    string
		bes     []Member
		leaving []Member
		rep     Replication
		wantErr string
	}{
		{"four to three", []Member{b1, b2, b3, b4}, []Member{b4}, rep3, ""},
		{"three to two", []Member{b1, b2, b3}, []Member{b3}, rep3, "only 2 alive BEs would remain, but table db.t needs 3 replicas"},
		{"a dead BE holds nothing", []Member{b1, b2, b3, dead4}, []Member{b3}, rep3, "only 2 alive"},
		{"a decommissioning BE holds nothing", []Member{b1, b2, b3, decom4}, []Member{b1}, rep3, "only 2 alive"},
		{"the dead one itself", []Member{b1, b2, b3, dead4}, []Member{dead4}, rep3, ""},
		{"two at once", []Member{b1, b2, b3, b4}, []Member{b3, b4}, rep3, "cannot take out 10.0.0.3:9050, 10.0.0.4:9050"},
		{"no tables", []Member{b1}, []Member{b1}, Replication{}, ""},
		{"single replica", []Member{b1, b2}, []Member{b2}, Replication{Max: 1, Table: "db.t"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBEsHoldReplicas(tc.bes, tc.leaving, tc.rep)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestMaxReplication(t *testing.T) {
	h := sdktest.NewFakeHost()
	h.HandleQuery("SHOW PROC", func(_, sql string) (sdk.Rows, error) {
		switch sql {
		case "SHOW PROC '/dbs'":
			return sdk.Rows{Columns: []string{"DbId", "DbName"}, Values: [][]string{{"1", "a"}, {"2", "b"}, {"x; DROP", "evil"}}}, nil
		case "SHOW PROC '/dbs/1'":
			return sdk.Rows{Columns: []string{"TableId", "TableName", "Type"}, Values: [][]string{{"11", "t1", "OLAP"}, {"12", "v", "VIEW"}}}, nil
		case "SHOW PROC '/dbs/2'":
			return sdk.Rows{Columns: []string{"TableId", "TableName", "Type"}, Values: [][]string{{"21", "t2", "OLAP"}, {"22", "mv", "MATERIALIZED_VIEW"}}}, nil
		case "SHOW PROC '/dbs/1/11/partitions'":
			return sdk.Rows{Columns: []string{"PartitionName", "ReplicationNum"}, Values: [][]string{{"p1", "1"}, {"p2", "2"}}}, nil
		case "SHOW PROC '/dbs/2/21/partitions'":
			return sdk.Rows{Columns: []string{"PartitionName", "ReplicationNum"}, Values: [][]string{{"p", "2"}}}, nil
		case "SHOW PROC '/dbs/2/22/partitions'":
			return sdk.Rows{Columns: []string{"PartitionName", "ReplicationNum"}, Values: [][]string{{"p", "3"}}}, nil
		}
		t.Errorf("unexpected %q", sql)
		return sdk.Rows{}, nil
	})
	rep, err := MaxReplication(context.Background(), h, "fe:9030")
	if err != nil || rep != (Replication{Max: 3, Table: "b.mv", Tables: 3}) {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestPackageVersion(t *testing.T) {
	for top, want := range map[string]string{
		"apache-doris-2.1.7-bin-x64":                 "2.1.7",
		"apache-doris-2.0.3-bin-arm64":               "2.0.3",
		"apache-doris-fe-2.0.3-bin-x86_64":           "2.0.3",
		"apache-doris-be-1.2.7.1-bin-x86_64":         "1.2.7.1",
		"apache-doris-dependencies-2.0.3-bin-x86_64": "2.0.3",
		"PALO-0.15.1-rc03-binary":                    "0.15.1-rc03",
		"apache-doris-2.1.7-rc03-bin-x64":            "2.1.7-rc03",
		"doris":                                      "",
		"":                                           "",
	} {
		if got := PackageVersion(top); got != want {
			t.Errorf("PackageVersion(%q) = %q, want %q", top, got, want)
		}
	}
}

func TestShowAndSameVersion(t *testing.T) {
	cases := []struct {
		shown, want string
		same        bool
	}{
		{"doris-2.1.8", "2.1.8", true},
		{"doris-2.1.8-rc01-443e87e203", "2.1.8", true},
		{"doris-2.1.80", "2.1.8", false},
		{"doris-2.1.8.1", "2.1.8", false},
		{"doris-2.1.7", "2.1.8", false},
		{"doris-2.1.8", "", false},
		{"", "2.1.8", false},
	}
	for _, c := range cases {
		if got := SameVersion(ShowVersion(c.shown), c.want); got != c.same {
			t.Errorf("SameVersion(%q, %q) = %v", c.shown, c.want, got)
		}
	}
	if safeVersion("2.1.8/../x") != "2.1.8_.._x" || safeVersion("..") != "unknown" || safeVersion("") != "unknown" {
		t.Errorf("safeVersion: %q %q", safeVersion("2.1.8/../x"), safeVersion(".."))
	}
}
