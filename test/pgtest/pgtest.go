// Package pgtest starts a throwaway PostgreSQL server for tests and hands
// each test its own database on it.
//
// A test binary that calls Main from TestMain shares one server between all
// its tests; without Main, every Start runs its own server.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// server is one running PostgreSQL instance.
type server struct {
	dir  string // temp dir: data/, socket, log
	port int
	bin  string
}

// shared is the per-test-binary server used when Main is in effect.
var shared struct {
	enabled bool
	once    sync.Once
	srv     *server
	err     error
	dbSeq   atomic.Int64
}

// Main runs the tests of a package with one shared server, started lazily
// by the first Start and stopped when the tests end. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain with its own cleanup.
func Run(m *testing.M) int {
	shared.enabled = true
	code := m.Run()
	if shared.srv != nil {
		shared.srv.stop()
	}
	return code
}

// Start returns the URL of a new, empty database. It skips the test when
// PostgreSQL is not installed, unless the environment variable CI is set,
// in which case the test fails.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Skipf("skipping PostgreSQL test: %v (install the Debian package postgresql)", err)
	}
	var srv *server
	if shared.enabled {
		shared.once.Do(func() { shared.srv, shared.err = startServer(bin) })
		if shared.err != nil {
			t.Fatalf("start PostgreSQL: %v", shared.err)
		}
		srv = shared.srv
	} else {
		srv, err = startServer(bin)
		if err != nil {
			t.Fatalf("start PostgreSQL: %v", err)
		}
		t.Cleanup(srv.stop)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), shared.dbSeq.Add(1))
	admin, err := sql.Open("pgx", srv.url("postgres"))
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	if shared.enabled {
		t.Cleanup(func() {
			db, err := sql.Open("pgx", srv.url("postgres"))
			if err != nil {
				return
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Logf("drop database %s: %v", name, err)
			}
		})
	}
	return srv.url(name)
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// findBin returns the newest /usr/lib/postgresql/<version>/bin with initdb.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb under /usr/lib/postgresql/*/bin")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// asPostgres builds a command that runs as the postgres user when we are
// root (PostgreSQL refuses to run as root) and as ourselves otherwise.
func asPostgres(ctx context.Context, argv ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--"}, argv...)...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

func startServer(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, bin: bin}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := filepath.Join(dir, "data")
	out, err := asPostgres(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	conf := "listen_addresses = '127.0.0.1'\nunix_socket_directories = '" + dir + "'\n" +
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.port = port
		auto := filepath.Join(data, "postgresql.auto.conf")
		if err := os.WriteFile(auto, []byte(conf+"port = "+strconv.Itoa(port)+"\n"), 0o600); err != nil {
			return nil, err
		}
		if os.Geteuid() == 0 {
			if out, err := exec.CommandContext(ctx, "chown", "postgres:", auto).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("chown %s: %v: %s", auto, err, out)
			}
		}
		out, err = asPostgres(ctx, filepath.Join(bin, "pg_ctl"), "start", "-w", "-t", "60", "-D", data,
			"-l", filepath.Join(dir, "postgres.log")).CombinedOutput()
		if err == nil {
			ok = true
			return s, nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		lastErr = fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil, lastErr
}

func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = asPostgres(ctx, filepath.Join(s.bin, "pg_ctl"), "stop", "-m", "immediate", "-w", "-D",
		filepath.Join(s.dir, "data")).Run()
	_ = os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
