package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Process statuses (Process.Status).
const (
	ProcessRunning = "RUNNING"
	ProcessSuccess = "SUCCESS"
	// ProcessCanceled marks a process completed before its cluster was
	// fully built (an earlier step, or failed tasks left as they are).
	ProcessCanceled = "CANCELED"
)

// RoleKey names one role instance: a role on a host of a cluster.
type RoleKey struct {
	ClusterID int64
	Host      string
	Role      string
}

func (k RoleKey) String() string {
	return fmt.Sprintf("%s on %s (cluster %d)", k.Role, k.Host, k.ClusterID)
}

func (s *Store) roleRow(ctx context.Context, k RoleKey) *gorm.DB {
	return s.q(ctx).Model(&AgentRole{}).Where("cluster_id = ? AND host = ? AND role = ?", k.ClusterID, k.Host, k.Role)
}

// RolesOfHost returns the roles recorded on one host of a cluster, by role.
func (s *Store) RolesOfHost(ctx context.Context, clusterID int64, host string) ([]AgentRole, error) {
	var rs []AgentRole
	err := s.q(ctx).Where("cluster_id = ? AND host = ?", clusterID, host).Order("role, id").Find(&rs).Error
	return rs, err
}

// UnmarkMasters clears the master flag of every instance of role in the
// cluster except the one on host (a newly designated master replaces the
// one an earlier process marked).
func (s *Store) UnmarkMasters(ctx context.Context, clusterID int64, role, host string) error {
	err := s.q(ctx).Model(&AgentRole{}).Where("cluster_id = ? AND role = ? AND host <> ? AND master = ?", clusterID, role, host, true).
		Updates(map[string]any{"master": false, "updated_at": time.Now().UTC()}).Error
	if err != nil {
		return fmt.Errorf("unmark earlier %s masters of cluster %d: %w", role, clusterID, err)
	}
	return nil
}

