package node

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim/server/internal/conf"
)

// confDef is one configuration item a process knows, as Doris declares it:
// FE @ConfField(mutable, masterOnly) fields, BE DEFINE_m* (mutable) and
// DEFINE_* (fixed at start) fields. Only a few of Doris's hundreds are here.
type confDef struct {
	key        string
	typ        string // FE: long, int, boolean, String, double; BE: int64_t, int32_t, bool, std::string, double
	def        string
	mutable    bool
	masterOnly bool
}

var feConfDefs = []confDef{
	{key: "http_port", typ: "int", def: "8030"},
	{key: "rpc_port", typ: "int", def: "9020"},
	{key: "query_port", typ: "int", def: "9030"},
	{key: "edit_log_port", typ: "int", def: "9010"},
	{key: "meta_dir", typ: "String", def: "${DORIS_HOME}/doris-meta"},
	{key: "sys_log_dir", typ: "String", def: "${DORIS_HOME}/log"},
	{key: "sys_log_level", typ: "String", def: "INFO"},
	{key: "priority_networks", typ: "String", def: ""},
	{key: "qe_max_connection", typ: "int", def: "1024"},
	{key: "max_bytes_per_broker_scanner", typ: "long", def: "536870912000", mutable: true, masterOnly: true},
	{key: "qe_slow_log_ms", typ: "long", def: "5000", mutable: true},
	{key: "max_running_txn_num_per_db", typ: "int", def: "1000", mutable: true, masterOnly: true},
	{key: "disable_balance", typ: "boolean", def: "false", mutable: true, masterOnly: true},
	{key: "disable_tablet_scheduler", typ: "boolean", def: "false", mutable: true, masterOnly: true},
	{key: "drop_backend_after_decommission", typ: "boolean", def: "true", mutable: true, masterOnly: true},
	{key: "catalog_trash_expire_second", typ: "long", def: "86400", mutable: true, masterOnly: true},
}

var beConfDefs = []confDef{
	{key: "be_port", typ: "int32_t", def: "9060"},
	{key: "webserver_port", typ: "int32_t", def: "8040"},
	{key: "heartbeat_service_port", typ: "int32_t", def: "9050"},
	{key: "brpc_port", typ: "int32_t", def: "8060"},
	{key: "storage_root_path", typ: "std::string", def: "${DORIS_HOME}/storage"},
	{key: "priority_networks", typ: "std::string", def: ""},
	{key: "sys_log_level", typ: "std::string", def: "INFO"},
	{key: "max_base_compaction_threads", typ: "int32_t", def: "4"},
	{key: "disable_auto_compaction", typ: "bool", def: "false", mutable: true},
	{key: "max_tablet_version_num", typ: "int32_t", def: "2000", mutable: true},
	{key: "streaming_load_max_mb", typ: "int64_t", def: "10240", mutable: true},
	{key: "write_buffer_size", typ: "int64_t", def: "209715200", mutable: true},
}

// confItem is a configuration item's current value.
type confItem struct {
	confDef
	value string
}

// settings are a process's configuration items: the defaults, overridden
// by its conf file at start, changed at run time for mutable items.
type settings struct {
	mu    sync.Mutex
	items map[string]*confItem
}

// newSettings starts from defs with the values c sets (c may be nil);
// lookup expands ${VAR} in defaults.
func newSettings(defs []confDef, c *conf.Conf, lookup func(string) (string, bool)) *settings {
	s := &settings{items: map[string]*confItem{}}
	for _, d := range defs {
		v := conf.Expand(d.def, lookup)
		if c != nil {
			if cv, ok := c.Get(d.key); ok {
				v = cv
			}
		}
		s.items[d.key] = &confItem{confDef: d, value: v}
	}
	return s
}

// errConf* say why an item cannot be set; callers word them per role.
type confErr struct {
	kind string // notFound, notMutable, badValue
	msg  string
}

func (e *confErr) Error() string { return e.msg }

