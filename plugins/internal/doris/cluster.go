package doris

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// Col returns the first non-empty value among the named columns of row i,
// matching names case-insensitively: column names moved between versions
// (0.15/1.x "IP" and "HostName", 2.x "Host").
func Col(r sdk.Rows, i int, names ...string) string {
	if i >= len(r.Values) {
		return ""
	}
	for _, n := range names {
		for j, c := range r.Columns {
			if strings.EqualFold(c, n) && j < len(r.Values[i]) && r.Values[i][j] != "" {
				return r.Values[i][j]
			}
		}
	}
	return ""
}

func colInt(r sdk.Rows, i int, names ...string) int {
	n, _ := strconv.Atoi(Col(r, i, names...))
	return n
}

func colBool(r sdk.Rows, i int, names ...string) bool {
	return strings.EqualFold(Col(r, i, names...), "true")
}

// hostCols are the columns naming a node's address, newest first.
var hostCols = []string{"Host", "IP", "HostName"}

// Member is one row of SHOW FRONTENDS, SHOW BACKENDS or SHOW BROKER.
type Member struct {
	Name     string
	Hosts    []string // every address column that is set
	Port     int      // FE edit_log_port, BE heartbeat_service_port, broker ipc port
	Query    int      // FE query_port
	Role     string   // FE: FOLLOWER or OBSERVER
	IsMaster bool
	Alive    bool
	ErrMsg   string
	Version  string // as Doris shows it, e.g. "doris-2.1.7-rc03-443e87e203"
	// BE only: SystemDecommissioned and TabletNum (replicas it holds).
	Decommissioned bool
	TabletNum      int
}

// Addr is the member's address as Doris shows it first.
func (m Member) Addr() string {
	if len(m.Hosts) == 0 {
		return ""
	}
	return m.Hosts[0]
}

func hostsOf(r sdk.Rows, i int) []string {
	var hs []string
	for _, c := range hostCols {
		if v := Col(r, i, c); v != "" {
			hs = append(hs, v)
		}
	}
	return hs
}

// ParseFrontends reads SHOW FRONTENDS.
func ParseFrontends(r sdk.Rows) []Member {
	var ms []Member
	for i := range r.Values {
		ms = append(ms, Member{
			Name: Col(r, i, "Name"), Hosts: hostsOf(r, i),
			Port: colInt(r, i, "EditLogPort"), Query: colInt(r, i, "QueryPort"),
			Role: strings.ToUpper(Col(r, i, "Role")), IsMaster: colBool(r, i, "IsMaster"),
			Alive:  colBool(r, i, "Alive") && !strings.EqualFold(Col(r, i, "Join"), "false"),
			ErrMsg: Col(r, i, "ErrMsg"), Version: Col(r, i, "Version"),
		})
	}
	return ms
}

// ParseBackends reads SHOW BACKENDS.
func ParseBackends(r sdk.Rows) []Member {
	var ms []Member
	for i := range r.Values {
		ms = append(ms, Member{
			Name: Col(r, i, "BackendId"), Hosts: hostsOf(r, i), Port: colInt(r, i, "HeartbeatPort"),
			Alive: colBool(r, i, "Alive"), ErrMsg: Col(r, i, "ErrMsg"), Version: Col(r, i, "Version"),
			Decommissioned: colBool(r, i, "SystemDecommissioned"), TabletNum: colInt(r, i, "TabletNum"),
		})
	}
	return ms
}

// ParseBrokers reads SHOW BROKER.
func ParseBrokers(r sdk.Rows) []Member {
	var ms []Member
	for i := range r.Values {
		ms = append(ms, Member{
			Name: Col(r, i, "Name"), Hosts: hostsOf(r, i), Port: colInt(r, i, "Port"),
			Alive: colBool(r, i, "Alive"), ErrMsg: Col(r, i, "ErrMsg"),
		})
	}
	return ms
}

// Find returns the member at addrs (any of a node's addresses) and port.
func Find(ms []Member, addrs []string, port int) (Member, bool) {
	for _, m := range ms {
		if m.Port != port {
			continue
		}
		for _, h := range m.Hosts {
			for _, a := range addrs {
				if strings.EqualFold(h, a) {
					return m, true
				}
			}
		}
	}
	return Member{}, false
}

