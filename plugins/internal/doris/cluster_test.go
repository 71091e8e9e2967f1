package doris

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// Column sets of SHOW FRONTENDS as Doris prints them.
var (
	fe015Cols = []string{"Name", "IP", "HostName", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "Role", "IsMaster", "ClusterId", "Join", "Alive", "ReplayedJournalId", "LastHeartbeat", "IsHelper", "ErrMsg", "Version"}
	fe2xCols  = []string{"Name", "Host", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "ArrowFlightSqlPort", "Role", "IsMaster", "ClusterId", "Join", "Alive", "ReplayedJournalId", "LastStartTime", "LastHeartbeat", "IsHelper", "ErrMsg", "Version", "CurrentConnected"}
)

func TestParseFrontendsAcrossVersions(t *testing.T) {
	r015 := sdk.Rows{Columns: fe015Cols, Values: [][]string{
		{"n1", "10.0.0.1", "fe1", "9010", "8030", "9030", "9020", "FOLLOWER", "true", "1", "true", "true", "5", "", "true", "", "0.15"},
		{"n2", "10.0.0.2", "fe2", "9010", "8030", "9030", "9020", "OBSERVER", "false", "1", "false", "true", "5", "", "false", "", "0.15"},
	}}
	ms := ParseFrontends(r015)
	if len(ms) != 2 || !ms[0].IsMaster || ms[0].Addr() != "10.0.0.1" || ms[0].Port != 9010 || ms[0].Query != 9030 {
		t.Fatalf("0.15 parse: %+v", ms)
	}
	if ms[1].Alive {
		t.Error("an FE with Join=false is not alive yet")
	}
	if _, ok := Find(ms, []string{"fe2"}, 9010); !ok {
		t.Error("find by HostName column")
	}
	r2 := sdk.Rows{Columns: fe2xCols, Values: [][]string{
		{"n1", "fe1.example", "9010", "8030", "9030", "9020", "-1", "FOLLOWER", "false", "1", "true", "true", "5", "", "", "true", "", "2.0", "Yes"},
		{"n2", "fe2.example", "19010", "8030", "19030", "9020", "-1", "FOLLOWER", "true", "1", "true", "true", "5", "", "", "false", "", "2.0", ""},
	}}
	ms = ParseFrontends(r2)
	if ms[1].Addr() != "fe2.example" || !ms[1].IsMaster || ms[1].Query != 19030 {
		t.Fatalf("2.x parse: %+v", ms)
	}
	if _, ok := Find(ms, []string{"FE2.example"}, 9010); ok {
		t.Error("port must match too")
	}
}

func TestAlreadyExistsAndNotMember(t *testing.T) {
	yes := []string{
		"errCode = 2, detailMessage = Same backend already exists[10.0.0.3:9050]",
		"errCode = 2, detailMessage = frontend already exists name: 10.0.0.2_9010_1, role: FOLLOWER",
		"errCode = 2, detailMessage = Broker(10.0.0.4:8000) has already in brokers.",
	}
	for _, m := range yes {
		if !AlreadyExists(errors.New(m)) {
			t.Errorf("AlreadyExists(%q) = false", m)
		}
	}
	if AlreadyExists(errors.New("frontend already removed x can not be added again")) || AlreadyExists(nil) {
		t.Error("removed frontend is not a member")
	}
	for _, m := range []string{"backend does not exists[h:9050]", "frontend does not exist[h:9010]", "Broker(h:8000) has not in brokers."} {
		if !NotMember(errors.New(m)) {
			t.Errorf("NotMember(%q) = false", m)
		}
	}
}

func TestFindMasterAsksAndNeverAssumes(t *testing.T) {
	h := sdktest.NewFakeHost()
	h.HandleQuery("SHOW FRONTENDS", func(fe, _ string) (sdk.Rows, error) {
		switch fe {
		case "10.0.0.1:9030": // marked master by the manager, but down
			return sdk.Rows{}, errors.New("connection refused")
		case "10.0.0.2:9030": // answers, but names 10.0.0.3 as master
			return sdk.Rows{Columns: fe2xCols, Values: [][]string{
				{"n3", "10.0.0.3", "9010", "8030", "9031", "9020", "-1", "FOLLOWER", "true", "1", "true", "true", "5", "", "", "true", "", "2.0", ""},
			}}, nil
		}
		return sdk.Rows{}, errors.New("unexpected")
	})
	c := sdk.Cluster{Nodes: []sdk.Node{
		{Host: "10.0.0.2", Role: RoleFE},
		{Host: "10.0.0.1", Role: RoleFE, Labels: map[string]string{LabelMaster: "true"}},
		{Host: "10.0.0.9", Role: RoleFE, Skipped: true},
		{Host: "10.0.0.5", Role: RoleBE},
	}}
	addrs := FEQueryAddrs(c)
	if strings.Join(addrs, ",") != "10.0.0.1:9030,10.0.0.2:9030" {
		t.Fatalf("query addrs %v", addrs)
	}
	m, err := FindMaster(context.Background(), h, addrs)
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr() != "10.0.0.3" || m.QueryAddr != "10.0.0.3:9031" || m.Port != 9010 {
		t.Errorf("master %+v", m)
	}
	if _, err := FindMaster(context.Background(), h, []string{"10.0.0.1:9030"}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestPollHonoursContextAndTimeout(t *testing.T) {
	b := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}
	n := 0
	if err := b.Poll(context.Background(), 0, func(context.Context) (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Fatalf("poll: %v after %d", err, n)
	}
	err := b.Poll(context.Background(), 20*time.Millisecond, func(context.Context) (bool, error) { return false, nil })
	if !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("timeout err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Poll(ctx, time.Hour, func(context.Context) (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel err = %v", err)
	}
	boom := errors.New("boom")
	if err := b.Poll(context.Background(), 0, func(context.Context) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("fatal err = %v", err)
	}
	if d, err := ParamDuration(map[string]string{"x": "90"}, "x", 0); err != nil || d != 90*time.Second {
		t.Errorf("plain seconds: %v %v", d, err)
	}
	if _, err := ParamDuration(map[string]string{"x": "soon"}, "x", 0); err == nil {
		t.Error("bad duration accepted")
	}
}
