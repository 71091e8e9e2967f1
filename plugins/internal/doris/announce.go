package doris

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// A Doris process picks the address it announces to its cluster once, at
// start: the first of the host's addresses inside priority_networks, else
// the first non-loopback IPv4 address (FrontendOptions, BackendOptions). An
// FE logs it in fe.log as "local address: /10.0.0.5." (or, in FQDN mode,
// "Use FQDN init local addr, FQDN: <name>, IP: <ip>"); a master records it
// in its metadata, and a follower can only join under it. Nothing outside
// the process says it, so the log is where to read it.

// Announcement is the newest such line of a log.
type Announcement struct {
	Line  string   // the whole line: a later start logs another (its time differs)
	Addrs []string // the address, and in FQDN mode the name too
}

// Found reports whether the log had such a line.
func (a Announcement) Found() bool { return a.Line != "" }

// announceTail is how much of the end of fe.log is read: the line comes
// within the first lines of a start.
const announceTail = 256 << 10

// FEAnnouncement reads the newest announcement of fe.log in the FE's log
// dir; none found (no log yet, or a log level above INFO) is the zero
// Announcement.
func FEAnnouncement(ctx context.Context, h sdk.Host, d Deployed) (Announcement, error) {
	p := path.Join(d.LogDir, "fe.log")
	data, err := h.ReadFile(ctx, p, announceTail)
	if errors.Is(err, sdk.ErrNotExist) {
		return Announcement{}, nil
	}
	if err != nil {
		return Announcement{}, fmt.Errorf("read %s: %w", p, err)
	}
	return ParseFEAnnouncement(string(data)), nil
}

// ParseFEAnnouncement finds the newest announcement in fe.log text.
func ParseFEAnnouncement(log string) Announcement {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if _, rest, ok := strings.Cut(line, "local address: "); ok {
			// InetAddress prints as "<name>/<ip>", the name often empty;
			// the message ends with a full stop.
			a := strings.TrimSuffix(strings.TrimSpace(rest), ".")
			if j := strings.LastIndexByte(a, '/'); j >= 0 {
				a = a[j+1:]
			}
			if net.ParseIP(a) != nil {
				return Announcement{Line: line, Addrs: []string{a}}
			}
		}
		if _, rest, ok := strings.Cut(line, "Use FQDN init local addr, FQDN: "); ok {
			name, ip, _ := strings.Cut(rest, ", IP: ")
			addrs := []string{strings.TrimSpace(name)}
			if ip = strings.TrimSpace(ip); ip != "" {
				addrs = append(addrs, ip)
			}
			return Announcement{Line: line, Addrs: addrs}
		}
	}
	return Announcement{}
}

// Matches reports whether the announcement is one of a node's addresses
// (NodeAddrs: its host and what the host resolves it to).
func (a Announcement) Matches(nodeAddrs []string) bool {
	for _, x := range a.Addrs {
		for _, y := range nodeAddrs {
			if strings.EqualFold(x, y) || net.ParseIP(x) != nil && net.ParseIP(x).Equal(net.ParseIP(y)) {
				return true
			}
		}
	}
	return false
}

// PriorityNetworks says what the deployed conf sets priority_networks to,
// for messages.
func PriorityNetworks(d Deployed) string {
	if v, ok := d.Conf.Get("priority_networks"); ok && strings.TrimSpace(v) != "" {
		return fmt.Sprintf("priority_networks = %s", strings.TrimSpace(v))
	}
	return "no priority_networks (so Doris took the host's first non-loopback IPv4 address)"
}

// noPriorityMatch is what Doris logs, and exits, when priority_networks
// matches none of the host's addresses.
const noPriorityMatch = "priority_networks does not include the current IP address"

// priorityHint explains a start that ended with noPriorityMatch in its
// log; "" when the log does not say so.
func priorityHint(d Deployed, host, logTail string) string {
	if !strings.Contains(logTail, noPriorityMatch) {
		return ""
	}
	return fmt.Sprintf(": %s in %s matches no address of %s; set it to a network that holds %s (for example %s)",
		PriorityNetworks(d), d.ConfPath, host, host, suggestNetwork(host))
}

// suggestNetwork is a priority_networks value that selects host.
func suggestNetwork(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() != nil {
			return host + "/32"
		}
		return host + "/128"
	}
	return "<its address>/32"
}

// WrongAddress is the failure of a node that announced another address
// than the host it was installed for.
func WrongAddress(s Spec, host string, a Announcement, d Deployed, done string) *sdk.Failure {
	return &sdk.Failure{
		Summary: fmt.Sprintf("%s on %s announced itself to the cluster as %s, not as %s it was installed for: %s in %s; set priority_networks to a network that holds %s (for example %s), deploy the config again (back to DEPLOY_CONFIG, deployConfig) and start it",
			s.Role, host, strings.Join(a.Addrs, " / "), host, PriorityNetworks(d), d.ConfPath, host, suggestNetwork(host)),
		Detail: joinNonEmpty(a.Line, done),
	}
}