func (s *settings) set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return &confErr{kind: "notFound"}
	}
	if !it.mutable {
		return &confErr{kind: "notMutable"}
	}
	if err := checkValue(it.typ, value); err != nil {
		return &confErr{kind: "badValue", msg: err.Error()}
	}
	it.value = value
	return nil
}

func (s *settings) item(key string) (confItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return confItem{}, false
	}
	return *it, true
}

func (s *settings) boolValue(key string) bool {
	it, _ := s.item(key)
	return strings.EqualFold(it.value, "true")
}

// list returns the items whose key matches pattern (SQL LIKE; "" all), by key.
func (s *settings) list(pattern string) []confItem {
	var re *regexp.Regexp
	if pattern != "" {
		re = likeRegexp(pattern)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []confItem
	for _, it := range s.items {
		if re == nil || re.MatchString(it.key) {
			out = append(out, *it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// likeRegexp turns a SQL LIKE pattern into an anchored regexp.
func likeRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func checkValue(typ, v string) error {
	var err error
	switch typ {
	case "long", "int64_t":
		_, err = strconv.ParseInt(v, 10, 64)
	case "int", "int32_t":
		_, err = strconv.ParseInt(v, 10, 32)
	case "double":
		_, err = strconv.ParseFloat(v, 64)
	case "boolean", "bool":
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			err = fmt.Errorf("type mismatch")
		}
	}
	if err != nil {
		return fmt.Errorf("convert '%s' as %s failed", v, typ)
	}
	return nil
}

// setFEConfig is ADMIN SET [ALL FRONTENDS|FRONTEND] CONFIG: on this FE (on
// the master for a MasterOnly item), or on every FE.
func (f *fe) setFEConfig(all bool, key, value string) (*result, error) {
	it, ok := f.cfg.item(key)
	if !ok {
		return nil, ddlErrorf("Config '%s' does not exist", key)
	}
	f.mu.Lock()
	master := f.meta.IsMaster
	var others []string
	for _, x := range f.meta.Frontends {
		if x.Name != f.meta.SelfName && x.Joined {
			others = append(others, net.JoinHostPort(x.Host, strconv.Itoa(x.EditLogPort)))
		}
	}
	f.mu.Unlock()
	if !all && it.masterOnly && !master {
		return f.onMaster(peerReq{Op: "setConfig", Key: key, Value: value})
	}
	res, err := f.setFEConfigLocal(key, value)
	if err != nil || !all {
		return res, err
	}
	for _, addr := range others {
		var resp peerResp
		if err := call(addr, 5*time.Second, peerReq{Op: "setConfigLocal", Key: key, Value: value}, &resp); err != nil {
			return nil, ddlErrorf("failed to set config on frontend %s: %v", addr, err)
		}
		if !resp.OK {
			return nil, &ddlError{msg: resp.Err}
		}
	}
	return res, nil
}

func (f *fe) setFEConfigLocal(key, value string) (*result, error) {
	err := f.cfg.set(key, value)
	var ce *confErr
	if errors.As(err, &ce) {
		switch ce.kind {
		case "notFound":
			return nil, ddlErrorf("Config '%s' does not exist", key)
		case "notMutable":
			return nil, ddlErrorf("Config '%s' is not mutable", key)
		default:
			return nil, ddlErrorf("Failed to set config '%s'. err: %s", key, ce.msg)
		}
	}
	f.log.Infof("set config %s to %s", key, value)
	return &result{}, nil
}

// showFEConfig is [ADMIN] SHOW FRONTEND CONFIG [LIKE 'pattern'].
func (f *fe) showFEConfig(pattern string) *result {
	out := &result{columns: []string{"Key", "Value", "Type", "IsMutable", "MasterOnly", "Comment"}, rows: [][]string{}}
	for _, it := range f.cfg.list(pattern) {
		out.rows = append(out.rows, []string{it.key, it.value, it.typ, strconv.FormatBool(it.mutable), strconv.FormatBool(it.masterOnly), ""})
	}
	return out
}