// Endpoint joins a host and port as Doris writes them ("h:p", "[v6]:p").
func Endpoint(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

var hostRe = regexp.MustCompile(`^[A-Za-z0-9._:\-]+$`)

// CheckHost refuses an address that cannot appear safely inside a SQL
// string literal or a URL.
func CheckHost(h string) error {
	if !hostRe.MatchString(h) {
		return fmt.Errorf("host %q is not a valid host name or IP address", h)
	}
	return nil
}

// AlreadyExists reports whether a Doris error says the node is already a
// member: "Same backend already exists[h:p]", "frontend already exists
// ...", "Broker(h:p) has already in brokers.".
func AlreadyExists(err error) bool {
	if err == nil {
		return false
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "already exists") || strings.Contains(m, "has already in brokers")
}

// NotMember reports whether a Doris error says the node is not a member
// (so dropping it again is done): "backend does not exists[h:p]",
// "frontend does not exist[h:p]", "Broker(h:p) has not in brokers.".
func NotMember(err error) bool {
	if err == nil {
		return false
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "not exist") || strings.Contains(m, "has not in brokers")
}

// FEQueryAddrs lists "host:query_port" of every FE the manager knows,
// master-marked ones first, skipping skipped nodes.
func FEQueryAddrs(c sdk.Cluster, extra ...sdk.Node) []string {
	var first, rest []string
	seen := map[string]bool{}
	for _, n := range append(append([]sdk.Node(nil), c.Nodes...), extra...) {
		if n.Role != RoleFE || n.Skipped || n.Host == "" {
			continue
		}
		a := Endpoint(n.Host, FE.NodePort(n, "query_port"))
		if seen[a] {
			continue
		}
		seen[a] = true
		if IsMaster(n) {
			first = append(first, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(first, rest...)
}

// Master is what master discovery found.
type Master struct {
	Member
	QueryAddr string   // host:query_port to send DDL to
	Frontends []Member // SHOW FRONTENDS as seen
}

// FindMaster asks the FEs at addrs, in order, for SHOW FRONTENDS and
// returns the one whose IsMaster column is true. It never assumes: an FE
// that answers without naming a master is passed over.
func FindMaster(ctx context.Context, h sdk.Host, addrs []string) (Master, error) {
	var tried []string
	for _, a := range addrs {
		rows, err := h.Query(ctx, a, "SHOW FRONTENDS")
		if err != nil {
			if ctx.Err() != nil {
				return Master{}, ctx.Err()
			}
			tried = append(tried, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		fes := ParseFrontends(rows)
		for _, m := range fes {
			if m.IsMaster {
				q := m.Query
				if q == 0 {
					q = FE.DefaultPort("query_port")
				}
				return Master{Member: m, QueryAddr: Endpoint(m.Addr(), q), Frontends: fes}, nil
			}
		}
		tried = append(tried, a+": no FE is master yet")
	}
	if len(tried) == 0 {
		return Master{}, fmt.Errorf("no FE is known to ask for the master")
	}
	return Master{}, fmt.Errorf("no master FE found (asked %s)", strings.Join(tried, "; "))
}

// NodeAddrs returns the addresses a node may appear under in SHOW output:
// its host as given, plus the IPv4/IPv6 addresses the host resolves it to
// (Doris 0.x/1.x shows IPs even when a node was added by name).
func NodeAddrs(ctx context.Context, h sdk.Host, host string) []string {
	addrs := []string{host}
	if net.ParseIP(host) != nil || CheckHost(host) != nil {
		return addrs
	}
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"getent", "ahosts", host}})
	if err != nil || res.ExitCode != 0 {
		return addrs
	}
	seen := map[string]bool{host: true}
	for _, line := range strings.Split(res.Output, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && net.ParseIP(f[0]) != nil && !seen[f[0]] {
			seen[f[0]] = true
			addrs = append(addrs, f[0])
		}
	}
	return addrs
}
