package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// mysqlServerVersion is what Doris announces in the MySQL handshake.
const mysqlServerVersion = "5.7.99"

type result struct {
	columns  []string
	rows     [][]string
	affected uint64
}

// ddlError is a Doris-style failure: the client sees "errCode = 2,
// detailMessage = ..." with MySQL error code (default 1105).
type ddlError struct {
	code uint16
	msg  string
}

func (e *ddlError) Error() string { return e.msg }

func ddlErrorf(f string, args ...any) error { return &ddlError{msg: fmt.Sprintf(f, args...)} }

func (f *fe) serveMySQL(l net.Listener) {
	srv := server.NewServerWithAuth(mysqlServerVersion, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil, authProvider{f})
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			ac := &authConn{Conn: c}
			s := &session{from: f.host}
			conn, err := srv.NewCustomizedConn(ac, feAuth{f: f, conn: ac}, &mysqlHandler{f: f, s: s})
			if err != nil {
				c.Close()
				return
			}
			s.user = conn.GetUser()
			for !conn.Closed() {
				if err := conn.HandleCommand(); err != nil {
					return
				}
			}
		}()
	}
}

type mysqlHandler struct {
	server.EmptyHandler
	f *fe
	s *session
}

// session is one client connection's state.
type session struct {
	from string // the client's host, for CurrentConnected
	user string // who logged in
	db   string // the current database (USE)
}

func (h *mysqlHandler) UseDB(db string) error {
	switch strings.ToLower(db) {
	case "", "information_schema", "mysql", "__internal_schema":
		h.s.db = ""
		return nil
	}
	res, err := h.f.query("SHOW DATABASES", h.s)
	if err != nil {
		return toMyError(err)
	}
	for _, r := range res.rows {
		if r[0] == db {
			h.s.db = db
			return nil
		}
	}
	return toMyError(&ddlError{code: 1049, msg: fmt.Sprintf("Unknown database '%s'", db)})
}

func (h *mysqlHandler) HandleQuery(q string) (*mysql.Result, error) {
	res, err := h.f.query(q, h.s)
	if err != nil {
		return nil, toMyError(err)
	}
	if res.columns == nil {
		return &mysql.Result{AffectedRows: res.affected}, nil
	}
	values := make([][]any, len(res.rows))
	for i, r := range res.rows {
		values[i] = make([]any, len(r))
		for j, v := range r {
			// As bytes, so that "" stays an empty string: the driver
			// helper sends an empty Go string as NULL.
			values[i][j] = append([]byte{}, v...)
		}
	}
	rs, err := mysql.BuildSimpleTextResultset(res.columns, values)
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}

func (h *mysqlHandler) HandleStmtPrepare(string) (int, int, any, error) {
	return 0, 0, nil, toMyError(ddlErrorf("Prepared statements are not supported by this server"))
}

func toMyError(err error) error {
	var d *ddlError
	if errors.As(err, &d) {
		code := d.code
		if code == 0 {
			code = mysql.ER_UNKNOWN_ERROR
		}
		return mysql.NewError(code, "errCode = 2, detailMessage = "+d.msg)
	}
	return mysql.NewError(mysql.ER_UNKNOWN_ERROR, err.Error())
}

