package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Agent statuses (Agent.Status).
const (
	AgentRunning = "RUNNING"
	AgentStop    = "STOP"
)

// Agent liveness: an agent is RUNNING while its last registration or
// heartbeat is less than MissedBeats of its heartbeat intervals old. It is
// computed from the stored time whenever a record is read, so every
// manager on the database sees the same state and none keeps timers.
const (
	MissedBeats      = 3
	DefaultHeartbeat = 5 * time.Second
)

// Alive reports whether an agent with these recorded times is RUNNING at now.
func (a *Agent) Alive(now time.Time) bool {
	if a.LastReportedTime == nil {
		return false
	}
	beat := time.Duration(a.HeartbeatSeconds) * time.Second
	if beat <= 0 {
		beat = DefaultHeartbeat
	}
	return now.Sub(*a.LastReportedTime) < MissedBeats*beat
}

// AfterFind fills in Status from the recorded times (a gorm hook).
func (a *Agent) AfterFind(*gorm.DB) error {
	a.Status = AgentStop
	if a.Alive(time.Now()) {
		a.Status = AgentRunning
	}
	return nil
}

// AgentCert is a certificate issued to an agent, as its record keeps it.
type AgentCert struct {
	Serial   string // hex
	Issuer   string // the signing CA's id
	NotAfter time.Time
}

// AgentReport is what a registering agent tells about itself.
type AgentReport struct {
	UUID      string
	Port      int
	Hardware  string // JSON
	Processes string // JSON
}

// PrepareAgent records cert as the only certificate accepted from the
// agent uuid on (clusterID, host) (the previous serial is cleared, which
// revokes every older certificate), with the port and install dir it is
// installed with. A new record is STOP (it has not reported yet); an
// existing one keeps its report times but loses its registration
// (RegisterTime nil) until the agent with this certificate registers, so
// any manager sees in the record when the install's wait is over.
func (s *Store) PrepareAgent(ctx context.Context, clusterID int64, host string, port int, installDir, uuid string, cert AgentCert) error {
	notAfter := cert.NotAfter
	a := Agent{ClusterID: clusterID, Host: host, Port: port, AgentUUID: uuid,
		CertSerial: cert.Serial, CertIssuer: cert.Issuer, CertNotAfter: &notAfter, InstallDir: installDir}
	return translate(s.q(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "cluster_id"}, {Name: "host"}},
		DoUpdates: clause.AssignmentColumns([]string{"agent_uuid", "cert_serial", "prev_cert_serial", "cert_issuer",
			"cert_not_after", "port", "install_dir", "register_time", "updated_at"}),
	}).Create(&a).Error)
}

// AgentOf returns the agent of (clusterID, host), or ErrNotFound.
func (s *Store) AgentOf(ctx context.Context, clusterID int64, host string) (Agent, error) {
	var a Agent
	err := s.q(ctx).Where("cluster_id = ? AND host = ?", clusterID, host).Take(&a).Error
	return a, translate(err)
}

// GetAgent returns agent id, or ErrNotFound.
func (s *Store) GetAgent(ctx context.Context, id int64) (Agent, error) {
	var a Agent
	err := s.q(ctx).Where("id = ?", id).Take(&a).Error
	return a, translate(err)
}

// AgentBySerial returns the agent whose current or previous certificate
// has serial, or ErrNotFound.
func (s *Store) AgentBySerial(ctx context.Context, serial string) (Agent, error) {
	var a Agent
	err := s.q(ctx).Where("cert_serial = ? OR prev_cert_serial = ?", serial, serial).Order("id").Take(&a).Error
	return a, translate(err)
}

// AllAgents returns the agents of every cluster by cluster and host.
func (s *Store) AllAgents(ctx context.Context) ([]Agent, error) {
	var as []Agent
	err := s.q(ctx).Order("cluster_id, host, id").Find(&as).Error
	return as, err
}

// RetirePrevSerial forgets the previous certificate of agent id once it
// is seen using serial, its current one (nothing changes otherwise).
func (s *Store) RetirePrevSerial(ctx context.Context, id int64, serial string) error {
	return s.q(ctx).Model(&Agent{}).Where("id = ? AND cert_serial = ?", id, serial).Update("prev_cert_serial", "").Error
}

