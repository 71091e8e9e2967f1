package clusteradmin

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/mysqlsim"
	"github.com/dorismanager/dorismanager/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	t     *testing.T
	st    *store.Store
	fe    *mysqlsim.Server
	exec  *roleexec.Executor
	admin *Admin
	id    int64
}

// newFixture is a cluster with one FE (a mysqlsim server whose root has an
// empty password) recorded as its master, and the real executor and store.
func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(dsn, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	fe := mysqlsim.Start(t, map[string]string{"root": "", "admin": ""})
	fe.SetResult("SHOW FRONTENDS", mysqlsim.Result{Columns: []string{"Name", "Host", "QueryPort", "IsMaster"},
		Rows: [][]string{{"fe1", "127.0.0.1", fmt.Sprint(fe.Port()), "true"}}})
	if err := st.UpsertRole(ctx, &store.AgentRole{ClusterID: c.ID, Host: "127.0.0.1", Role: "FE", FENodeType: "FOLLOWER", Master: true,
		Ports: fmt.Sprintf(`{"query_port":%d}`, fe.Port())}); err != nil {
		t.Fatal(err)
	}
	exec := roleexec.New(roleexec.Config{Store: st, Accounts: Accounts{Store: st, Secrets: box}})
	t.Cleanup(exec.Close)
	return &fixture{t: t, st: st, fe: fe, exec: exec, admin: New(Config{Store: st, Secrets: box, SQL: exec}), id: c.ID}
}

func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newFixture(t, "")) })
	t.Run("postgres", func(t *testing.T) { fn(t, newFixture(t, pgtest.Start(t))) })
}

// run runs SECURE_CLUSTER once; it returns the response or error text and
// the task log.
func (f *fixture) run() (string, string, error) {
	f.t.Helper()
	var log strings.Builder
	out, err := f.admin.Run(context.Background(), runner.Job{Task: store.Task{ID: 1, TaskType: process.TaskSecureCluster,
		Input: task.Encode(task.Cluster{ClusterID: f.id})}, Log: &log})
	return out.Response, log.String(), err
}

func (f *fixture) account() roleexec.Account {
	f.t.Helper()
	a, err := Accounts{Store: f.st, Secrets: f.admin.acc.Secrets}.Account(context.Background(), f.id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *fixture) setStatements() []string {
	var out []string
	for _, q := range f.fe.Queries() {
		if strings.Contains(q, "SET PASSWORD") {
			out = append(out, q)
		}
	}
	return out
}

// A fresh cluster gets a generated root password, set as root with the
// empty password on the master, recorded sealed, used from then on,
// shown once; a second run changes nothing.
func TestSecureGeneratesSetsAndRecords(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		resp, log, err := f.run()
		if err != nil {
			t.Fatal(err)
		}
		pw := f.fe.Password("root")
		if len(pw) < 24 || strings.ContainsAny(pw, `'"`+"`\\ ") {
			t.Fatalf("password on the FE %q: want 24+ characters without quotes", pw)
		}
		if got := f.setStatements(); len(got) != 1 || got[0] != fmt.Sprintf("root: SET PASSWORD FOR 'root' = PASSWORD('%s')", pw) {
			t.Fatalf("statements %v: want one SET PASSWORD as root", got)
		}
		if strings.Contains(resp+log, pw) || !strings.Contains(resp, "reveal") {
			t.Fatalf("response %q / log %q: want the reveal call named, never the password", resp, log)
		}
		rec, err := f.st.GetAdminAccount(ctx, f.id)
		if err != nil || !rec.Generated || rec.Revealed || rec.Pending != nil || rec.Password == nil || strings.Contains(string(rec.Password), pw) {
			t.Fatalf("record %+v %v: want a generated, sealed current password", rec, err)
		}
		if a := f.account(); a.User != "root" || a.Password != pw {
			t.Fatalf("account now %q/%d chars", a.User, len(a.Password))
		}
		// A plugin's query uses it now.
		h := f.exec.HostWith(nil, 2, "t2", &strings.Builder{}, sdk.Cluster{ID: f.id, Nodes: []sdk.Node{{Host: "127.0.0.1", Role: "FE"}}})
		if _, err := h.Query(ctx, f.fe.Addr(), "SHOW BACKENDS"); err != nil {
			t.Fatalf("a plugin's query after the password was set: %v", err)
		}

		// Run again (a retry, a later buildCluster): nothing changes.
		resp, _, err = f.run()
		if err != nil || !strings.Contains(resp, "works") {
			t.Fatalf("second run: %q %v", resp, err)
		}
		if f.fe.Password("root") != pw || len(f.setStatements()) != 1 {
			t.Fatal("the second run set the password again")
		}

		user, got, err := f.admin.Reveal(ctx, f.id)
		if err != nil || user != "root" || got != pw {
			t.Fatalf("reveal: %q %v", user, err)
		}
		_, _, err = f.admin.Reveal(ctx, f.id)
		if process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), "already revealed; set a new one with") {
			t.Fatalf("second reveal: %v", err)
		}
	})
}