var (
	reAddFE        = regexp.MustCompile(`(?is)^ALTER\s+SYSTEM\s+ADD\s+(FOLLOWER|OBSERVER)\s+(.+)$`)
	reDropFE       = regexp.MustCompile(`(?is)^ALTER\s+SYSTEM\s+DROP\s+(FOLLOWER|OBSERVER)\s+(.+)$`)
	reAddBE        = regexp.MustCompile(`(?is)^ALTER\s+SYSTEM\s+ADD\s+BACKEND\s+(.+?)(\s+PROPERTIES\s*\(.*\))?$`)
	reDropBE       = regexp.MustCompile(`(?is)^ALTER\s+SYSTEM\s+(DROP|DROPP|DECOMMISSION)\s+BACKEND\s+(.+)$`)
	reAddBroker    = regexp.MustCompile("(?is)^ALTER\\s+SYSTEM\\s+ADD\\s+BROKER\\s+`?([A-Za-z0-9_\\-]+)`?\\s+(.+)$")
	reDropAllBrk   = regexp.MustCompile("(?is)^ALTER\\s+SYSTEM\\s+DROP\\s+ALL\\s+BROKER\\s+`?([A-Za-z0-9_\\-]+)`?$")
	reDropBroker   = regexp.MustCompile("(?is)^ALTER\\s+SYSTEM\\s+DROP\\s+BROKER\\s+`?([A-Za-z0-9_\\-]+)`?\\s+(.+)$")
	reShowFE       = regexp.MustCompile(`(?is)^SHOW\s+FRONTENDS$`)
	reShowBE       = regexp.MustCompile(`(?is)^SHOW\s+BACKENDS$`)
	reShowBroker   = regexp.MustCompile(`(?is)^SHOW\s+BROKER$`)
	reShowProc     = regexp.MustCompile(`(?is)^SHOW\s+PROC\s+['"]/([A-Za-z0-9_/]*?)/?['"]$`)
	reCancelDecom  = regexp.MustCompile(`(?is)^CANCEL\s+DECOMMISSION\s+BACKEND\s+(.+)$`)
	reSetFEConfig  = regexp.MustCompile(`(?is)^ADMIN\s+SET\s+(ALL\s+FRONTENDS|FRONTEND)\s+CONFIG\s*\(\s*["']([^"']+)["']\s*=\s*["']([^"']*)["']\s*\)$`)
	reShowFEConfig = regexp.MustCompile(`(?is)^(?:ADMIN\s+)?SHOW\s+FRONTEND\s+CONFIG(?:\s+LIKE\s+["']([^"']*)["'])?$`)
	reSelectVar    = regexp.MustCompile(`(?is)^SELECT\s+@@(?:session\.|global\.)?([a-z_]+)(?:\s+AS\s+\S+)?(?:\s+LIMIT\s+\d+)?$`)
	reSelectNumber = regexp.MustCompile(`(?is)^SELECT\s+(\d+)$`)
	reShowVars     = regexp.MustCompile(`(?is)^SHOW\s+(?:SESSION\s+|GLOBAL\s+)?VARIABLES\s+(?:LIKE|WHERE\s+Variable_name\s*=)\s*['"]([^'"]+)['"]$`)
	reSet          = regexp.MustCompile(`(?is)^(SET|COMMIT|ROLLBACK|BEGIN|START\s+TRANSACTION|USE)\b`)
	// Statements the master answers: membership and catalog changes, and
	// what lists them (a follower's copy of the meta may lag).
	reMaster = regexp.MustCompile(`(?is)^(ALTER\s+SYSTEM|CANCEL\s+DECOMMISSION|(CREATE|DROP)\s+(DATABASE|SCHEMA|TABLE)|SHOW\s+(FRONTENDS|BACKENDS|BROKER|PROC|DATABASES|TABLES|PARTITIONS))\b`)
)

func (f *fe) variables() map[string]string {
	return map[string]string{
		"version_comment":          "Doris version " + VersionString(f.o.Version),
		"version":                  mysqlServerVersion,
		"max_allowed_packet":       "1048576",
		"auto_increment_increment": "1",
		"character_set_client":     "utf8mb4",
		"character_set_results":    "utf8mb4",
		"collation_connection":     "utf8mb4_0900_bin",
		"sql_mode":                 "ONLY_FULL_GROUP_BY",
		"time_zone":                "Asia/Shanghai",
		"system_time_zone":         "Asia/Shanghai",
		"tx_isolation":             "REPEATABLE-READ",
		"transaction_isolation":    "REPEATABLE-READ",
		"autocommit":               "1",
		"wait_timeout":             "28800",
		"lower_case_table_names":   "0",
	}
}

