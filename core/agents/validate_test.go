package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
)

func goodRegister() wire.Register {
	return wire.Register{AgentID: "6f1c0e8a-2b7d-4c1e-9f3a-0d5b8e7c6a41", Host: "10.0.0.5", Port: 9602, Version: "1.0.0",
		Hardware: wire.Hardware{CPU: "Intel(R) Xeon(R)", Cores: 8, TotalMemoryBytes: 16 << 30, TotalMemory: "16.0 GiB",
			Disks: []wire.Disk{{Mount: "/", TotalBytes: 100, FreeBytes: 50}}},
		Processes: []wire.Process{{Role: "FE", Pid: 42, Running: true}}}
}

func TestValidRegister(t *testing.T) {
	many := func(n int) []wire.Disk {
		d := make([]wire.Disk, n)
		for i := range d {
			d[i] = wire.Disk{Mount: fmt.Sprintf("/data%d", i)}
		}
		return d
	}
	cases := []struct {
		name  string
		edit  func(*wire.Register)
		field string // "" when valid
	}{
		{"valid", func(*wire.Register) {}, ""},
		{"host name", func(r *wire.Register) { r.Host = "be-01.dc1.example.com" }, ""},
		{"IPv6 host", func(r *wire.Register) { r.Host = "fd00::5" }, ""},
		{"no processes, no disks", func(r *wire.Register) { r.Processes = nil; r.Hardware.Disks = nil }, ""},
		{"64 disks", func(r *wire.Register) { r.Hardware.Disks = many(64) }, ""},
		{"port 0", func(r *wire.Register) { r.Port = 0 }, "port"},
		{"port too high", func(r *wire.Register) { r.Port = 65536 }, "port"},
		{"port negative", func(r *wire.Register) { r.Port = -1 }, "port"},
		{"empty host", func(r *wire.Register) { r.Host = "" }, "host"},
		{"host with a space", func(r *wire.Register) { r.Host = "a b" }, "host"},
		{"host with a slash", func(r *wire.Register) { r.Host = "a/b" }, "host"},
		{"host label starting with -", func(r *wire.Register) { r.Host = "-a.example" }, "host"},
		{"host label too long", func(r *wire.Register) { r.Host = strings.Repeat("a", 64) + ".example" }, "host"},
		{"host too long", func(r *wire.Register) { r.Host = strings.Repeat("abcdefgh.", 30) + "x" }, "host"},
		{"empty agentId", func(r *wire.Register) { r.AgentID = "" }, "agentId"},
		{"agentId too long", func(r *wire.Register) { r.AgentID = strings.Repeat("a", wire.MaxText+1) }, "agentId"},
		{"version too long", func(r *wire.Register) { r.Version = strings.Repeat("1", wire.MaxText+1) }, "version"},
		{"version with a newline", func(r *wire.Register) { r.Version = "1.0\n" }, "version"},
		{"cpu too long", func(r *wire.Register) { r.Hardware.CPU = strings.Repeat("x", wire.MaxText+1) }, "hardware.cpu"},
		{"negative cores", func(r *wire.Register) { r.Hardware.Cores = -1 }, "hardware.cores"},
		{"negative memory", func(r *wire.Register) { r.Hardware.TotalMemoryBytes = -1 }, "hardware.totalMemoryBytes"},
		{"65 disks", func(r *wire.Register) { r.Hardware.Disks = many(65) }, "hardware.disks"},
		{"relative mount", func(r *wire.Register) { r.Hardware.Disks[0].Mount = "data" }, "hardware.disks[0].mount"},
		{"mount too long", func(r *wire.Register) { r.Hardware.Disks[0].Mount = "/" + strings.Repeat("d", wire.MaxPath) }, "hardware.disks[0].mount"},
		{"negative free bytes", func(r *wire.Register) { r.Hardware.Disks[0].FreeBytes = -5 }, "hardware.disks[0]"},
		{"65 processes", func(r *wire.Register) { r.Processes = make([]wire.Process, 65) }, "processes"},
		{"empty role", func(r *wire.Register) { r.Processes[0].Role = "" }, "processes[0].role"},
		{"role too long", func(r *wire.Register) { r.Processes[0].Role = strings.Repeat("R", wire.MaxText+1) }, "processes[0].role"},
		{"negative pid", func(r *wire.Register) { r.Processes[0].Pid = -3 }, "processes[0].pid"},
		{"unknown desired state", func(r *wire.Register) { r.Processes[0].Desired = "absent" }, "processes[0].desired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := goodRegister()
			c.edit(&r)
			err := validRegister(r)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			he, ok := err.(*httpx.Error)
			if !ok || he.Status != http.StatusBadRequest || !strings.HasPrefix(he.Msg, c.field) {
				t.Fatalf("got %v, want a 400 naming %s", err, c.field)
			}
		})
	}
}

