// Package store opens the manager's database (SQLite by default, PostgreSQL
// by URL) and holds the queries shared by the core packages.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/hashicorp/go-hclog"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrNotFound is returned by lookups of a single row that does not exist.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned when a unique constraint refuses a write.
var ErrDuplicate = errors.New("duplicate")

// Store wraps the gorm handle. It is safe for concurrent use.
type Store struct {
	db       *gorm.DB
	postgres bool
	dsn      string // PostgreSQL: for the listener's own connection (holds the password: never shown)
	log      hclog.Logger
}

// Open connects to dsn and migrates the schema. An empty dsn selects the
// SQLite file <dataDir>/dorismanager.db; a postgres:// or postgresql:// URL
// selects PostgreSQL.
func Open(dsn, dataDir string, log hclog.Logger) (*Store, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg := &gorm.Config{
		Logger:         logger.Discard,
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
	}
	var (
		db  *gorm.DB
		err error
		pg  bool
	)
	switch {
	case dsn == "":
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
		}
		path := filepath.Join(dataDir, "dorismanager.db")
		// Create the file private: SQLite gives its -wal and -shm files the
		// database file's mode.
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			f.Close()
		} else {
			return nil, fmt.Errorf("create SQLite database %s: %w", path, err)
		}
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		// Deleted or overwritten content (SSH credentials wiped at
		// installComplete) is zeroed in its page, not left in free space.
		q.Add("_pragma", "secure_delete(1)")
		q.Set("_txlock", "immediate")
		db, err = gorm.Open(sqlite.Open("file:"+path+"?"+q.Encode()), cfg)
		if err != nil {
			return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// One connection: SQLite has a single writer anyway, and this keeps
		// every transaction serialised instead of failing with SQLITE_BUSY.
		sqlDB.SetMaxOpenConns(1)
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		db, err = gorm.Open(postgres.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL database: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		tunePostgresPool(sqlDB)
		pg = true
	default:
		return nil, fmt.Errorf("--db %q: use an empty value for SQLite or a postgres:// URL", redact(dsn))
	}
	s := &Store{db: db, postgres: pg, log: log}
	if pg {
		s.dsn = dsn
	}
	if err := s.migrate(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// redact hides a password in a database URL for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (s *Store) migrate() error {
	m := s.db.Migrator()
	// Tokens made before roles existed had full power: they become admin
	// tokens once, when the role column is added.
	oldTokens := m.HasTable(&APIToken{}) && !m.HasColumn(&APIToken{}, "Role")
	if err := s.db.AutoMigrate(AllModels()...); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	// An agent's status was a column written by one manager's timers; it
	// is computed from the last heartbeat time now (Agent.AfterFind).
	if m.HasColumn(&Agent{}, "status") {
		if err := s.db.Exec(`ALTER TABLE agents DROP COLUMN status`).Error; err != nil {
			return fmt.Errorf("migrate schema: drop the agents' stored status: %w", err)
		}
	}
	if oldTokens {
		res := s.db.Model(&APIToken{}).Where("role IS NULL OR role = ?", "").Update("role", RoleAdmin)
		if res.Error != nil {
			return fmt.Errorf("migrate schema: make existing API tokens admin tokens: %w", res.Error)
		}
		if res.RowsAffected > 0 {
			s.log.Warn("API tokens made before roles existed are now admin tokens: list them with `dorismanager token list`, revoke the ones that should have less",
				"tokens", res.RowsAffected)
		}
	}
	// At most one unfinished process per user and per cluster, enforced by
	// the database so that concurrent requests cannot both create one.
	// Operations (Kind OPERATION) have their own index: one at a time per
	// cluster, whatever wizard process is open. The wizard's indexes of
	// earlier versions covered every process and are replaced.
	for _, q := range []string{
		`DROP INDEX IF EXISTS idx_process_open_user`,
		`DROP INDEX IF EXISTS idx_process_open_cluster`,
		`CREATE UNIQUE INDEX IF NOT EXISTS idx_wizard_open_user ON processes (user_id) WHERE NOT finish AND kind = ''`,
		`CREATE UNIQUE INDEX IF NOT EXISTS idx_wizard_open_cluster ON processes (cluster_id) WHERE NOT finish AND kind = ''`,
		`CREATE UNIQUE INDEX IF NOT EXISTS idx_operation_open_cluster ON processes (cluster_id) WHERE NOT finish AND kind = 'OPERATION'`,
		`CREATE INDEX IF NOT EXISTS idx_task_process_step_seq ON tasks (process_id, step, seq)`,
	} {
		if err := s.db.Exec(q).Error; err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
	}
	return s.migrateHostKeys()
}

// migrateHostKeys moves host keys recorded before they were per cluster
// (cluster_id 0, one table for all): the unique index on host and port
// goes, and each such key becomes the key of every cluster with an agent
// on that host; a key no cluster's agent uses is dropped (its host is
// trusted on first use again).
func (s *Store) migrateHostKeys() error {
	return s.db.Transaction(func(tx *gorm.DB) error {
		for _, q := range []string{
			`DROP INDEX IF EXISTS idx_hostkey_host_port`,
			`INSERT INTO host_keys (cluster_id, host, port, key_type, fingerprint, public_key, created_at, updated_at)
			 SELECT DISTINCT a.cluster_id, k.host, k.port, k.key_type, k.fingerprint, k.public_key, k.created_at, k.created_at
			 FROM host_keys k JOIN agents a ON a.host = k.host
			 WHERE k.cluster_id = 0 AND a.cluster_id > 0 AND NOT EXISTS (
			   SELECT 1 FROM host_keys o WHERE o.cluster_id = a.cluster_id AND o.host = k.host AND o.port = k.port)`,
			`DELETE FROM host_keys WHERE cluster_id = 0`,
		} {
			if err := tx.Exec(q).Error; err != nil {
				return fmt.Errorf("migrate host keys to per cluster: %w", err)
			}
		}
		return nil
	})
}

// ForgetDeleted leaves no copy of content deleted or overwritten so far in
// the database files. On SQLite, secure_delete has zeroed it in the pages,
// but the write-ahead log still holds the pages' earlier versions: the log
// is checkpointed into the database file and truncated to nothing. (On
// PostgreSQL dead row versions stay until VACUUM reuses their space, and
// nothing is done here.)
func (s *Store) ForgetDeleted(ctx context.Context) error {
	if s.postgres {
		return nil
	}
	var busy, logPages, checkpointed int
	if err := s.q(ctx).Raw("PRAGMA wal_checkpoint(TRUNCATE)").Row().Scan(&busy, &logPages, &checkpointed); err != nil {
		return fmt.Errorf("checkpoint the SQLite log: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpoint the SQLite log: the database is busy (another process has it open); old pages stay in dorismanager.db-wal until the next checkpoint")
	}
	return nil
}

// DB returns the gorm handle, for tests that set up rows directly; the
// other packages read and write through the Store's methods.
func (s *Store) DB() *gorm.DB { return s.db }

// IsPostgres reports whether the store runs on PostgreSQL.
func (s *Store) IsPostgres() bool { return s.postgres }

// Close releases the database connections.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Tx runs fn in a transaction; the *Store handed to fn runs every query
// inside that transaction.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	return s.db.WithContext(ctx).Transaction(func(db *gorm.DB) error {
		return fn(&Store{db: db, postgres: s.postgres, dsn: s.dsn, log: s.log})
	})
}

// q is the handle for one query on ctx.
func (s *Store) q(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// translate maps gorm errors to the store's sentinel errors.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %v", ErrDuplicate, err)
	}
	return err
}

// IsDuplicate reports whether err comes from a unique constraint.
func IsDuplicate(err error) bool {
	return errors.Is(err, ErrDuplicate) || errors.Is(err, gorm.ErrDuplicatedKey)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("database handle: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}
