package roleexec

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/sdk"
)

// openMySQL opens a pool to an FE's query port. Doris speaks the MySQL
// protocol; interpolateParams is off and no statement is ever built from
// user data here (plugins send fixed statements with quoted addresses).
// The driver's own messages go to log: it takes a logger per connector
// (mysql.Config.Logger), so its process-wide default (mysql.SetLogger,
// stderr) is never used and never changed.
func openMySQL(user, pass, addr string, log mysql.Logger) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = pass
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 60 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.AllowNativePasswords = true
	if log != nil {
		cfg.Logger = log
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("FE %s: %w", addr, err)
	}
	return sql.OpenDB(connector), nil
}

// DriverLogger adapts log to the MySQL driver's Logger. The driver logs
// only what it cannot return as an error (a broken connection found while
// reading, an auth plugin it had to fall back from), so every message is a
// warning.
func DriverLogger(log hclog.Logger) mysql.Logger {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return driverLogger{log: log}
}

type driverLogger struct{ log hclog.Logger }

func (d driverLogger) Print(v ...any) {
	d.log.Warn(strings.TrimSpace(fmt.Sprint(v...)))
}

// QueryAs runs q on the FE at addr as account a through the shared pool,
// logging nothing of it (core/clusteradmin sends passwords this way).
func (e *Executor) QueryAs(ctx context.Context, addr string, a Account, q string) (sdk.Rows, error) {
	return e.sql.query(ctx, addr, a, q)
}

// Login checks that account a can log in to the FE at addr, on a
// connection of its own that is closed again: a pooled connection may
// have logged in with other credentials.
func (e *Executor) Login(ctx context.Context, addr string, a Account) error {
	db, err := openMySQL(a.User, a.Password, addr, e.sql.log)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// AccessDenied reports whether err is an FE's refusal of a login (MySQL
// error 1045: wrong user or password).
func AccessDenied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1045
}