// RecordRegistration records that agent id registered now, with what it
// reported and the heartbeat interval it was told. It is written at once
// (heartbeats are not): a registration changes more than a time.
func (s *Store) RecordRegistration(ctx context.Context, id int64, r AgentReport, heartbeat time.Duration) error {
	now := time.Now().UTC()
	return s.q(ctx).Model(&Agent{}).Where("id = ?", id).Updates(map[string]any{
		"agent_uuid": r.UUID, "register_time": now, "last_reported_time": now, "heartbeat_seconds": int(heartbeat / time.Second),
		"hardware": r.Hardware, "processes": r.Processes, "port": r.Port}).Error
}

// Heartbeat is one agent's latest heartbeat, as a batch records it.
type Heartbeat struct {
	AgentID int64
	At      time.Time
	// Processes is the JSON of the role processes it reported; nil when
	// they are the ones recorded already (most beats), which are kept.
	Processes *string
}

// RecordHeartbeats writes a batch of heartbeats (at most one per agent)
// in one transaction: on PostgreSQL one UPDATE joined to the batch sent
// as one JSON parameter, on SQLite one prepared UPDATE per agent (SQLite
// runs in the manager's process; what costs is the commit, and there is
// one). A beat older than the agent's recorded time (a registration
// written meanwhile) changes nothing; unknown agents are ignored.
func (s *Store) RecordHeartbeats(ctx context.Context, beats []Heartbeat) error {
	if len(beats) == 0 {
		return nil
	}
	if s.postgres {
		type row struct {
			ID        int64     `json:"id"`
			At        time.Time `json:"at"`
			Processes *string   `json:"processes"`
		}
		rows := make([]row, len(beats))
		for i, b := range beats {
			rows[i] = row{ID: b.AgentID, At: b.At.UTC(), Processes: b.Processes}
		}
		doc, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("encode %d heartbeats: %w", len(beats), err)
		}
		err = s.q(ctx).Exec(`UPDATE agents AS a
SET last_reported_time = v.at, processes = COALESCE(v.processes, a.processes)
FROM json_to_recordset(?::json) AS v(id bigint, at timestamptz, processes text)
WHERE a.id = v.id AND (a.last_reported_time IS NULL OR a.last_reported_time < v.at)`, string(doc)).Error
		if err != nil {
			return fmt.Errorf("record %d heartbeats: %w", len(beats), err)
		}
		return nil
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record %d heartbeats: %w", len(beats), err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	stmt, err := tx.PrepareContext(ctx, `UPDATE agents SET last_reported_time = ?1, processes = COALESCE(?2, processes)
WHERE id = ?3 AND (last_reported_time IS NULL OR last_reported_time < ?1)`)
	if err != nil {
		return fmt.Errorf("record %d heartbeats: %w", len(beats), err)
	}
	defer stmt.Close()
	for _, b := range beats {
		var ps sql.NullString
		if b.Processes != nil {
			ps = sql.NullString{String: *b.Processes, Valid: true}
		}
		if _, err := stmt.ExecContext(ctx, b.At.UTC(), ps, b.AgentID); err != nil {
			return fmt.Errorf("record %d heartbeats: agent %d: %w", len(beats), b.AgentID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record %d heartbeats: %w", len(beats), err)
	}
	return nil
}

// RenewAgentCert makes cert the current certificate of agent id and used,
// the serial the agent renewed with, its previous one, provided used is
// still one of its two; false when it is not (a reinstall revoked it).
func (s *Store) RenewAgentCert(ctx context.Context, id int64, used string, cert AgentCert) (bool, error) {
	notAfter := cert.NotAfter
	res := s.q(ctx).Model(&Agent{}).Where("id = ? AND (cert_serial = ? OR prev_cert_serial = ?)", id, used, used).
		Updates(map[string]any{"cert_serial": cert.Serial, "prev_cert_serial": used, "cert_issuer": cert.Issuer,
			"cert_not_after": &notAfter})
	return res.RowsAffected == 1, res.Error
}