// buildCluster's adminPassword is the one set; it is not revealed.
func TestSecureSetsTheGivenPassword(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	const given = "Given-Pw_0123"
	sealed, _ := f.admin.acc.Secrets.Seal([]byte(given))
	if err := f.st.SetAdminPending(ctx, f.id, sealed, false); err != nil {
		t.Fatal(err)
	}
	resp, _, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	if f.fe.Password("root") != given || f.account().Password != given || strings.Contains(resp, "reveal") {
		t.Fatalf("FE has %q, recorded %q, response %q", f.fe.Password("root"), f.account().Password, resp)
	}
	if _, _, err := f.admin.Reveal(ctx, f.id); process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), "given by a client") {
		t.Fatalf("reveal of a given password: %v", err)
	}
}

// A run stopped after SET PASSWORD and before recording it finds the
// pending password working and records it, without setting it again.
func TestSecureResumesAfterTheSet(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	sealed, _ := f.admin.acc.Secrets.Seal([]byte("ALREADYSET234567"))
	if err := f.st.SetAdminPending(ctx, f.id, sealed, true); err != nil {
		t.Fatal(err)
	}
	f.fe.SetPassword("root", "ALREADYSET234567")
	resp, _, err := f.run()
	if err != nil || !strings.Contains(resp, "already set") {
		t.Fatalf("%q %v", resp, err)
	}
	if len(f.setStatements()) != 0 || f.account().Password != "ALREADYSET234567" {
		t.Fatalf("statements %v, account %q", f.setStatements(), f.account().Password)
	}
}

// A failed SET PASSWORD fails the task saying the empty password stays,
// without the password even when the FE quotes the statement; the retry
// sets the same pending password.
func TestSecureFailureIsLoudAndRetryable(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	f.fe.SetError("SET PASSWORD", "errCode = 2, detailMessage = Syntax error in line 1: %s")
	_, log, err := f.run()
	if err == nil || !strings.Contains(err.Error(), "NOT set") || !strings.Contains(err.Error(), "EMPTY password") || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("failed SET: %v", err)
	}
	rec, _ := f.st.GetAdminAccount(ctx, f.id)
	pending, _ := f.admin.acc.open(f.id, rec.Pending)
	if pending == "" || strings.Contains(err.Error(), pending) || strings.Contains(log, pending) || !strings.Contains(err.Error(), "***") {
		t.Fatalf("error %q / log %q: the password leaked or was not redacted", err, log)
	}
	if a := f.account(); a.Password != "" || rec.Password != nil {
		t.Fatal("a password that was not set is recorded as current")
	}
	f.fe.SetError("SET PASSWORD", "")
	if _, _, err := f.run(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if f.fe.Password("root") != pending || f.account().Password != pending {
		t.Fatal("the retry did not set the pending password")
	}

	// No FE answers: the task fails naming what the cluster keeps.
	f2 := newFixture(t, "")
	f2.fe.Close()
	if _, _, err := f2.run(); err == nil || !strings.Contains(err.Error(), "NOT set") || !strings.Contains(err.Error(), "EMPTY password") ||
		!strings.Contains(err.Error(), "once the master FE runs") {
		t.Fatalf("FE down: %v", err)
	}
}

