package berole

import (
	"context"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
)

const beInfo = "/opt/doris/be/log/be.INFO"

func ipLine(at, addr string) string {
	return "I20240501 10:00:" + at + ".123456 12345 backend_options.cpp:88] local host ip=" + addr + "\n"
}

// START_BE holds the address the BE chose (be.INFO) against the host it
// was installed for: a BE on another address would refuse every
// heartbeat of the FE once added. It fails naming priority_networks and
// stops the BE it started.
func TestStartChecksTheBEAddress(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, line string
		wantErr   string
		log       string // in the task log
	}{
		{name: "its own address", line: ipLine("01", "10.0.0.4"), log: "the BE announced itself as 10.0.0.4"},
		{name: "another address", line: ipLine("01", "198.51.100.7"),
			wantErr: "BE on 10.0.0.4 announced itself to the cluster as 198.51.100.7, not as 10.0.0.4 it was installed for: priority_networks = 198.51.100.0/24 in /opt/doris/be/conf/be.conf; set priority_networks to a network that holds 10.0.0.4 (for example 10.0.0.4/32)"},
		{name: "an earlier start's wrong address is not this start's", old: ipLine("00", "198.51.100.7"), line: ipLine("01", "10.0.0.4"),
			log: "announced itself as 10.0.0.4"},
		{name: "nothing logged (quiet log level)", log: `no "local host ip=" line`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := doristest.New()
			h.Install(doris.BE, "priority_networks = 198.51.100.0/24\n")
			h.HTTPGetResponse("http://10.0.0.4:8040/api/health", 200, `{"status": "OK","msg": "To Be Added"}`)
			if tc.old != "" {
				h.SetFile(beInfo, []byte(tc.old), 0o644)
			}
			h.OnStart = func([]string) { h.SetFile(beInfo, []byte(tc.old+tc.line), 0o644) }
			res, err := newRole().Start(context.Background(), h, beReq("10.0.0.4"))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				if res.Facts["healthy"] != "true" {
					t.Fatalf("facts %v", res.Facts)
				}
			} else {
				f := failure(t, err)
				if !strings.Contains(f.Summary, tc.wantErr) || !strings.Contains(f.Detail, "the BE was stopped") {
					t.Fatalf("failure %+v; want %q", f, tc.wantErr)
				}
				if h.Running(doris.BE) {
					t.Fatal("a BE that chose another address is left running")
				}
			}
			if tc.log != "" && !strings.Contains(strings.Join(h.Logs(), "\n"), tc.log) {
				t.Fatalf("task log %q does not say %q", h.Logs(), tc.log)
			}
		})
	}
}

// A BE already running (a retried task) is checked too, but not stopped:
// this start did not start it.
func TestStartChecksARunningBE(t *testing.T) {
	h := doristest.New()
	h.Install(doris.BE, "")
	h.SetFile(beInfo, []byte(ipLine("00", "198.51.100.7")), 0o644)
	h.SetRunning(doris.BE, 1234)
	h.HTTPGetResponse("http://10.0.0.4:8040/api/health", 200, `{"status": "OK","msg": "To Be Added"}`)
	_, err := newRole().Start(context.Background(), h, beReq("10.0.0.4"))
	if f := failure(t, err); !strings.Contains(f.Summary, "as 198.51.100.7, not as 10.0.0.4") || strings.Contains(f.Detail, "stopped") {
		t.Fatalf("failure %+v", f)
	}
	if !h.Running(doris.BE) {
		t.Fatal("a BE this start did not start was stopped")
	}
}
