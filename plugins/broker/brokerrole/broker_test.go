package brokerrole

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
	"github.com/dorismanager/dorismanager/sdk"
)

func newRole() *Role {
	r := New("1.2.3")
	r.Backoff = doris.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	return r
}

func brReq(host string) sdk.Request {
	return sdk.Request{
		Node:    sdk.Node{Host: host, Role: doris.RoleBroker, InstallDir: "/opt/doris"},
		Cluster: sdk.Cluster{Nodes: []sdk.Node{{Host: "10.0.0.1", Role: doris.RoleFE, Labels: map[string]string{doris.LabelMaster: "true"}}}},
		Params:  map[string]string{"startTimeout": "2s", "aliveTimeout": "1s"},
	}
}

func failure(t *testing.T, err error) *sdk.Failure {
	t.Helper()
	var f *sdk.Failure
	if !errors.As(err, &f) {
		t.Fatalf("want *sdk.Failure, got %T %v", err, err)
	}
	return f
}

func TestBrokerName(t *testing.T) {
	tests := []struct {
		params map[string]string
		host   string
		want   string
		err    bool
	}{
		{nil, "10.0.0.7", "broker_10_0_0_7", false},
		{nil, "node-1.example", "broker_node_1_example", false},
		{map[string]string{"brokerName": "hdfs_broker"}, "10.0.0.7", "hdfs_broker", false},
		{map[string]string{"brokerName": "bad`name"}, "10.0.0.7", "", true},
	}
	for _, tc := range tests {
		got, err := BrokerName(tc.params, tc.host)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v %s: %q %v", tc.params, tc.host, got, err)
		}
	}
}

func TestPrecheckNeedsJavaButNotKernel(t *testing.T) {
	h := doristest.New()
	h.MaxMapCount = 65530
	if _, err := newRole().Precheck(context.Background(), h, brReq("10.0.0.7")); err != nil {
		t.Fatalf("precheck: %v", err)
	}
	h.Java = ""
	_, err := newRole().Precheck(context.Background(), h, brReq("10.0.0.7"))
	if f := failure(t, err); !strings.Contains(f.Summary, "no usable java") {
		t.Errorf("failure %+v", f)
	}
}

func TestStartWaitsForPort(t *testing.T) {
	h := doristest.New()
	h.Install(doris.Broker, "broker_ipc_port = 8000\n")
	req := brReq("10.0.0.7")
	req.Params["javaHome"] = "/usr/lib/jvm/java-8"
	res, err := newRole().Start(context.Background(), h, req)
	if err != nil || res.Facts["healthy"] != "true" || res.Facts["port.broker_ipc_port"] != "8000" {
		t.Fatalf("start %+v %v", res, err)
	}
	var start sdk.Command
	for _, c := range h.CallsOf("Exec") {
		if strings.HasSuffix(c.Command.Argv[1], "start_broker.sh") {
			start = c.Command
		}
	}
	if start.Env["JAVA_HOME"] != "/usr/lib/jvm/java-8" || start.Dir != "/opt/doris/apache_hdfs_broker" {
		t.Errorf("start %+v", start)
	}
	// Started but never listening: fails with the broker's own log.
	h2 := doristest.New()
	h2.Install(doris.Broker, "broker_ipc_port = 18000\n")
	h2.SetFile("/opt/doris/apache_hdfs_broker/log/apache_hdfs_broker.log", []byte("Address already in use\n"), 0o644)
	req.Params["startTimeout"] = "1s" // long enough for a probe to finish under -race
	_, err = newRole().Start(context.Background(), h2, req)
	f := failure(t, err)
	if !strings.Contains(f.Summary, "nothing listens on broker_ipc_port 18000") || !strings.Contains(f.Detail, "Address already in use") {
		t.Errorf("failure %+v", f)
	}
}

func TestRegisterAndUnregister(t *testing.T) {
	var mu sync.Mutex
	brokers := []string{"broker_10_0_0_7:10.0.0.7:8000:true"}
	h := doristest.New()
	h.QueryRows("SHOW FRONTENDS", doristest.FrontendsRows("10.0.0.1:9010:9030:FOLLOWER:true:true"))
	h.HandleQuery("SHOW BROKER", func(string, string) (sdk.Rows, error) {
		mu.Lock()
		defer mu.Unlock()
		return doristest.BrokersRows(brokers...), nil
	})
	var ddl []string
	h.HandleQuery("ALTER SYSTEM", func(_, sql string) (sdk.Rows, error) {
		mu.Lock()
		defer mu.Unlock()
		ddl = append(ddl, sql)
		if strings.HasPrefix(sql, "ALTER SYSTEM ADD BROKER `broker_10_0_0_8`") {
			brokers = append(brokers, "broker_10_0_0_8:10.0.0.8:8000:true")
		}
		return sdk.Rows{}, nil
	})
	req := brReq("10.0.0.7")
	req.Targets = []sdk.Node{{Host: "10.0.0.7", Role: doris.RoleBroker}, {Host: "10.0.0.8", Role: doris.RoleBroker}}
	res, err := newRole().Register(context.Background(), h, req)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if len(ddl) != 1 || ddl[0] != "ALTER SYSTEM ADD BROKER `broker_10_0_0_8` \"10.0.0.8:8000\"" {
		t.Errorf("ddl %q", ddl)
	}
	if res.Facts[sdk.FactRegistered] != "true" || res.Facts["brokerName"] != "broker_10_0_0_7,broker_10_0_0_8" {
		t.Errorf("facts %v", res.Facts)
	}

	req.Targets = req.Targets[1:]
	res, err = newRole().Unregister(context.Background(), h, req)
	if err != nil || res.Facts[sdk.FactRegistered] != "false" || ddl[len(ddl)-1] != "ALTER SYSTEM DROP BROKER `broker_10_0_0_8` \"10.0.0.8:8000\"" {
		t.Errorf("unregister %+v %v %q", res, err, ddl)
	}
}

func TestRegisterNamesDeadBroker(t *testing.T) {
	h := doristest.New()
	h.QueryRows("SHOW FRONTENDS", doristest.FrontendsRows("10.0.0.1:9010:9030:FOLLOWER:true:true"))
	h.QueryRows("SHOW BROKER", doristest.BrokersRows("b:10.0.0.7:8000:false"))
	h.QueryRows("ALTER SYSTEM ADD BROKER", sdk.Rows{})
	_, err := newRole().Register(context.Background(), h, brReq("10.0.0.7"))
	if f := failure(t, err); !strings.Contains(f.Summary, "broker not alive after 1s: 10.0.0.7:8000 (Alive=false)") {
		t.Errorf("failure %+v", f)
	}
}
