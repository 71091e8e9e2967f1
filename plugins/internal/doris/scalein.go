package doris

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
)

// Replication is what the cluster's catalog needs from its BEs.
type Replication struct {
	Max    int    // the largest replication_num of any partition
	Table  string // a table ("db.table") that needs Max
	Tables int    // tables inspected
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// MaxReplication asks the FE at fe for the largest replication_num of the
// cluster's tables: SHOW PROC '/dbs', then '/dbs/<dbId>' for each database
// and '/dbs/<dbId>/<tableId>/partitions' for each OLAP table (or
// materialized view), reading ReplicationNum. These are the SHOW PROC
// paths Doris 0.15 to 2.x answer; one query per table.
func MaxReplication(ctx context.Context, h sdk.Host, fe string) (Replication, error) {
	var out Replication
	dbs, err := h.Query(ctx, fe, "SHOW PROC '/dbs'")
	if err != nil {
		return out, fmt.Errorf("SHOW PROC '/dbs' on %s: %w", fe, err)
	}
	for i := range dbs.Values {
		dbID, dbName := Col(dbs, i, "DbId"), Col(dbs, i, "DbName")
		if !digits.MatchString(dbID) {
			continue
		}
		tables, err := h.Query(ctx, fe, fmt.Sprintf("SHOW PROC '/dbs/%s'", dbID))
		if err != nil {
			return out, fmt.Errorf("list tables of database %s on %s: %w", dbName, fe, err)
		}
		for j := range tables.Values {
			tID, typ := Col(tables, j, "TableId"), strings.ToUpper(Col(tables, j, "Type"))
			if !digits.MatchString(tID) || (typ != "OLAP" && typ != "MATERIALIZED_VIEW") {
				continue
			}
			parts, err := h.Query(ctx, fe, fmt.Sprintf("SHOW PROC '/dbs/%s/%s/partitions'", dbID, tID))
			if err != nil {
				return out, fmt.Errorf("list partitions of %s.%s on %s: %w", dbName, Col(tables, j, "TableName"), fe, err)
			}
			out.Tables++
			for k := range parts.Values {
				if n := colInt(parts, k, "ReplicationNum"); n > out.Max {
					out.Max, out.Table = n, dbName+"."+Col(tables, j, "TableName")
				}
			}
		}
	}
	return out, nil
}

// CheckBEsHoldReplicas refuses to take the leaving BEs out when the BEs
// that would remain (alive, not decommissioned, not leaving) are fewer
// than the largest replication_num: Doris could not place every replica
// and the decommission would never finish.
func CheckBEsHoldReplicas(bes []Member, leaving []Member, rep Replication) error {
	remain := 0
	for _, b := range bes {
		gone := false
		for _, l := range leaving {
			gone = gone || sameMember(b, l)
		}
		if !gone && b.Alive && !b.Decommissioned {
			remain++
		}
	}
	if rep.Max > remain {
		return sdk.Failf("cannot take out %s: only %d alive BEs would remain, but table %s needs %d replicas (replication_num): add BEs first, lower the table's replication_num, or drop the BE with force (its replicas are lost)",
			memberList(leaving), remain, rep.Table, rep.Max)
	}
	return nil
}

// CheckFollowerQuorum refuses to drop FEs when the followers left would
// not have a majority alive: Doris's metadata (bdbje) needs more than half
// of its followers to elect a master and to write. Dropping the last
// follower is refused too. Observers do not count.
func CheckFollowerQuorum(fes []Member, drop []Member) error {
	remain, alive := 0, 0
	for _, f := range fes {
		if f.Role != FEFollower {
			continue
		}
		gone := false
		for _, d := range drop {
			gone = gone || sameMember(f, d)
		}
		if gone {
			continue
		}
		remain++
		if f.Alive {
			alive++
		}
	}
	switch {
	case remain == 0:
		return sdk.Failf("cannot drop %s: no FOLLOWER would remain", memberList(drop))
	case alive*2 <= remain:
		return sdk.Failf("cannot drop %s: %d of the %d FOLLOWERs left would be alive, and Doris needs a majority (more than %d) to elect a master and write metadata: start the dead followers first, or drop dead ones before alive ones",
			memberList(drop), alive, remain, remain/2)
	}
	return nil
}

func sameMember(a, b Member) bool {
	if a.Name != "" && b.Name != "" {
		return a.Name == b.Name
	}
	return a.Port == b.Port && a.Addr() == b.Addr()
}

func memberList(ms []Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, Endpoint(m.Addr(), m.Port))
	}
	return strings.Join(s, ", ")
}

// DecommissionBackoff paces the wait for a decommission, which moves
// tablets for minutes or hours.
var DecommissionBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 5 * time.Second}

// WaitGone polls show until none of ts is listed. For decommissioning BEs
// (decommission) it logs the tablets they still hold whenever the number
// changes (and every minute), and fails when a decommission was
// cancelled. When ctx ends first it fails retryably, saying what was left.
func WaitGone(ctx context.Context, h sdk.Host, b Backoff, show ShowFunc, ts []Target, decommission bool) error {
	last, lastLog := -1, time.Time{}
	var cancelled []string
	err := b.Poll(ctx, 0, func(ctx context.Context) (bool, error) {
		ms, err := show(ctx)
		if err != nil {
			return false, nil
		}
		left, listed := 0, 0
		var parts []string
		for _, t := range ts {
			m, ok := Find(ms, t.Addrs, t.Port)
			if !ok {
				continue
			}
			listed++
			left += m.TabletNum
			parts = append(parts, fmt.Sprintf("%s %d", t.Endpoint, m.TabletNum))
			if decommission && !m.Decommissioned {
				cancelled = append(cancelled, t.Endpoint)
			}
		}
		if len(cancelled) > 0 {
			return false, sdk.Failf("the decommission of %s was cancelled (SystemDecommissioned is false again, e.g. CANCEL DECOMMISSION): run scale-in again to restart it", strings.Join(cancelled, ", "))
		}
		if listed == 0 {
			return true, nil
		}
		if decommission && (left != last || time.Since(lastLog) > time.Minute) {
			h.Logf("decommissioning: %d tablets left (%s)", left, strings.Join(parts, ", "))
			last, lastLog = left, time.Now()
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		if !decommission {
			return &sdk.Failure{Summary: fmt.Sprintf("%s still listed by the cluster when the task ended", Endpoints(ts)), Retryable: true}
		}
		return &sdk.Failure{
			Summary:   fmt.Sprintf("%s still decommissioning with %d tablets left when the task ended (deadline or cancel); Doris keeps moving them: retry to wait again", Endpoints(ts), last),
			Retryable: true,
		}
	}
	return err
}
