package mysqlsim_test

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/dorismanager/dorismanager/test/mysqlsim"
)

func open(t *testing.T, s *mysqlsim.Server, user, pw string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, pw, "tcp", s.Addr()
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLoginsPasswordsAndResults(t *testing.T) {
	s := mysqlsim.Start(t, map[string]string{"root": ""})
	if err := open(t, s, "root", "").Ping(); err != nil {
		t.Fatalf("empty password: %v", err)
	}
	for _, tc := range []struct{ user, pw, want string }{
		{"root", "x", "Error 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: YES)"},
		{"nobody", "", "Error 1045 (28000): Access denied for user 'nobody'@'127.0.0.1' (using password: NO)"},
	} {
		if err := open(t, s, tc.user, tc.pw).Ping(); err == nil || err.Error() != tc.want {
			t.Errorf("%s/%q: %v, want %s", tc.user, tc.pw, err, tc.want)
		}
	}
	db := open(t, s, "root", "")
	if _, err := db.Exec("SET PASSWORD FOR 'root' = PASSWORD('n3w')"); err != nil {
		t.Fatal(err)
	}
	if err := open(t, s, "root", "").Ping(); err == nil {
		t.Fatal("the old empty password still works")
	}
	db2 := open(t, s, "root", "n3w")
	s.SetResult("SHOW FRONTENDS", mysqlsim.Result{Columns: []string{"Host", "IsMaster"}, Rows: [][]string{{"10.0.0.1", "true"}, {"10.0.0.2", ""}}})
	rows, err := db2.Query("SHOW FRONTENDS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var got [][]string
	for rows.Next() {
		var h, m string
		if err := rows.Scan(&h, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, []string{h, m})
	}
	if !reflect.DeepEqual(cols, []string{"Host", "IsMaster"}) || !reflect.DeepEqual(got, [][]string{{"10.0.0.1", "true"}, {"10.0.0.2", ""}}) {
		t.Fatalf("result %v %v", cols, got)
	}
	if _, err := db2.Exec("SET PASSWORD FOR 'ghost' = PASSWORD('x')"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown user: %v", err)
	}
	s.SetError("SELECT", "errCode = 2, detailMessage = Syntax error in: %s")
	if _, err := db2.Exec("SELECT 2"); err == nil || !strings.Contains(err.Error(), "Error 1105 (HY000): errCode = 2, detailMessage = Syntax error in: SELECT 2") {
		t.Fatalf("SetError: %v", err)
	}
	s.SetError("SELECT", "")
	if _, err := db2.Exec("SELECT 2"); err != nil {
		t.Fatalf("after the error was removed: %v", err)
	}
	if q := s.Queries(); len(q) == 0 || q[0] != "root: SET PASSWORD FOR 'root' = PASSWORD('n3w')" {
		t.Fatalf("queries %v", q)
	}
	if l := s.Logins(); len(l) < 4 || l[0] != "root:ok" || l[1] != "root:denied" {
		t.Fatalf("logins %v", l)
	}
}
