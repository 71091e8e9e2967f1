package ferole

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
	"github.com/dorismanager/dorismanager/sdk"
)

const feLog = "/opt/doris/fe/log/fe.log"

func logLine(at, addr string) string {
	return "2024-05-01 10:00:" + at + ",123 INFO (main|1) [FrontendOptions.initAddrUseIp():99] local address: " + addr + ".\n"
}

// addrHost is an FE host whose start logs line into fe.log (after what the
// log held) and whose meta dir is empty before the start when fresh.
func addrHost(old, line string, fresh bool) (*doristest.Host, *[]string) {
	h := doristest.New()
	h.Install(doris.FE, "http_port = 8030\npriority_networks = 198.51.100.7/32\n")
	h.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, bootOK)
	if old != "" {
		h.SetFile(feLog, []byte(old), 0o644)
	}
	var mu sync.Mutex
	var deleted []string
	h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if cmd.Argv[len(cmd.Argv)-1] == "-delete" {
			deleted = append(deleted, cmd.Argv[1])
			return sdk.ExecResult{}, nil
		}
		if fresh {
			return sdk.ExecResult{}, nil
		}
		return sdk.ExecResult{Output: cmd.Argv[1] + "/image\n"}, nil
	}, "find")
	h.OnStart = func([]string) { h.SetFile(feLog, []byte(old+line), 0o644) }
	return h, &deleted
}

// START_FE holds the address the FE announced (fe.log) against the host it
// was installed for, and fails naming priority_networks when they differ.
func TestStartChecksTheAnnouncedAddress(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		old, line string
		fresh     bool
		wantErr   string
		deleted   bool
		log       string // in the task log
	}{
		{name: "its own address", line: logLine("01", "/10.0.0.1"), log: "announced itself as 10.0.0.1"},
		{name: "its own address, name form", line: logLine("01", "fe1.example/10.0.0.1"), log: "announced itself as 10.0.0.1"},
		{name: "another address, fresh meta", line: logLine("01", "/198.51.100.7"), fresh: true, deleted: true,
			wantErr: "FE on 10.0.0.1 announced itself to the cluster as 198.51.100.7, not as 10.0.0.1 it was installed for: priority_networks = 198.51.100.7/32 in /opt/doris/fe/conf/fe.conf"},
		{name: "another address, meta of an earlier start kept", line: logLine("01", "/198.51.100.7"),
			wantErr: "set priority_networks to a network that holds 10.0.0.1 (for example 10.0.0.1/32)"},
		{name: "loopback, as releases before 2.0 fall back to", line: logLine("01", "/127.0.0.1"), fresh: true, deleted: true,
			wantErr: "as 127.0.0.1, not as 10.0.0.1"},
		{name: "an earlier start's wrong address is not this start's", old: logLine("00", "/198.51.100.7"), line: logLine("01", "/10.0.0.1"),
			log: "announced itself as 10.0.0.1"},
		{name: "nothing logged (quiet log level)", log: `no "local address" line`},
		{name: "FQDN mode", line: "2024-05-01 10:00:01,123 INFO (main|1) [FrontendOptions.initAddrUsingFqdn():1] Use FQDN init local addr, FQDN: fe1.example, IP: 10.0.0.1\n",
			log: "announced itself as fe1.example / 10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, deleted := addrHost(tc.old, tc.line, tc.fresh)
			res, err := newRole().Start(ctx, h, feReq("10.0.0.1", true))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				if res.Facts["healthy"] != "true" {
					t.Fatalf("facts %v", res.Facts)
				}
			} else {
				f := failure(t, err)
				if !strings.Contains(f.Summary, tc.wantErr) || !strings.Contains(f.Summary, "priority_networks") {
					t.Fatalf("failure %q; want %q", f.Summary, tc.wantErr)
				}
				if h.Running(doris.FE) {
					t.Fatal("an FE that announced another address is left running")
				}
			}
			if got := len(*deleted) > 0; got != tc.deleted {
				t.Fatalf("metadata removed: %v (%v), want %v", got, *deleted, tc.deleted)
			}
			if tc.deleted && (*deleted)[0] != "/opt/doris/fe/doris-meta" {
				t.Fatalf("removed %v, want the meta dir", *deleted)
			}
			if tc.log != "" && !strings.Contains(strings.Join(h.Logs(), "\n"), tc.log) {
				t.Fatalf("task log %q does not say %q", h.Logs(), tc.log)
			}
		})
	}
}