// query runs one statement for a client of this FE. Membership and catalog
// statements go to the master, as a non-master Doris FE forwards them.
func (f *fe) query(q string, s *session) (*result, error) {
	q = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(q), ";"))
	// Before spaces are folded: they may be part of the password.
	if reSetPassword.MatchString(q) {
		return f.onMaster(peerReq{Op: "query", SQL: q, From: s.from, User: s.user})
	}
	q = strings.Join(strings.Fields(q), " ")
	if reMaster.MatchString(q) {
		return f.onMaster(peerReq{Op: "query", SQL: q, From: s.from, DB: s.db})
	}
	if m := reSetFEConfig.FindStringSubmatch(q); m != nil {
		return f.setFEConfig(strings.HasPrefix(strings.ToUpper(m[1]), "ALL"), m[2], m[3])
	}
	if m := reShowFEConfig.FindStringSubmatch(q); m != nil {
		return f.showFEConfig(m[1]), nil
	}
	vars := f.variables()
	switch {
	case reSelectNumber.MatchString(q):
		n := reSelectNumber.FindStringSubmatch(q)[1]
		return &result{columns: []string{n}, rows: [][]string{{n}}}, nil
	case reSelectVar.MatchString(q):
		m := reSelectVar.FindStringSubmatch(q)
		v, ok := vars[strings.ToLower(m[1])]
		if !ok {
			return nil, ddlErrorf("Unknown system variable '%s'", m[1])
		}
		col := q[strings.Index(q, "@@"):]
		if i := strings.IndexAny(col, " "); i > 0 {
			col = col[:i]
		}
		return &result{columns: []string{col}, rows: [][]string{{v}}}, nil
	case strings.EqualFold(q, "SELECT VERSION()"):
		return &result{columns: []string{"version()"}, rows: [][]string{{mysqlServerVersion}}}, nil
	case reShowVars.MatchString(q):
		name := strings.ToLower(reShowVars.FindStringSubmatch(q)[1])
		rows := [][]string{}
		if v, ok := vars[name]; ok {
			rows = append(rows, []string{name, v})
		}
		return &result{columns: []string{"Variable_name", "Value"}, rows: rows}, nil
	case reSet.MatchString(q):
		return &result{}, nil
	}
	return nil, ddlErrorf("Syntax error in line 1:\n%s\n^\nEncountered: IDENTIFIER\nExpected", q)
}

// onMaster runs req on the master: here when this FE is the master, else
// forwarded over edit_log_port.
func (f *fe) onMaster(req peerReq) (*result, error) {
	f.mu.Lock()
	master, masterAddr := f.meta.IsMaster, f.meta.Master
	f.mu.Unlock()
	if master {
		return f.execPeer(req)
	}
	var resp peerResp
	if err := call(masterAddr, 10*time.Second, req, &resp); err != nil {
		return nil, ddlErrorf("failed to forward stmt to master %s: %v", masterAddr, err)
	}
	if !resp.OK {
		return nil, &ddlError{code: resp.Code, msg: resp.Err}
	}
	if resp.Columns != nil && resp.Rows == nil {
		resp.Rows = [][]string{}
	}
	return &result{columns: resp.Columns, rows: resp.Rows, affected: resp.Affected}, nil
}

// execPeer runs a statement or config change sent to the master.
func (f *fe) execPeer(req peerReq) (*result, error) {
	if req.Op == "setConfig" {
		return f.setFEConfig(false, req.Key, req.Value)
	}
	return f.execMaster(req.SQL, &session{from: req.From, db: req.DB, user: req.User})
}

