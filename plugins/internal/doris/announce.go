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

// A BE logs its choice in be.INFO as "local host ip=10.0.0.5"; the FE adds
// it under the address the manager gives, and a BE whose own address
// differs refuses every heartbeat of the FE.

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
	return readAnnouncement(ctx, h, path.Join(d.LogDir, "fe.log"), ParseFEAnnouncement)
}

// BEAnnouncement reads the newest announcement of be.INFO (glog's link to
// the current INFO log) in the BE's log dir, as FEAnnouncement does.
func BEAnnouncement(ctx context.Context, h sdk.Host, d Deployed) (Announcement, error) {
	return readAnnouncement(ctx, h, path.Join(d.LogDir, "be.INFO"), ParseBEAnnouncement)
}

func readAnnouncement(ctx context.Context, h sdk.Host, p string, parse func(string) Announcement) (Announcement, error) {
	data, err := h.ReadFile(ctx, p, announceTail)
	if errors.Is(err, sdk.ErrNotExist) {
		return Announcement{}, nil
	}
	if err != nil {
		return Announcement{}, fmt.Errorf("read %s: %w", p, err)
	}
	return parse(string(data)), nil
}

// ParseBEAnnouncement finds the newest "local host ip=" line in be.INFO
// text.
func ParseBEAnnouncement(log string) Announcement {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if _, rest, ok := strings.Cut(line, "local host ip="); ok {
			a := strings.TrimSpace(rest)
			if f := strings.Fields(a); len(f) > 0 {
				a = f[0]
			}
			if net.ParseIP(a) != nil {
				return Announcement{Line: line, Addrs: []string{a}}
			}
		}
	}
	return Announcement{}
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

// ErrWrongAddress ends a start whose node announced another address.
var ErrWrongAddress = errors.New("the node announced another address")

// AddressCheck reads, while a node comes up, the address it announces (in
// its log) and holds it against the host it was installed for.
// Use Prepare and Check as the StartOptions' hooks, then Finish.
type AddressCheck struct {
	h    sdk.Host
	role string // FE, BE: for messages
	host string
	read func(ctx context.Context, h sdk.Host, d Deployed) (Announcement, error)
	// The log's name and what its line says, for the message when it
	// says nothing.
	log, says string

	before   Announcement // the newest line before this start (an older start's)
	started  bool
	addrs    []string
	verified bool // the node announced its host (in this start)
	// Seen is the announcement Check read, and Deployed the node's conf.
	Seen     Announcement
	Deployed Deployed
}

// FEAddressCheck checks the address an FE on host announces in fe.log.
func FEAddressCheck(h sdk.Host, host string) *AddressCheck {
	return &AddressCheck{h: h, role: RoleFE, host: host, log: "fe.log", says: "local address", read: FEAnnouncement}
}

// BEAddressCheck checks the address a BE on host announces in be.INFO.
func BEAddressCheck(h sdk.Host, host string) *AddressCheck {
	return &AddressCheck{h: h, role: RoleBE, host: host, log: "be.INFO", says: "local host ip=", read: BEAnnouncement}
}

// Prepare runs when the node is about to be started: a line already in
// the log is an older start's.
func (c *AddressCheck) Prepare(ctx context.Context, d Deployed) {
	c.started = true
	var err error
	if c.before, err = c.read(ctx, c.h, d); err != nil {
		c.h.Logf("%v", err)
	}
}

// Started reports whether Prepare ran: this start started the node.
func (c *AddressCheck) Started() bool { return c.started }

// Check is StartOptions.Check: ErrWrongAddress once the node announced an
// address that is not its host's.
func (c *AddressCheck) Check(ctx context.Context, d Deployed) error {
	if c.verified {
		return nil
	}
	a, err := c.read(ctx, c.h, d)
	if err != nil || !a.Found() || (c.started && a.Line == c.before.Line) {
		return nil // not said yet (in this start)
	}
	if c.addrs == nil {
		c.addrs = NodeAddrs(ctx, c.h, c.host)
	}
	c.Seen, c.Deployed = a, d
	if !a.Matches(c.addrs) {
		return ErrWrongAddress
	}
	c.verified = true
	c.h.Logf("the %s announced itself as %s, the host it was installed for", c.role, strings.Join(a.Addrs, " / "))
	return nil
}

// Finish looks once more when the node turned healthy before a poll saw
// its line, and logs when its log says nothing (a log level above INFO).
// It returns the start's error, or ErrWrongAddress.
func (c *AddressCheck) Finish(ctx context.Context, load func() (Deployed, error), err error) error {
	if err != nil || c.verified {
		return err
	}
	d, lerr := load()
	if lerr != nil {
		return nil
	}
	if err := c.Check(ctx, d); err != nil {
		return err
	}
	if !c.verified {
		c.h.Logf("could not check the address the %s announced: %s has no %q line of this start (a log level above INFO?)",
			c.role, path.Join(d.LogDir, c.log), c.says)
	}
	return nil
}