// An FE already running (a retried task) is checked too, but not stopped:
// this start did not start it.
func TestStartChecksARunningFE(t *testing.T) {
	h, deleted := addrHost(logLine("00", "/198.51.100.7"), "", true)
	h.SetRunning(doris.FE, 1234)
	_, err := newRole().Start(context.Background(), h, feReq("10.0.0.1", true))
	if f := failure(t, err); !strings.Contains(f.Summary, "as 198.51.100.7, not as 10.0.0.1") {
		t.Fatalf("failure %+v", f)
	}
	if !h.Running(doris.FE) || len(*deleted) != 0 {
		t.Fatal("an FE this start did not start was stopped or its metadata removed")
	}
}

// An FE whose priority_networks matches none of the host's addresses
// exits (Doris 2.0 and later); the failure says so.
func TestStartExitNamesPriorityNetworks(t *testing.T) {
	h := doristest.New()
	h.Install(doris.FE, "priority_networks = 198.51.100.0/24\n")
	h.OnStart = func([]string) {
		h.SetExited(doris.FE, 4242)
		h.SetFile(feLog, []byte("2024-05-01 10:00:01,123 ERROR (main|1) [FrontendOptions.initAddrUseIp():88] ip address range configured for priority_networks does not include the current IP address\n"), 0o644)
	}
	_, err := newRole().Start(context.Background(), h, feReq("10.0.0.1", true))
	f := failure(t, err)
	if !strings.Contains(f.Summary, "exited while starting: priority_networks = 198.51.100.0/24 in /opt/doris/fe/conf/fe.conf matches no address of 10.0.0.1") {
		t.Fatalf("failure %q", f.Summary)
	}
}

// A follower added on the master before its start is a member: the start
// says so (registered), so a later deploy knows what the cluster knows it by.
func TestStartFollowerReportsMembership(t *testing.T) {
	h := doristest.New()
	h.Install(doris.FE, "")
	h.QueryRows("SHOW FRONTENDS", doristest.FrontendsRows("10.0.0.1:9010:9030:FOLLOWER:true:true"))
	h.QueryRows("ALTER SYSTEM ADD", sdk.Rows{})
	h.HTTPGetResponse("http://10.0.0.2:8030/api/bootstrap", 200, bootOK)
	res, err := newRole().Start(context.Background(), h, feReq("10.0.0.2", false))
	if err != nil {
		t.Fatal(err)
	}
	if reg, _ := res.Facts.Bool(sdk.FactRegistered); !reg {
		t.Fatalf("facts %v: want registered", res.Facts)
	}
}

// A member of the cluster (after back, deployed again) keeps what the
// cluster knows it by; a node that is not a member may change anything.
func TestConfigureKeepsAMembersIdentity(t *testing.T) {
	ctx := context.Background()
	member := sdk.Facts{sdk.FactRegistered: "true", "metaDir": "/opt/doris/fe/doris-meta"}
	for _, tc := range []struct {
		name  string
		facts sdk.Facts
		conf  string
		want  string // "" accepted
	}{
		{"member, same identity, other settings", member, "edit_log_port = 9010\nhttp_port = 8031\npriority_networks = 10.0.0.0/24\n", ""},
		{"member, edit_log_port moved", member, "edit_log_port = 9011\n", "FE on 10.0.0.1 is a member of the cluster as 10.0.0.1:9010, and this fe.conf changes what the cluster knows it by (edit_log_port 9010 -> 9011)"},
		{"member, meta_dir moved", member, "meta_dir = /data/meta\n", "meta_dir /opt/doris/fe/doris-meta -> /data/meta"},
		{"not a member", sdk.Facts{sdk.FactRegistered: "false", "metaDir": "/opt/doris/fe/doris-meta"}, "edit_log_port = 9011\nmeta_dir = /data/meta\n", ""},
		{"never asked", nil, "edit_log_port = 9011\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := doristest.New()
			h.Install(doris.FE, "")
			req := feReq("10.0.0.1", true)
			req.Node.Facts = tc.facts
			req.Node.Ports = map[string]int{"edit_log_port": 9010, "http_port": 8030, "query_port": 9030, "rpc_port": 9020}
			req.Conf = tc.conf
			_, err := newRole().Configure(ctx, h, req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("configure: %v", err)
				}
				return
			}
			if f := failure(t, err); !strings.Contains(f.Summary, tc.want) || !strings.Contains(f.Summary, "scale the node in and out") {
				t.Fatalf("failure %q; want %q", f.Summary, tc.want)
			}
			if f, _ := h.File("/opt/doris/fe/conf/fe.conf"); strings.Contains(string(f.Data), "9011") || strings.Contains(string(f.Data), "/data/meta") {
				t.Fatal("a refused conf was written")
			}
		})
	}
}