// execMaster runs a membership or catalog statement on the master.
func (f *fe) execMaster(q string, s *session) (*result, error) {
	if reSetPassword.MatchString(q) {
		return f.setPassword(q, s)
	}
	if m := reShowProc.FindStringSubmatch(q); m != nil {
		parts := strings.Split(m[1], "/")
		switch p := strings.ToLower(parts[0]); {
		case p == "frontends" && len(parts) == 1:
			return f.showFrontends(s.from), nil
		case p == "backends" && len(parts) == 1:
			return f.showBackends(), nil
		case p == "brokers" && len(parts) == 1:
			return f.showBrokers(), nil
		case p == "dbs" || (p == "statistic" && len(parts) == 1):
			parts[0] = p
			return f.procCatalog(parts)
		}
		return nil, ddlErrorf("Proc path '/%s' doesn't exist", m[1])
	}
	switch {
	case reShowFE.MatchString(q):
		return f.showFrontends(s.from), nil
	case reShowBE.MatchString(q):
		return f.showBackends(), nil
	case reShowBroker.MatchString(q):
		return f.showBrokers(), nil
	case strings.EqualFold(q, "SHOW DATABASES"):
		return f.showDatabases(), nil
	case reShowTables.MatchString(q):
		return f.showTables(reShowTables.FindStringSubmatch(q)[1], s.db)
	case reShowParts.MatchString(q):
		return f.showPartitions(reShowParts.FindStringSubmatch(q), s.db)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	switch {
	case reCancelDecom.MatchString(q):
		err = f.cancelDecommission(reCancelDecom.FindStringSubmatch(q)[1])
	case reCreateDB.MatchString(q):
		err = f.createDatabase(reCreateDB.FindStringSubmatch(q))
	case reDropDB.MatchString(q):
		err = f.dropDatabase(reDropDB.FindStringSubmatch(q))
	case reCreateTbl.MatchString(q):
		err = f.createTable(reCreateTbl.FindStringSubmatch(q), s.db)
	case reDropTbl.MatchString(q):
		err = f.dropTable(reDropTbl.FindStringSubmatch(q), s.db)
	case reAddFE.MatchString(q):
		m := reAddFE.FindStringSubmatch(q)
		err = f.addFrontend(strings.ToUpper(m[1]), m[2])
	case reDropFE.MatchString(q):
		m := reDropFE.FindStringSubmatch(q)
		err = f.dropFrontend(strings.ToUpper(m[1]), m[2])
	case reAddBE.MatchString(q):
		err = f.addBackends(reAddBE.FindStringSubmatch(q)[1])
	case reDropBE.MatchString(q):
		m := reDropBE.FindStringSubmatch(q)
		err = f.dropBackends(strings.ToUpper(m[1]) == "DECOMMISSION", m[2])
	case reDropAllBrk.MatchString(q):
		err = f.dropBrokers(reDropAllBrk.FindStringSubmatch(q)[1], "")
	case reAddBroker.MatchString(q):
		m := reAddBroker.FindStringSubmatch(q)
		err = f.addBrokers(m[1], m[2])
	case reDropBroker.MatchString(q):
		m := reDropBroker.FindStringSubmatch(q)
		err = f.dropBrokers(m[1], m[2])
	default:
		return nil, ddlErrorf("Syntax error in line 1:\n%s\n^\nEncountered: IDENTIFIER\nExpected", q)
	}
	if err != nil {
		return nil, err
	}
	f.meta.JournalID++
	if err := f.meta.save(f.metaDir); err != nil {
		return nil, fmt.Errorf("write meta: %w", err)
	}
	f.log.Infof("finished: %s", q)
	return &result{}, nil
}

type hostPort struct {
	host string
	port int
}

func (h hostPort) String() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// parseHostPorts reads a list like "h:p", 'h:p' separated by commas.
func parseHostPorts(list string) ([]hostPort, error) {
	var out []hostPort
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if len(item) < 2 || (item[0] != '"' && item[0] != '\'') || item[len(item)-1] != item[0] {
			return nil, ddlErrorf("Syntax error in line 1: host:port must be quoted: %s", item)
		}
		hp := item[1 : len(item)-1]
		h, p, err := net.SplitHostPort(hp)
		if err != nil || h == "" {
			return nil, ddlErrorf("Invalid host port format: %s", hp)
		}
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return nil, ddlErrorf("Port is out of range: %s", p)
		}
		if net.ParseIP(h) == nil {
			addrs, err := net.LookupHost(h)
			if err != nil || len(addrs) == 0 {
				return nil, ddlErrorf("Unknown hostname: %s", h)
			}
			h = addrs[0]
		}
		out = append(out, hostPort{host: h, port: port})
	}
	return out, nil
}