// A recorded password the FEs refuse is not replaced behind the
// operator's back: the task says to set the account.
func TestSecureWithARefusedRecordedPassword(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	sealed, _ := f.admin.acc.Secrets.Seal([]byte("Rec0rdedPw"))
	if err := f.st.SetAdminAccount(ctx, f.id, "root", sealed); err != nil {
		t.Fatal(err)
	}
	f.fe.SetPassword("root", "changed-elsewhere")
	_, _, err := f.run()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("PUT /api/cluster/%d/credentials", f.id)) || strings.Contains(err.Error(), "Rec0rdedPw") {
		t.Fatalf("refused recorded password: %v", err)
	}
	if len(f.setStatements()) != 0 {
		t.Fatal("a password was set with a refused account")
	}
}

// An operator's account is recorded only after a login with it worked.
func TestSetAccount(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	f.fe.SetPassword("admin", "ops-pass word")
	for _, c := range []struct {
		name, user, pw string
		kind           process.Kind
		want           string
	}{
		{"bad user", "ad'min", "x", process.KindInvalid, "user"},
		{"empty password", "admin", "", process.KindInvalid, "password is required"},
		{"control character", "admin", "a\nb", process.KindInvalid, "control characters"},
		{"too long", "admin", strings.Repeat("p", MaxPassword+1), process.KindInvalid, "at most"},
		{"wrong password", "admin", "not-the-one", process.KindInvalid, "refuses a login as admin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := f.admin.SetAccount(ctx, f.id, c.user, c.pw)
			if process.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.want) || (c.pw != "" && strings.Contains(err.Error(), c.pw)) {
				t.Fatalf("%v: want kind %d naming %q, without the password", err, c.kind, c.want)
			}
			if _, err := f.st.GetAdminAccount(ctx, f.id); err == nil {
				t.Fatal("a refused account was recorded")
			}
		})
	}
	if err := f.admin.SetAccount(ctx, 999, "admin", "x"); process.KindOf(err) != process.KindNotFound {
		t.Fatalf("unknown cluster: %v", err)
	}
	if err := f.admin.SetAccount(ctx, f.id, "admin", "ops-pass word"); err != nil {
		t.Fatal(err)
	}
	if a := f.account(); a.User != "admin" || a.Password != "ops-pass word" {
		t.Fatalf("account %q", a.User)
	}
	if _, _, err := f.admin.Reveal(ctx, f.id); process.KindOf(err) != process.KindConflict {
		t.Fatalf("reveal of an operator's password: %v", err)
	}
	// A later SECURE_CLUSTER keeps it.
	if _, _, err := f.run(); err != nil || f.fe.Password("admin") != "ops-pass word" {
		t.Fatalf("secure after SetAccount: %v", err)
	}

	f.fe.Close()
	if err := f.admin.SetAccount(ctx, f.id, "root", "whatever"); process.KindOf(err) != process.KindConflict || !strings.Contains(err.Error(), "no FE") {
		t.Fatalf("FE down: %v", err)
	}
}

func TestMasterOf(t *testing.T) {
	for _, c := range []struct {
		name string
		rows sdk.Rows
		want string
	}{
		{"2.x", sdk.Rows{Columns: []string{"Host", "QueryPort", "IsMaster"}, Values: [][]string{{"10.0.0.2", "9030", "false"}, {"10.0.0.1", "9131", "true"}}}, "10.0.0.1:9131"},
		{"1.2 names it IP", sdk.Rows{Columns: []string{"IP", "HostName", "QueryPort", "IsMaster"}, Values: [][]string{{"10.0.0.3", "h3", "9030", "true"}}}, "10.0.0.3:9030"},
		{"no port yet", sdk.Rows{Columns: []string{"Host", "QueryPort", "IsMaster"}, Values: [][]string{{"fe1", "0", "true"}}}, "fe1:9030"},
		{"ipv6", sdk.Rows{Columns: []string{"Host", "QueryPort", "IsMaster"}, Values: [][]string{{"fd00::1", "9030", "true"}}}, "[fd00::1]:9030"},
		{"no master", sdk.Rows{Columns: []string{"Host", "QueryPort", "IsMaster"}, Values: [][]string{{"10.0.0.1", "9030", "false"}}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := masterOf(c.rows)
			if got != c.want || ok != (c.want != "") {
				t.Fatalf("masterOf = %q %v, want %q", got, ok, c.want)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw := Generate()
		if len(pw) < 24 || process.CheckAdminPassword("pw", pw) != nil || seen[pw] {
			t.Fatalf("generated %q: want 24+ characters a SET PASSWORD can take, never twice", pw)
		}
		seen[pw] = true
	}
}
