package node

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Database is a database of the internal catalog.
type Database struct {
	ID      int64
	Name    string
	Created time.Time
	Tables  []*Table
}

// Table is an OLAP table with one partition (named like the table, as Doris
// names the partition of an unpartitioned table) of Buckets tablets, each
// with ReplicationNum replicas on distinct backends.
type Table struct {
	ID              int64
	Name            string
	PartitionID     int64
	Buckets         int
	ReplicationNum  int
	DistributionKey string
	Created         time.Time
	Tablets         []*Tablet
}

// Tablet is one bucket of a table: the backends holding its replicas.
type Tablet struct {
	ID       int64
	Backends []int64
}

func (m *Meta) database(name string) *Database {
	for _, d := range m.Databases {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (d *Database) table(name string) *Table {
	for _, t := range d.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (m *Meta) nextID() int64 {
	id := m.NextID
	m.NextID++
	return id
}

// replicaCounts counts the replicas each backend holds.
func (m *Meta) replicaCounts() map[int64]int {
	n := map[int64]int{}
	for _, d := range m.Databases {
		for _, t := range d.Tables {
			for _, tb := range t.Tablets {
				for _, b := range tb.Backends {
					n[b]++
				}
			}
		}
	}
	return n
}

// maxReplication is the largest replication_num of any table and its name.
func (m *Meta) maxReplication() (int, string) {
	max, name := 0, ""
	for _, d := range m.Databases {
		for _, t := range d.Tables {
			if t.ReplicationNum > max {
				max, name = t.ReplicationNum, d.Name+"."+t.Name
			}
		}
	}
	return max, name
}

// available lists the backends that may receive replicas: alive and not
// decommissioned.
func (m *Meta) available() []*Backend {
	var out []*Backend
	for _, b := range m.Backends {
		if b.Alive && !b.Decommissioned {
			out = append(out, b)
		}
	}
	return out
}

// pickBackend chooses the available backend holding the fewest replicas
// that is not in exclude; nil when there is none.
func pickBackend(avail []*Backend, counts map[int64]int, exclude []int64) *Backend {
	var best *Backend
	for _, b := range avail {
		skip := false
		for _, e := range exclude {
			skip = skip || e == b.ID
		}
		if skip {
			continue
		}
		if best == nil || counts[b.ID] < counts[best.ID] || (counts[b.ID] == counts[best.ID] && b.ID < best.ID) {
			best = b
		}
	}
	return best
}

const notEnoughBackends = "Failed to find enough backend, please check the replication num,replication tag and storage medium and avail capacity of backends or maybe all be on same host."

var (
	reCreateDB   = regexp.MustCompile("(?is)^CREATE\\s+(?:DATABASE|SCHEMA)\\s+(IF\\s+NOT\\s+EXISTS\\s+)?`?([A-Za-z][A-Za-z0-9_]*)`?$")
	reDropDB     = regexp.MustCompile("(?is)^DROP\\s+(?:DATABASE|SCHEMA)\\s+(IF\\s+EXISTS\\s+)?`?([A-Za-z][A-Za-z0-9_]*)`?(\\s+FORCE)?$")
	reCreateTbl  = regexp.MustCompile("(?is)^CREATE\\s+TABLE\\s+(IF\\s+NOT\\s+EXISTS\\s+)?" + tableName + "\\s*\\((.*)$")
	reDropTbl    = regexp.MustCompile("(?is)^DROP\\s+TABLE\\s+(IF\\s+EXISTS\\s+)?" + tableName + "(\\s+FORCE)?$")
	reBuckets    = regexp.MustCompile(`(?is)\bDISTRIBUTED\s+BY\s+(?:HASH\s*\(([^)]*)\)|RANDOM)(?:\s+BUCKETS\s+(\d+|AUTO))?`)
	reRepNum     = regexp.MustCompile(`(?is)["']replication_num["']\s*=\s*["'](-?\d+)["']`)
	reRepAlloc   = regexp.MustCompile(`(?is)["']replication_allocation["']\s*=\s*["']([^"']*)["']`)
	reShowTables = regexp.MustCompile("(?is)^SHOW\\s+TABLES(?:\\s+(?:FROM|IN)\\s+`?([A-Za-z][A-Za-z0-9_]*)`?)?$")
	reShowParts  = regexp.MustCompile("(?is)^SHOW\\s+PARTITIONS\\s+FROM\\s+" + tableName + "$")
)

// tableName matches [`db`.]`table`: groups db, table.
const tableName = "(?:`?([A-Za-z][A-Za-z0-9_]*)`?\\.)?`?([A-Za-z][A-Za-z0-9_]*)`?"

func (f *fe) createDatabase(m []string) error {
	if f.meta.database(m[2]) != nil {
		if m[1] != "" {
			return nil
		}
		return &ddlError{code: 1007, msg: fmt.Sprintf("Can't create database '%s'; database exists", m[2])}
	}
	f.meta.Databases = append(f.meta.Databases, &Database{ID: f.meta.nextID(), Name: m[2], Created: time.Now()})
	return nil
}

func (f *fe) dropDatabase(m []string) error {
	for i, d := range f.meta.Databases {
		if d.Name == m[2] {
			f.meta.Databases = append(f.meta.Databases[:i], f.meta.Databases[i+1:]...)
			return nil
		}
	}
	if m[1] != "" {
		return nil
	}
	return &ddlError{code: 1008, msg: fmt.Sprintf("Can't drop database '%s'; database doesn't exist", m[2])}
}

// lookupDB resolves a table's database: the named one or the session's.
func (f *fe) lookupDB(name, current string) (*Database, error) {
	if name == "" {
		name = current
	}
	if name == "" {
		return nil, &ddlError{code: 1046, msg: "No database selected"}
	}
	d := f.meta.database(name)
	if d == nil {
		return nil, &ddlError{code: 1049, msg: fmt.Sprintf("Unknown database '%s'", name)}
	}
	return d, nil
}

func (f *fe) createTable(m []string, db string) error {
	d, err := f.lookupDB(m[2], db)
	if err != nil {
		return err
	}
	if d.table(m[3]) != nil {
		if m[1] != "" {
			return nil
		}
		return &ddlError{code: 1050, msg: fmt.Sprintf("Table '%s' already exists", m[3])}
	}
	rest := m[4]
	buckets, key := 10, ""
	if b := reBuckets.FindStringSubmatch(rest); b != nil {
		key = strings.Trim(strings.TrimSpace(b[1]), "`")
		if n, err := strconv.Atoi(b[2]); err == nil {
			buckets = n
		}
	}
	if buckets < 1 {
		return ddlErrorf("Number of hash distribution should not be less than one.")
	}
	rep := 3
	if r := reRepNum.FindStringSubmatch(rest); r != nil {
		rep, _ = strconv.Atoi(r[1])
	}
	if a := reRepAlloc.FindStringSubmatch(rest); a != nil {
		rep = 0
		for _, part := range strings.Split(a[1], ",") {
			_, n, ok := strings.Cut(part, ":")
			v, err := strconv.Atoi(strings.TrimSpace(n))
			if !ok || err != nil {
				return ddlErrorf("Invalid replication allocation property: %s", a[1])
			}
			rep += v
		}
	}
	if rep < 1 || rep > 32767 {
		return ddlErrorf("Total replication num should between 1 and 32767")
	}
	avail := f.meta.available()
	if len(avail) < rep {
		return ddlErrorf("%s\nCreate failed replications:\nreplication tag: {\"location\" : \"default\"}, replication num: %d, storage medium: HDD", notEnoughBackends, rep)
	}
	t := &Table{ID: f.meta.nextID(), Name: m[3], Buckets: buckets, ReplicationNum: rep, DistributionKey: key, Created: time.Now()}
	t.PartitionID = f.meta.nextID()
	counts := f.meta.replicaCounts()
	for range buckets {
		tb := &Tablet{ID: f.meta.nextID()}
		for range rep {
			b := pickBackend(avail, counts, tb.Backends)
			tb.Backends = append(tb.Backends, b.ID)
			counts[b.ID]++
		}
		t.Tablets = append(t.Tablets, tb)
	}
	d.Tables = append(d.Tables, t)
	return nil
}

func (f *fe) dropTable(m []string, db string) error {
	d, err := f.lookupDB(m[2], db)
	if err != nil {
		return err
	}
	for i, t := range d.Tables {
		if t.Name == m[3] {
			d.Tables = append(d.Tables[:i], d.Tables[i+1:]...)
			return nil
		}
	}
	if m[1] != "" {
		return nil
	}
	return &ddlError{code: 1051, msg: fmt.Sprintf("Unknown table '%s'", m[3])}
}

func (f *fe) showDatabases() *result {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := []string{"information_schema", "mysql"}
	for _, d := range f.meta.Databases {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	out := &result{columns: []string{"Database"}, rows: [][]string{}}
	for _, n := range names {
		out.rows = append(out.rows, []string{n})
	}
	return out
}

func (f *fe) showTables(name, db string) (*result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.lookupDB(name, db)
	if err != nil {
		return nil, err
	}
	out := &result{columns: []string{"Tables_in_" + d.Name}, rows: [][]string{}}
	for _, t := range d.Tables {
		out.rows = append(out.rows, []string{t.Name})
	}
	return out, nil
}

// procCatalog answers SHOW PROC '/dbs...' and '/statistic'; path is split on '/'.
func (f *fe) procCatalog(parts []string) (*result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if parts[0] == "statistic" {
		out := &result{columns: []string{"DbId", "DbName", "TableNum", "PartitionNum", "IndexNum", "TabletNum", "ReplicaNum",
			"UnhealthyTabletNum", "InconsistentTabletNum", "CloningTabletNum", "BadTabletNum"}, rows: [][]string{}}
		for _, d := range f.meta.Databases {
			tablets, replicas, unhealthy := 0, 0, 0
			for _, t := range d.Tables {
				for _, tb := range t.Tablets {
					tablets++
					replicas += len(tb.Backends)
					if len(tb.Backends) < t.ReplicationNum {
						unhealthy++
					}
				}
			}
			out.rows = append(out.rows, []string{itoa(d.ID), d.Name, strconv.Itoa(len(d.Tables)), strconv.Itoa(len(d.Tables)),
				strconv.Itoa(len(d.Tables)), strconv.Itoa(tablets), strconv.Itoa(replicas), strconv.Itoa(unhealthy), "0", "0", "0"})
		}
		return out, nil
	}
	if len(parts) == 1 {
		out := &result{columns: []string{"DbId", "DbName", "TableNum", "Size", "Quota", "LastConsistencyCheckTime", "ReplicaCount",
			"ReplicaQuota", "RunningTransactionNum", "TransactionQuota", "LastUpdateTime"}, rows: [][]string{}}
		for _, d := range f.meta.Databases {
			replicas := 0
			for _, t := range d.Tables {
				for _, tb := range t.Tablets {
					replicas += len(tb.Backends)
				}
			}
			out.rows = append(out.rows, []string{itoa(d.ID), d.Name, strconv.Itoa(len(d.Tables)), "0.000 ", "1024.000 TB", "NULL",
				strconv.Itoa(replicas), "1073741824", "0", "1000", timeString(d.Created)})
		}
		return out, nil
	}
	var d *Database
	for _, x := range f.meta.Databases {
		if itoa(x.ID) == parts[1] {
			d = x
		}
	}
	if d == nil {
		return nil, ddlErrorf("Database[%s] does not exist.", parts[1])
	}
	if len(parts) == 2 {
		out := &result{columns: []string{"TableId", "TableName", "IndexNum", "PartitionColumnName", "DistributionColumnName", "State",
			"Type", "LastConsistencyCheckTime", "VisibleVersion", "VisibleVersionTime", "RowCount", "LastUpdateTime"}, rows: [][]string{}}
		for _, t := range d.Tables {
			out.rows = append(out.rows, []string{itoa(t.ID), t.Name, "1", "", t.DistributionKey, "NORMAL", "OLAP", "NULL", "1",
				timeString(t.Created), "0", timeString(t.Created)})
		}
		return out, nil
	}
	var t *Table
	for _, x := range d.Tables {
		if itoa(x.ID) == parts[2] {
			t = x
		}
	}
	if t == nil {
		return nil, ddlErrorf("Table[%s] does not exist", parts[2])
	}
	if len(parts) == 3 {
		return &result{columns: []string{"Nodes"}, rows: [][]string{{"partitions"}, {"temp_partitions"}, {"index_schema"}}}, nil
	}
	if len(parts) == 4 && parts[3] == "partitions" {
		return partitionsResult(t), nil
	}
	return nil, ddlErrorf("Proc path '/%s' doesn't exist", strings.Join(parts, "/"))
}

func partitionsResult(t *Table) *result {
	return &result{columns: []string{"PartitionId", "PartitionName", "VisibleVersion", "VisibleVersionTime", "State", "PartitionKey",
		"Range", "DistributionKey", "Buckets", "ReplicationNum", "StorageMedium", "CooldownTime", "RemoteStoragePolicy",
		"LastConsistencyCheckTime", "DataSize", "IsInMemory", "ReplicaAllocation", "IsMutable", "SyncWithBaseTables", "UnsyncTables"},
		rows: [][]string{{itoa(t.PartitionID), t.Name, "1", timeString(t.Created), "NORMAL", "", "", t.DistributionKey,
			strconv.Itoa(t.Buckets), strconv.Itoa(t.ReplicationNum), "HDD", "9999-12-31 23:59:59", "", "NULL", "0.000 ", "false",
			fmt.Sprintf("tag.location.default: %d", t.ReplicationNum), "true", "true", "NULL"}}}
}

func (f *fe) showPartitions(m []string, db string) (*result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.lookupDB(m[1], db)
	if err != nil {
		return nil, err
	}
	t := d.table(m[2])
	if t == nil {
		return nil, &ddlError{code: 1146, msg: fmt.Sprintf("Table '%s.%s' doesn't exist", d.Name, m[2])}
	}
	return partitionsResult(t), nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// checkDecommission refuses a decommission that would leave fewer
// available backends than the largest replication_num (see README).
func (f *fe) checkDecommission(leaving []*Backend) error {
	need, table := f.meta.maxReplication()
	if need == 0 {
		return nil
	}
	remain := 0
	for _, b := range f.meta.available() {
		gone := false
		for _, l := range leaving {
			gone = gone || l == b
		}
		if !gone {
			remain++
		}
	}
	if remain < need {
		return ddlErrorf("%s After decommission only %d available backends would remain, but table %s needs %d replicas (replication_num).",
			notEnoughBackends, remain, table, need)
	}
	return nil
}

// tabletScheduler is the master's tablet scheduler: every interval it moves
// up to batch replicas off each decommissioned backend onto the available
// backend with the fewest replicas that does not hold that tablet yet,
// re-creates missing replicas, and drops a decommissioned backend that holds
// none (drop_backend_after_decommission). disable_tablet_scheduler pauses it.
func (f *fe) tabletScheduler(ctx context.Context, interval time.Duration, batch int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.cfg.boolValue("disable_tablet_scheduler") {
			continue
		}
		f.scheduleOnce(batch)
	}
}

func (f *fe) scheduleOnce(batch int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.meta
	avail := m.available()
	counts := m.replicaCounts()
	changed := false
	for _, d := range m.Databases {
		for _, t := range d.Tables {
			for _, tb := range t.Tablets {
				for len(tb.Backends) < t.ReplicationNum {
					b := pickBackend(avail, counts, tb.Backends)
					if b == nil {
						break
					}
					tb.Backends = append(tb.Backends, b.ID)
					counts[b.ID]++
					changed = true
				}
			}
		}
	}
	kept := m.Backends[:0]
	for _, be := range m.Backends {
		if !be.Decommissioned {
			kept = append(kept, be)
			continue
		}
		moved := 0
		for _, d := range m.Databases {
			for _, t := range d.Tables {
				for _, tb := range t.Tablets {
					i := indexOf(tb.Backends, be.ID)
					if i < 0 || moved >= batch {
						continue
					}
					dst := pickBackend(avail, counts, tb.Backends)
					if dst == nil {
						continue
					}
					tb.Backends[i] = dst.ID
					counts[dst.ID]++
					counts[be.ID]--
					moved++
					changed = true
				}
			}
		}
		if counts[be.ID] == 0 && f.cfg.boolValue("drop_backend_after_decommission") {
			f.log.Infof("no available tablet on decommission backend %d, drop it", be.ID)
			changed = true
			continue
		}
		if counts[be.ID] > 0 {
			f.log.Infof("backend %d lefts %d replicas to decommission", be.ID, counts[be.ID])
		}
		kept = append(kept, be)
	}
	m.Backends = kept
	if changed {
		m.JournalID++
		_ = m.save(f.metaDir)
	}
}

func indexOf(ids []int64, id int64) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}