func (f *fe) addFrontend(role, list string) error {
	hps, err := parseHostPorts(list)
	if err != nil {
		return err
	}
	if len(hps) != 1 {
		return ddlErrorf("Syntax error in line 1: one frontend at a time")
	}
	hp := hps[0]
	if x := f.meta.frontend(hp.host, hp.port); x != nil {
		return ddlErrorf("frontend already exists name: %s, role: %s, %s", x.Name, x.Role, hp)
	}
	f.meta.Frontends = append(f.meta.Frontends, &Frontend{Name: feNodeName(), Host: hp.host, EditLogPort: hp.port, Role: role})
	return nil
}

func (f *fe) dropFrontend(role, list string) error {
	hps, err := parseHostPorts(list)
	if err != nil {
		return err
	}
	hp := hps[0]
	if hp.host == f.host && hp.port == f.ports["edit_log_port"] {
		return ddlErrorf("can not drop current master node.")
	}
	x := f.meta.frontend(hp.host, hp.port)
	if x == nil {
		return ddlErrorf("frontend does not exist[%s]", hp)
	}
	if x.Role != role {
		return ddlErrorf("%s does not exist[%s]", role, hp)
	}
	out := f.meta.Frontends[:0]
	for _, y := range f.meta.Frontends {
		if y != x {
			out = append(out, y)
		}
	}
	f.meta.Frontends = out
	return nil
}

func (f *fe) addBackends(list string) error {
	hps, err := parseHostPorts(list)
	if err != nil {
		return err
	}
	for _, hp := range hps {
		if f.meta.backend(hp.host, hp.port) != nil {
			return ddlErrorf("Same backend already exists[%s]", hp)
		}
	}
	for _, hp := range hps {
		f.meta.Backends = append(f.meta.Backends, &Backend{ID: f.meta.NextID, Host: hp.host, HeartbeatPort: hp.port})
		f.meta.NextID++
	}
	return nil
}

func (f *fe) dropBackends(decommission bool, list string) error {
	hps, err := parseHostPorts(list)
	if err != nil {
		return err
	}
	for _, hp := range hps {
		if f.meta.backend(hp.host, hp.port) == nil {
			if decommission {
				return ddlErrorf("Backend does not exist[%s]", hp)
			}
			return ddlErrorf("backend does not exists[%s]", hp)
		}
	}
	if decommission {
		var leaving []*Backend
		for _, hp := range hps {
			if b := f.meta.backend(hp.host, hp.port); !b.Decommissioned {
				leaving = append(leaving, b)
			}
		}
		if err := f.checkDecommission(leaving); err != nil {
			return err
		}
		for _, b := range leaving {
			b.Decommissioned = true
			f.log.Infof("set backend %d to decommission", b.ID)
		}
		return nil
	}
	for _, hp := range hps {
		b := f.meta.backend(hp.host, hp.port)
		out := f.meta.Backends[:0]
		for _, y := range f.meta.Backends {
			if y != b {
				out = append(out, y)
			}
		}
		f.meta.Backends = out
	}
	return nil
}

// cancelDecommission clears the decommission mark; replicas already moved
// stay where they are.
func (f *fe) cancelDecommission(list string) error {
	hps, err := parseHostPorts(list)
	if err != nil {
		return err
	}
	for _, hp := range hps {
		if f.meta.backend(hp.host, hp.port) == nil {
			return ddlErrorf("Backend does not exist[%s]", hp)
		}
	}
	for _, hp := range hps {
		b := f.meta.backend(hp.host, hp.port)
		if !b.Decommissioned {
			f.log.Infof("backend is not decommissioned[%d]", b.ID)
		}
		b.Decommissioned = false
	}
	return nil
}

func (f *fe) addBrokers(name, list string) error {
	hps, err := parseHostPorts(list)
	if err != nil {
		return err
	}
	for _, hp := range hps {
		for _, b := range f.meta.Brokers {
			if b.Name == name && b.Host == hp.host && b.Port == hp.port {
				return ddlErrorf("Broker(%s) has already in brokers.", hp)
			}
		}
	}
	for _, hp := range hps {
		f.meta.Brokers = append(f.meta.Brokers, &Broker{Name: name, Host: hp.host, Port: hp.port})
	}
	return nil
}

