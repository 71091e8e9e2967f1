package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// Agent statuses (Agent.Status).
const (
	AgentRunning = "RUNNING"
	AgentStop    = "STOP"
)

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
// installed with. A new record starts STOP; an existing one keeps its
// status until the agent registers.
func (s *Store) PrepareAgent(ctx context.Context, clusterID int64, host string, port int, installDir, uuid string, cert AgentCert) error {
	notAfter := cert.NotAfter
	a := Agent{ClusterID: clusterID, Host: host, Port: port, Status: AgentStop, AgentUUID: uuid,
		CertSerial: cert.Serial, CertIssuer: cert.Issuer, CertNotAfter: &notAfter, InstallDir: installDir}
	return translate(s.q(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "cluster_id"}, {Name: "host"}},
		DoUpdates: clause.AssignmentColumns([]string{"agent_uuid", "cert_serial", "prev_cert_serial", "cert_issuer",
			"cert_not_after", "port", "install_dir", "updated_at"}),
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

// AgentsWithStatus returns every agent (of any cluster) with status.
func (s *Store) AgentsWithStatus(ctx context.Context, status string) ([]Agent, error) {
	var as []Agent
	err := s.q(ctx).Where("status = ?", status).Order("id").Find(&as).Error
	return as, err
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

// RecordRegistration marks agent id RUNNING, registered now, with what it reported.
func (s *Store) RecordRegistration(ctx context.Context, id int64, r AgentReport) error {
	now := time.Now().UTC()
	return s.q(ctx).Model(&Agent{}).Where("id = ?", id).Updates(map[string]any{
		"agent_uuid": r.UUID, "status": AgentRunning, "register_time": now, "last_reported_time": now,
		"hardware": r.Hardware, "processes": r.Processes, "port": r.Port}).Error
}

// RecordHeartbeat marks agent id RUNNING, reported now, with its processes (JSON).
func (s *Store) RecordHeartbeat(ctx context.Context, id int64, processes string) error {
	return s.q(ctx).Model(&Agent{}).Where("id = ?", id).Updates(map[string]any{
		"status": AgentRunning, "last_reported_time": time.Now().UTC(), "processes": processes}).Error
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

// StopAgent marks agent id STOP if it is RUNNING; it reports whether it was.
func (s *Store) StopAgent(ctx context.Context, id int64) (bool, error) {
	res := s.q(ctx).Model(&Agent{}).Where("id = ? AND status = ?", id, AgentRunning).Update("status", AgentStop)
	return res.RowsAffected == 1, res.Error
}
