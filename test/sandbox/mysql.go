package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"time"

	"github.com/go-sql-driver/mysql"
)

// AdminPassword is the cluster's generated admin password, revealed
// through the API the first time it is asked for (the manager shows it
// once) and kept by the sandbox for every later caller.
func (s *Sandbox) AdminPassword(ctx context.Context, clusterID int64) (string, error) {
	s.pwMu.Lock()
	defer s.pwMu.Unlock()
	if pw, ok := s.adminPW[clusterID]; ok {
		return pw, nil
	}
	r, err := s.Client().Call(ctx, http.MethodPost, fmt.Sprintf("/api/cluster/%d/adminPassword/reveal", clusterID), nil)
	if err != nil {
		return "", err
	}
	if r.Code != 0 {
		return "", fmt.Errorf("reveal the admin password of cluster %d: %d %s", clusterID, r.Code, r.Msg)
	}
	var acct struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := r.Decode(&acct); err != nil || acct.User != "root" || acct.Password == "" {
		return "", fmt.Errorf("reveal the admin password of cluster %d: %s (%v)", clusterID, r.Data, err)
	}
	if s.adminPW == nil {
		s.adminPW = map[int64]string{}
	}
	s.adminPW[clusterID] = acct.Password
	return acct.Password, nil
}

// MySQLConfig is a client config for the FE at addr (host:query_port) as
// the cluster's admin: root with the revealed password; 5 s to connect.
func (s *Sandbox) MySQLConfig(ctx context.Context, clusterID int64, addr string) (*mysql.Config, error) {
	pw, err := s.AdminPassword(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", pw, "tcp", addr
	cfg.Timeout = 5 * time.Second
	return cfg, nil
}

// OpenDB opens a pool with cfg.
func OpenDB(cfg *mysql.Config) (*sql.DB, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// MySQL opens the FE at addr as the cluster's admin (MySQLConfig).
func (s *Sandbox) MySQL(ctx context.Context, clusterID int64, addr string) (*sql.DB, error) {
	cfg, err := s.MySQLConfig(ctx, clusterID, addr)
	if err != nil {
		return nil, err
	}
	return OpenDB(cfg)
}