// dropBrokers drops the listed addresses of name, or all of name when list is "".
func (f *fe) dropBrokers(name, list string) error {
	var hps []hostPort
	if list != "" {
		var err error
		if hps, err = parseHostPorts(list); err != nil {
			return err
		}
	}
	found := false
	for _, b := range f.meta.Brokers {
		found = found || b.Name == name
	}
	if !found {
		return ddlErrorf("Unknown broker name(%s)", name)
	}
	match := func(b *Broker) bool {
		if b.Name != name {
			return false
		}
		if list == "" {
			return true
		}
		for _, hp := range hps {
			if b.Host == hp.host && b.Port == hp.port {
				return true
			}
		}
		return false
	}
	for _, hp := range hps {
		ok := false
		for _, b := range f.meta.Brokers {
			ok = ok || (b.Name == name && b.Host == hp.host && b.Port == hp.port)
		}
		if !ok {
			return ddlErrorf("Broker(%s) has not in brokers.", hp)
		}
	}
	out := f.meta.Brokers[:0]
	for _, b := range f.meta.Brokers {
		if !match(b) {
			out = append(out, b)
		}
	}
	f.meta.Brokers = out
	return nil
}

// Column sets by imitated major version: 2.x uses Host, older ones IP and HostName.
func (f *fe) frontendColumns() []string {
	switch v := major(f.o.Version); {
	case v >= 2:
		return []string{"Name", "Host", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "ArrowFlightSqlPort", "Role",
			"IsMaster", "ClusterId", "Join", "Alive", "ReplayedJournalId", "LastStartTime", "LastHeartbeat", "IsHelper",
			"ErrMsg", "Version", "CurrentConnected"}
	case v == 1:
		return []string{"Name", "IP", "HostName", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "Role", "IsMaster",
			"ClusterId", "Join", "Alive", "ReplayedJournalId", "LastHeartbeat", "IsHelper", "ErrMsg", "Version",
			"CurrentConnected"}
	default:
		return []string{"Name", "IP", "HostName", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "Role", "IsMaster",
			"ClusterId", "Join", "Alive", "ReplayedJournalId", "LastHeartbeat", "IsHelper", "ErrMsg", "Version"}
	}
}

func (f *fe) backendColumns() []string {
	if major(f.o.Version) >= 2 {
		return []string{"BackendId", "Host", "HeartbeatPort", "BePort", "HttpPort", "BrpcPort", "ArrowFlightSqlPort",
			"LastStartTime", "LastHeartbeat", "Alive", "SystemDecommissioned", "TabletNum", "DataUsedCapacity",
			"TrashUsedCapacity", "AvailCapacity", "TotalCapacity", "UsedPct", "MaxDiskUsedPct", "RemoteUsedCapacity",
			"Tag", "ErrMsg", "Version", "Status", "HeartbeatFailureCounter", "NodeRole"}
	}
	return []string{"BackendId", "Cluster", "IP", "HostName", "HeartbeatPort", "BePort", "HttpPort", "BrpcPort",
		"LastStartTime", "LastHeartbeat", "Alive", "SystemDecommissioned", "ClusterDecommissioned", "TabletNum",
		"DataUsedCapacity", "AvailCapacity", "TotalCapacity", "UsedPct", "MaxDiskUsedPct", "Tag", "ErrMsg", "Version",
		"Status"}
}

func (f *fe) brokerColumns() []string {
	if major(f.o.Version) >= 2 {
		return []string{"Name", "Host", "Port", "Alive", "LastStartTime", "LastUpdateTime", "ErrMsg"}
	}
	return []string{"Name", "IP", "HostName", "Port", "Alive", "LastStartTime", "LastUpdateTime", "ErrMsg"}
}

func project(cols []string, rows []map[string]string) *result {
	out := &result{columns: cols, rows: [][]string{}}
	for _, r := range rows {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = r[c]
		}
		out.rows = append(out.rows, line)
	}
	return out
}

func portString(p int) string {
	if p == 0 {
		return "-1"
	}
	return strconv.Itoa(p)
}