func TestValidIdentity(t *testing.T) {
	id := goodRegister().AgentID
	cases := []struct {
		recorded, claimed, agentID string
		ok                         bool
	}{
		{"10.0.0.5", "10.0.0.5", id, true},
		{"Host1.example", "host1.example", id, true},
		{"10.0.0.5", "10.0.0.6", id, false},
		{"host1", "host2", id, false},
		{"10.0.0.5", "10.0.0.5", "6f1c0e8a-2b7d-4c1e-9f3a-0d5b8e7c6a42", false},
	}
	for _, c := range cases {
		r := goodRegister()
		r.Host, r.AgentID = c.claimed, c.agentID
		err := validIdentity(httptest.NewRequest("POST", wire.RegisterPath, nil), store.Agent{Host: c.recorded, AgentUUID: id}, r)
		if (err == nil) != c.ok {
			t.Errorf("recorded %s, claimed %s as %s: %v, want ok = %v", c.recorded, c.claimed, c.agentID, err, c.ok)
		}
		if he, isHTTP := err.(*httpx.Error); err != nil && (!isHTTP || he.Status != http.StatusForbidden) {
			t.Errorf("recorded %s, claimed %s: %v, want a 403", c.recorded, c.claimed, err)
		}
	}
}

// Through the handler, over mutual TLS: a bad claim is a 400 naming the
// field, a claim for another host a 403, an oversized body a 413, a good
// one registers.
func TestRegisterRefusesBadClaims(t *testing.T) {
	e := setup(t)
	cfg := e.install(t, "10.0.0.5", goodRegister().AgentID)
	body := func(edit func(*wire.Register)) json.RawMessage {
		r := goodRegister()
		edit(&r)
		j, _ := json.Marshal(r)
		return j
	}
	huge := body(func(r *wire.Register) { r.Version = strings.Repeat("x", maxReportBody) })
	cases := []struct {
		name   string
		body   json.RawMessage
		status int
		msg    string
	}{
		{"bad port", body(func(r *wire.Register) { r.Port = 0 }), 400, "port"},
		{"other host", body(func(r *wire.Register) { r.Host = "10.0.0.9" }), 403, "host"},
		{"too many processes", body(func(r *wire.Register) { r.Processes = make([]wire.Process, 100) }), 400, "processes"},
		{"too large", huge, 413, "larger than"},
		{"good", body(func(*wire.Register) {}), 200, "success"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, msg, err := e.post(t, cfg.CertFile, wire.RegisterPath, c.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != c.status || !strings.Contains(msg, c.msg) {
				t.Fatalf("HTTP %d %q, want %d mentioning %q", status, msg, c.status, c.msg)
			}
		})
	}
	a, err := e.reg.Get(context.Background(), 1, "10.0.0.5")
	if err != nil || a.Port != 9602 || a.Status != StatusRunning {
		t.Fatalf("after the good registration: %+v %v", a, err)
	}
}
