package agents

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"unicode"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
)

// maxReportBody caps a register or heartbeat body: the largest report
// within the wire bounds (64 disks with long mount points) stays well
// below it.
const maxReportBody = 512 << 10

// validRegister checks what an agent claims about itself; the error names
// the field at fault.
func validRegister(b wire.Register) error {
	if err := validText("agentId", b.AgentID, true); err != nil {
		return err
	}
	if err := validHost("host", b.Host); err != nil {
		return err
	}
	if b.Port < 1 || b.Port > 65535 {
		return httpx.BadRequest("port must be 1-65535, got %d", b.Port)
	}
	if err := validText("version", b.Version, false); err != nil {
		return err
	}
	if err := validHardware(b.Hardware); err != nil {
		return err
	}
	return validProcesses(b.Processes)
}

// validHeartbeat checks a heartbeat's claims.
func validHeartbeat(b wire.Heartbeat) error {
	if err := validText("agentId", b.AgentID, true); err != nil {
		return err
	}
	return validProcesses(b.Processes)
}

// validIdentity checks that the agent registering is the one this record
// and its client certificate were made for: the agent id it claims is the
// certificate's (and the record's), and so is the host (403 otherwise).
func validIdentity(req *http.Request, a store.Agent, b wire.Register) error {
	if b.AgentID != a.AgentUUID {
		return httpx.Errorf(http.StatusForbidden, "agentId %s is not the agent of this certificate (%s)", b.AgentID, a.AgentUUID)
	}
	if !strings.EqualFold(b.Host, a.Host) {
		return httpx.Errorf(http.StatusForbidden, "host %q is not the host this agent's certificate was issued for (%s): reinstall the agent on %s or fix host in its agent.json",
			b.Host, a.Host, b.Host)
	}
	if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
		if leaf := req.TLS.PeerCertificates[0]; leaf.VerifyHostname(b.Host) != nil || leaf.Subject.CommonName != b.AgentID {
			return httpx.Errorf(http.StatusForbidden, "the client certificate (agent %s, host %s) is not for agent %s on %s",
				leaf.Subject.CommonName, pki.HostOf(leaf), b.AgentID, b.Host)
		}
	}
	return nil
}

func validHardware(h wire.Hardware) error {
	if err := validText("hardware.cpu", h.CPU, false); err != nil {
		return err
	}
	if err := validText("hardware.totalMemory", h.TotalMemory, false); err != nil {
		return err
	}
	if h.Cores < 0 || h.Cores > 1<<20 {
		return httpx.BadRequest("hardware.cores must be 0 to %d, got %d", 1<<20, h.Cores)
	}
	if h.TotalMemoryBytes < 0 {
		return httpx.BadRequest("hardware.totalMemoryBytes must not be negative, got %d", h.TotalMemoryBytes)
	}
	if len(h.Disks) > wire.MaxDisks {
		return httpx.BadRequest("hardware.disks has %d entries, at most %d are accepted", len(h.Disks), wire.MaxDisks)
	}
	for i, d := range h.Disks {
		field := fmt.Sprintf("hardware.disks[%d]", i)
		if d.Mount == "" || len(d.Mount) > wire.MaxPath || !strings.HasPrefix(d.Mount, "/") || strings.ContainsRune(d.Mount, 0) {
			return httpx.BadRequest("%s.mount must be an absolute path of at most %d bytes", field, wire.MaxPath)
		}
		if d.TotalBytes < 0 || d.FreeBytes < 0 {
			return httpx.BadRequest("%s: totalBytes and freeBytes must not be negative", field)
		}
	}
	return nil
}

func validProcesses(ps []wire.Process) error {
	if len(ps) > wire.MaxProcesses {
		return httpx.BadRequest("processes has %d entries, at most %d are accepted", len(ps), wire.MaxProcesses)
	}
	for i, p := range ps {
		if err := validText(fmt.Sprintf("processes[%d].role", i), p.Role, true); err != nil {
			return err
		}
		if p.Pid < 0 {
			return httpx.BadRequest("processes[%d].pid must not be negative, got %d", i, p.Pid)
		}
		switch p.Desired {
		case "", wire.DesiredRunning, wire.DesiredStopped:
		default:
			return httpx.BadRequest("processes[%d].desired: want running, stopped or nothing", i)
		}
	}
	return nil
}

// validText accepts printable text of at most wire.MaxText bytes.
func validText(field, s string, required bool) error {
	if s == "" {
		if required {
			return httpx.BadRequest("%s is empty", field)
		}
		return nil
	}
	if len(s) > wire.MaxText {
		return httpx.BadRequest("%s is %d bytes long, at most %d are accepted", field, len(s), wire.MaxText)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return httpx.BadRequest("%s contains a control or invalid character (%q)", field, r)
		}
	}
	return nil
}

// validHost accepts an IP address or a DNS host name (letters, digits and
// hyphens in dot-separated labels of at most 63, at most 253 in all).
func validHost(field, h string) error {
	if h == "" {
		return httpx.BadRequest("%s is empty: it must be the host's IP address or name", field)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if len(h) > wire.MaxHost {
		return httpx.BadRequest("%s is %d bytes long: a host name has at most %d", field, len(h), wire.MaxHost)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return httpx.BadRequest("%s %q is neither an IP address nor a host name (labels of 1-63 letters, digits or '-', not starting or ending with '-')", field, h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return httpx.BadRequest("%s %q is neither an IP address nor a host name (it contains %q)", field, h, c)
			}
		}
	}
	return nil
}