func (f *fe) showFrontends(from string) *result {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rows []map[string]string
	for _, x := range f.meta.Frontends {
		self := x.Name == f.meta.SelfName
		alive := x.Alive || self
		journal := x.ReplayedJournalID
		// Before 2.x every row showed the answering FE's own http_port.
		httpPort := f.ports["http_port"]
		if major(f.o.Version) >= 2 && !self {
			httpPort = x.HTTPPort
		}
		if self {
			journal = f.meta.JournalID
		}
		rows = append(rows, map[string]string{
			"Name": x.Name, "Host": x.Host, "IP": x.Host, "HostName": x.Host,
			"EditLogPort": strconv.Itoa(x.EditLogPort), "HttpPort": strconv.Itoa(httpPort),
			"QueryPort": strconv.Itoa(x.QueryPort), "RpcPort": strconv.Itoa(x.RPCPort), "ArrowFlightSqlPort": "-1",
			"Role": x.Role, "IsMaster": strconv.FormatBool(self), "ClusterId": strconv.FormatInt(f.meta.ClusterID, 10),
			"Join": strconv.FormatBool(x.Joined), "Alive": strconv.FormatBool(alive),
			"ReplayedJournalId": strconv.FormatInt(journal, 10), "LastStartTime": timeString(x.LastStartTime),
			"LastHeartbeat": timeString(x.LastHeartbeat), "IsHelper": strconv.FormatBool(x.IsHelper),
			"ErrMsg": x.ErrMsg, "Version": x.Version, "CurrentConnected": yesNo(x.Host == from),
		})
	}
	return project(f.frontendColumns(), rows)
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

func (f *fe) showBackends() *result {
	f.mu.Lock()
	defer f.mu.Unlock()
	bes := append([]*Backend(nil), f.meta.Backends...)
	counts := f.meta.replicaCounts()
	sort.SliceStable(bes, func(i, j int) bool { return bes[i].Host < bes[j].Host })
	var rows []map[string]string
	for _, b := range bes {
		status, _ := json.Marshal(map[string]any{"lastSuccessReportTabletsTime": "N/A", "lastStreamLoadTime": -1,
			"isQueryDisabled": false, "isLoadDisabled": false})
		role := ""
		if b.Alive {
			role = "mix"
		}
		rows = append(rows, map[string]string{
			"BackendId": strconv.FormatInt(b.ID, 10), "Cluster": "default_cluster", "Host": b.Host, "IP": b.Host,
			"HostName": b.Host, "HeartbeatPort": strconv.Itoa(b.HeartbeatPort), "BePort": portString(b.BePort),
			"HttpPort": portString(b.HTTPPort), "BrpcPort": portString(b.BrpcPort), "ArrowFlightSqlPort": "-1",
			"LastStartTime": timeString(b.LastStartTime), "LastHeartbeat": timeString(b.LastHeartbeat),
			"Alive": strconv.FormatBool(b.Alive), "SystemDecommissioned": strconv.FormatBool(b.Decommissioned),
			"ClusterDecommissioned": "false", "TabletNum": strconv.Itoa(counts[b.ID]), "DataUsedCapacity": "0.000 ",
			"TrashUsedCapacity": "0.000 ", "AvailCapacity": "1.000 B", "TotalCapacity": "0.000 ", "UsedPct": "0.00 %",
			"MaxDiskUsedPct": "0.00 %", "RemoteUsedCapacity": "0.000 ", "Tag": `{"location" : "default"}`,
			"ErrMsg": b.ErrMsg, "Version": b.Version, "Status": string(status), "HeartbeatFailureCounter": "0",
			"NodeRole": role,
		})
	}
	return project(f.backendColumns(), rows)
}

func (f *fe) showBrokers() *result {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rows []map[string]string
	for _, b := range f.meta.Brokers {
		rows = append(rows, map[string]string{
			"Name": b.Name, "Host": b.Host, "IP": b.Host, "HostName": b.Host, "Port": strconv.Itoa(b.Port),
			"Alive": strconv.FormatBool(b.Alive), "LastStartTime": timeString(b.LastStartTime),
			"LastUpdateTime": timeString(b.LastUpdateTime), "ErrMsg": b.ErrMsg,
		})
	}
	return project(f.brokerColumns(), rows)
}