// SetRegistered records whether the cluster reports the role instance as a
// member. ErrNotFound when it is not recorded.
func (s *Store) SetRegistered(ctx context.Context, k RoleKey, registered bool) error {
	res := s.roleRow(ctx, k).Updates(map[string]any{"register": registered, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return fmt.Errorf("record registration of %s: %w", k, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("record registration of %s: %w", k, ErrNotFound)
	}
	return nil
}

// RecordFacts merges facts into the facts recorded for a role instance
// (a reported value replaces the recorded one; an empty value removes the
// key) and, when ports is not nil, replaces its ports. The read and the
// write are one transaction, so concurrent reports of one node do not
// lose each other's keys. ErrNotFound when it is not recorded.
func (s *Store) RecordFacts(ctx context.Context, k RoleKey, facts map[string]string, ports map[string]int) error {
	if len(facts) == 0 && ports == nil {
		return nil
	}
	err := s.Tx(ctx, func(tx *Store) error {
		q := tx.q(ctx)
		if tx.postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var r AgentRole
		if err := q.Where("cluster_id = ? AND host = ? AND role = ?", k.ClusterID, k.Host, k.Role).Take(&r).Error; err != nil {
			return translate(err)
		}
		merged := map[string]string{}
		if r.Facts != "" {
			if err := json.Unmarshal([]byte(r.Facts), &merged); err != nil {
				merged = map[string]string{} // unreadable: the new report replaces it
			}
		}
		for key, v := range facts {
			if v == "" {
				delete(merged, key)
			} else {
				merged[key] = v
			}
		}
		b, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		up := map[string]any{"facts": string(b), "updated_at": time.Now().UTC()}
		if ports != nil {
			pb, err := json.Marshal(ports)
			if err != nil {
				return err
			}
			up["ports"] = string(pb)
		}
		return tx.q(ctx).Model(&AgentRole{}).Where("id = ?", r.ID).Updates(up).Error
	})
	if err != nil {
		return fmt.Errorf("record facts of %s: %w", k, err)
	}
	return nil
}

// RecordMembership records what the cluster said of a role instance's
// membership when it was asked at asked: the register column and the
// registered fact. It writes nothing, and reports false, when the record
// changed after asked (a task recorded something newer meanwhile).
// ErrNotFound when it is not recorded.
func (s *Store) RecordMembership(ctx context.Context, k RoleKey, registered bool, asked time.Time) (bool, error) {
	wrote := false
	err := s.Tx(ctx, func(tx *Store) error {
		q := tx.q(ctx)
		if tx.postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var r AgentRole
		if err := q.Where("cluster_id = ? AND host = ? AND role = ?", k.ClusterID, k.Host, k.Role).Take(&r).Error; err != nil {
			return translate(err)
		}
		if r.UpdatedAt.After(asked) {
			return nil
		}
		facts := map[string]string{}
		if r.Facts != "" && json.Unmarshal([]byte(r.Facts), &facts) != nil {
			facts = map[string]string{}
		}
		facts["registered"] = strconv.FormatBool(registered)
		b, err := json.Marshal(facts)
		if err != nil {
			return err
		}
		wrote = true
		return tx.q(ctx).Model(&AgentRole{}).Where("id = ?", r.ID).
			Updates(map[string]any{"register": registered, "facts": string(b), "updated_at": time.Now().UTC()}).Error
	})
	if err != nil {
		return false, fmt.Errorf("record membership of %s: %w", k, err)
	}
	return wrote, nil
}

// SkippedTasks returns the skipped tasks of a process.
func (s *Store) SkippedTasks(ctx context.Context, processID int64) ([]Task, error) {
	var ts []Task
	err := s.q(ctx).Where("process_id = ? AND skip = ?", processID, true).Order("id").Find(&ts).Error
	if err != nil {
		return nil, fmt.Errorf("skipped tasks of process %d: %w", processID, err)
	}
	return ts, nil
}

// SkippedLatest reports, for each host and role with a task of the given
// wizard step in the cluster, whether the newest such task is skipped (an
// install given up, unless a later process did it again).
func (s *Store) SkippedLatest(ctx context.Context, clusterID int64, step int) (map[RoleKey]bool, error) {
	var ts []Task
	err := s.q(ctx).Model(&Task{}).Select("tasks.id, tasks.host, tasks.task_role, tasks.skip").
		Joins("JOIN processes ON processes.id = tasks.process_id").
		Where("processes.cluster_id = ? AND processes.kind = ? AND tasks.step = ? AND tasks.task_role <> ?", clusterID, KindWizard, step, "").
		Order("tasks.id").Find(&ts).Error
	if err != nil {
		return nil, fmt.Errorf("tasks of step %d in cluster %d: %w", step, clusterID, err)
	}
	out := map[RoleKey]bool{}
	for _, t := range ts {
		out[RoleKey{ClusterID: clusterID, Host: t.Host, Role: t.TaskRole}] = t.Skip
	}
	return out, nil
}

// ---- SSH host keys ----

// HostKeyOf returns the host key cluster clusterID recorded for host:port,
// or ErrNotFound.
func (s *Store) HostKeyOf(ctx context.Context, clusterID int64, host string, port int) (HostKey, error) {
	var k HostKey
	err := s.q(ctx).Where("cluster_id = ? AND host = ? AND port = ?", clusterID, host, port).Take(&k).Error
	return k, translate(err)
}

// HostKeysOf lists a cluster's recorded host keys by host and port.
func (s *Store) HostKeysOf(ctx context.Context, clusterID int64) ([]HostKey, error) {
	var ks []HostKey
	err := s.q(ctx).Where("cluster_id = ?", clusterID).Order("host, port").Find(&ks).Error
	if err != nil {
		return nil, fmt.Errorf("host keys of cluster %d: %w", clusterID, err)
	}
	return ks, nil
}

// AddHostKey records the first key seen (or pinned) for a cluster's
// host:port; ErrDuplicate when another install recorded one first.
func (s *Store) AddHostKey(ctx context.Context, k *HostKey) error {
	if k.ClusterID <= 0 {
		return fmt.Errorf("host key of %s:%d: no cluster", k.Host, k.Port)
	}
	return translate(s.q(ctx).Create(k).Error)
}

// ChangeHostKey replaces the fingerprint recorded for a cluster's
// host:port by newFP, if it is still oldFP. The key itself is forgotten
// until SetHostKeyMaterial records the one that matches newFP. It reports
// whether the record changed: false (and no error) when it holds another
// fingerprint than oldFP; ErrNotFound when there is none.
func (s *Store) ChangeHostKey(ctx context.Context, clusterID int64, host string, port int, oldFP, newFP string) (bool, error) {
	res := s.q(ctx).Model(&HostKey{}).
		Where("cluster_id = ? AND host = ? AND port = ? AND fingerprint = ?", clusterID, host, port, oldFP).
		Updates(map[string]any{"fingerprint": newFP, "key_type": "", "public_key": []byte{}, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	if _, err := s.HostKeyOf(ctx, clusterID, host, port); err != nil {
		return false, err
	}
	return false, nil
}

// SetHostKeyMaterial records the key whose fingerprint record id holds
// (seen at the first connection after a change).
func (s *Store) SetHostKeyMaterial(ctx context.Context, id int64, fingerprint, keyType string, publicKey []byte) error {
	return s.q(ctx).Model(&HostKey{}).Where("id = ? AND fingerprint = ?", id, fingerprint).
		Updates(map[string]any{"key_type": keyType, "public_key": publicKey}).Error
}
