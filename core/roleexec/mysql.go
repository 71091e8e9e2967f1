package roleexec

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
)

// openMySQL opens a pool to an FE's query port. Doris speaks the MySQL
// protocol; interpolateParams is off and no statement is ever built from
// user data here (plugins send fixed statements with quoted addresses).
func openMySQL(user, pass, addr string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = pass
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 60 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.AllowNativePasswords = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("FE %s: %w", addr, err)
	}
	return sql.OpenDB(connector), nil
}
