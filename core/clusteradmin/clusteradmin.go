// Package clusteradmin keeps each cluster's database admin account: sealed
// in the store (core/secret), used for every SQL call the manager makes to
// the cluster (roleexec.Accounts), set on a newly built cluster by the
// SECURE_CLUSTER task (a generated root password unless buildCluster gave
// one), shown once through reveal, and replaced by an operator's account
// once a login with it worked. Passwords never reach a log, an error or an
// API answer other than the one reveal.
//
// It is the one place of the core that speaks Doris's SQL itself (SHOW
// FRONTENDS to find the master, SET PASSWORD): a password must not pass
// through a role plugin.
package clusteradmin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// Box seals and opens secrets (core/secret.Box).
type Box interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Accounts reads the recorded admin accounts; it is the roleexec.Accounts
// of the manager. A cluster without a record is spoken to as a fresh Doris
// cluster: roleexec.DefaultAccount.
type Accounts struct {
	Store   *store.Store
	Secrets Box
}

// Account returns the account that works for the cluster now.
func (a Accounts) Account(ctx context.Context, clusterID int64) (roleexec.Account, error) {
	rec, err := a.Store.GetAdminAccount(ctx, clusterID)
	if errors.Is(err, store.ErrNotFound) {
		return roleexec.DefaultAccount, nil
	}
	if err != nil {
		return roleexec.Account{}, err
	}
	return a.current(rec)
}

func (a Accounts) current(rec store.AdminAccount) (roleexec.Account, error) {
	acct := roleexec.Account{User: rec.User}
	if acct.User == "" {
		acct.User = roleexec.DefaultAccount.User
	}
	if rec.Password != nil {
		pw, err := a.open(rec.ClusterID, rec.Password)
		if err != nil {
			return roleexec.Account{}, err
		}
		acct.Password = pw
	}
	return acct, nil
}

func (a Accounts) open(clusterID int64, sealed []byte) (string, error) {
	pw, err := a.Secrets.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("unseal the admin password of cluster %d (was secret.key replaced?): %w", clusterID, err)
	}
	return string(pw), nil
}

// SQL is what the account needs of the manager's SQL (roleexec.Executor).
type SQL interface {
	QueryAs(ctx context.Context, addr string, a roleexec.Account, q string) (sdk.Rows, error)
	Login(ctx context.Context, addr string, a roleexec.Account) error
}

// Config wires an Admin.
type Config struct {
	Store   *store.Store
	Secrets Box
	SQL     SQL
	Logger  hclog.Logger
}

// Admin runs SECURE_CLUSTER tasks (it is their runner.Action) and the
// reveal and credentials calls.
type Admin struct {
	st  *store.Store
	acc Accounts
	sql SQL
	log hclog.Logger
}

// New returns an Admin.
func New(cfg Config) *Admin {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Admin{st: cfg.Store, acc: Accounts{Store: cfg.Store, Secrets: cfg.Secrets}, sql: cfg.SQL, log: cfg.Logger}
}

// Generate makes an admin password: 26 characters (A-Z, 2-7) from
// crypto/rand, 130 bits, nothing a shell or SQL string would need quoted.
func Generate() string { return rand.Text() }

// defaultQueryPort is Doris's query_port when a node's is not recorded.
const defaultQueryPort = 9030

// feAddrs lists "host:query_port" of the cluster's FEs as recorded, the
// one marked master first.
func (a *Admin) feAddrs(ctx context.Context, clusterID int64) ([]string, error) {
	roles, err := a.st.ListRoles(ctx, clusterID)
	if err != nil {
		return nil, fmt.Errorf("roles of cluster %d: %w", clusterID, err)
	}
	var first, rest []string
	for _, r := range roles {
		if r.Role != process.RoleFE {
			continue
		}
		port := defaultQueryPort
		var ports map[string]int
		if json.Unmarshal([]byte(r.Ports), &ports) == nil && ports["query_port"] > 0 {
			port = ports["query_port"]
		}
		addr := net.JoinHostPort(r.Host, strconv.Itoa(port))
		if r.Master {
			first = append(first, addr)
		} else {
			rest = append(rest, addr)
		}
	}
	return append(first, rest...), nil
}

// errNoMaster is master's failure; refused tells that some FE refused
// the login and none answered otherwise.
type errNoMaster struct {
	refused bool
	tried   []string
}

func (e *errNoMaster) Error() string {
	return "no master FE found (" + strings.Join(e.tried, "; ") + ")"
}

// master asks the FEs in order, as acct, which FE the cluster reports as
// master (SHOW FRONTENDS, IsMaster) and returns its query address.
func (a *Admin) master(ctx context.Context, fes []string, acct roleexec.Account) (string, error) {
	e := &errNoMaster{refused: true}
	for _, fe := range fes {
		rows, err := a.sql.QueryAs(ctx, fe, acct, "SHOW FRONTENDS")
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			e.refused = e.refused && roleexec.AccessDenied(err)
			e.tried = append(e.tried, fmt.Sprintf("%s: %v", fe, err))
			continue
		}
		e.refused = false
		if m, ok := masterOf(rows); ok {
			return m, nil
		}
		e.tried = append(e.tried, fe+": no FE is master yet")
	}
	if len(fes) == 0 {
		e.refused = false
		e.tried = append(e.tried, "the cluster has no FE")
	}
	return "", e
}

// masterOf reads SHOW FRONTENDS: the row whose IsMaster is true, its Host
// (IP before Doris 2.0) and QueryPort.
func masterOf(rows sdk.Rows) (string, bool) {
	col := map[string]int{}
	for i, c := range rows.Columns {
		col[c] = i
	}
	get := func(r []string, name string) string {
		if i, ok := col[name]; ok && i < len(r) {
			return r[i]
		}
		return ""
	}
	for _, r := range rows.Values {
		if !strings.EqualFold(get(r, "IsMaster"), "true") {
			continue
		}
		host := get(r, "Host")
		if host == "" {
			host = get(r, "IP")
		}
		port := get(r, "QueryPort")
		if port == "" || port == "0" {
			port = strconv.Itoa(defaultQueryPort)
		}
		if host != "" {
			return net.JoinHostPort(host, port), true
		}
	}
	return "", false
}

// Idempotent: every run first checks what holds on the cluster.
func (*Admin) Idempotent() bool { return true }

// Run is SECURE_CLUSTER: it makes sure the cluster's admin account has a
// password the manager knows. A recorded password that works is kept. A
// pending one (buildCluster's adminPassword, or one generated here and
// recorded before it is set, so a run stopped half-way still knows it) is
// set on the master FE with SET PASSWORD as the account that works now,
// checked by a login, then recorded as current. Any failure fails the task
// saying what the cluster is left with; a retry picks up from there.
func (a *Admin) Run(ctx context.Context, job runner.Job) (runner.Outcome, error) {
	in, err := task.ClusterOf(job.Task)
	if err != nil {
		return runner.Outcome{}, err
	}
	id := in.ClusterID
	logf := func(format string, args ...any) {
		_, _ = fmt.Fprintf(job.Log, time.Now().UTC().Format(roleexec.StampFormat)+" "+format+"\n", args...)
	}
	fes, err := a.feAddrs(ctx, id)
	if err != nil {
		return runner.Outcome{}, err
	}
	if len(fes) == 0 {
		return runner.Outcome{Response: fmt.Sprintf("cluster %d has no FE: there is no admin account to secure", id)}, nil
	}
	rec, err := a.st.GetAdminAccount(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		rec, err = store.AdminAccount{ClusterID: id}, nil
	}
	if err != nil {
		return runner.Outcome{}, err
	}
	cur, err := a.acc.current(rec)
	if err != nil {
		return runner.Outcome{}, err
	}
	if rec.Pending == nil && rec.Password != nil {
		m, err := a.master(ctx, fes, cur)
		if err == nil {
			logf("the recorded password of %s works on the master FE %s: nothing to change", cur.User, m)
			return runner.Outcome{Response: fmt.Sprintf("the admin account %s has its password; a login on the master FE %s works", cur.User, m)}, nil
		}
		if refused(err) {
			return runner.Outcome{}, fmt.Errorf("the FEs refuse %s with the recorded password (%v): set the cluster's account with PUT /api/cluster/%d/credentials, then retry this task", cur.User, err, id)
		}
		return runner.Outcome{}, fmt.Errorf("cannot check the admin password: %v; retry this task once the master FE runs", err)
	}
	if rec.Pending == nil {
		sealed, err := a.acc.Secrets.Seal([]byte(Generate()))
		if err != nil {
			return runner.Outcome{}, fmt.Errorf("seal a new admin password: %w", err)
		}
		if err := a.st.SetAdminPending(ctx, id, sealed, true); err != nil {
			return runner.Outcome{}, err
		}
		rec.Pending, rec.PendingGenerated = sealed, true
		logf("generated a new password for %s (not shown here: POST /api/cluster/%d/adminPassword/reveal shows it once)", cur.User, id)
	}
	pw, err := a.acc.open(id, rec.Pending)
	if err != nil {
		return runner.Outcome{}, err
	}
	target := roleexec.Account{User: cur.User, Password: pw}
	done := func(m, how string) (runner.Outcome, error) {
		if err := a.st.PromoteAdminPending(ctx, id); err != nil {
			return runner.Outcome{}, fmt.Errorf("the new admin password works on %s but could not be recorded: %w; retry this task", m, err)
		}
		a.forget(ctx)
		a.log.Info("admin password set", "cluster", id, "user", cur.User, "master", m)
		resp := fmt.Sprintf("the password of %s %s on the master FE %s and a login with it works", cur.User, how, m)
		if rec.PendingGenerated {
			resp += fmt.Sprintf("; POST /api/cluster/%d/adminPassword/reveal shows it once", id)
		}
		logf("%s", resp)
		return runner.Outcome{Response: resp}, nil
	}
	if m, err := a.master(ctx, fes, target); err == nil {
		return done(m, "was already set") // by a run stopped before it recorded it
	}
	left := "its recorded password"
	if cur.Password == "" {
		left = "an EMPTY password"
	}
	m, err := a.master(ctx, fes, cur)
	if err != nil {
		if refused(err) {
			return runner.Outcome{}, fmt.Errorf("the admin password was NOT set: the FEs refuse %s with the recorded password and with the new one (%v): set the cluster's current account with PUT /api/cluster/%d/credentials, then retry this task", cur.User, err, id)
		}
		return runner.Outcome{}, fmt.Errorf("the admin password was NOT set and %s keeps %s: %v; retry this task once the master FE runs", cur.User, left, err)
	}
	logf("SET PASSWORD FOR '%s' on the master FE %s (as %s)", target.User, m, cur.User)
	stmt := fmt.Sprintf("SET PASSWORD FOR '%s' = PASSWORD('%s')", target.User, target.Password)
	if _, err := a.sql.QueryAs(ctx, m, cur, stmt); err != nil {
		return runner.Outcome{}, fmt.Errorf("the admin password was NOT set and %s keeps %s: SET PASSWORD on the master FE %s failed: %s; retry this task",
			target.User, left, m, redact(err, target.Password))
	}
	if err := a.sql.Login(ctx, m, target); err != nil {
		return runner.Outcome{}, fmt.Errorf("SET PASSWORD on the master FE %s was accepted but a login with the new password failed: %s; retry this task (the new password is tried first)",
			m, redact(err, target.Password))
	}
	return done(m, "was set")
}

// refused reports whether master failed because every FE that answered
// refused the login.
func refused(err error) bool {
	var e *errNoMaster
	return errors.As(err, &e) && e.refused
}

// redact is err's text without the password (an FE may quote the statement).
func redact(err error, password string) string {
	s := err.Error()
	if password != "" {
		s = strings.ReplaceAll(s, password, "***")
	}
	return s
}

// forget leaves no copy of replaced sealed passwords in SQLite's files.
func (a *Admin) forget(ctx context.Context) {
	if err := a.st.ForgetDeleted(ctx); err != nil {
		a.log.Warn("replaced admin password may remain in the database's free pages", "error", err)
	}
}

// Reveal returns the user and generated admin password of a cluster,
// once: the first call gets it, every later one a conflict.
func (a *Admin) Reveal(ctx context.Context, clusterID int64) (user, password string, err error) {
	if err := a.clusterExists(ctx, clusterID); err != nil {
		return "", "", err
	}
	rec, err := a.st.GetAdminAccount(ctx, clusterID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && rec.Password == nil):
		return "", "", conflict("cluster %d has no admin password yet: the SECURE_CLUSTER task at the end of buildCluster sets one", clusterID)
	case err != nil:
		return "", "", err
	case !rec.Generated:
		return "", "", conflict("the admin password of cluster %d was given by a client (buildCluster's adminPassword or PUT /api/cluster/%d/credentials), not generated: it is not shown", clusterID, clusterID)
	case rec.Revealed:
		return "", "", alreadyRevealed(clusterID)
	}
	acct, err := a.acc.current(rec)
	if err != nil {
		return "", "", err
	}
	won, err := a.st.MarkAdminRevealed(ctx, clusterID)
	if err != nil {
		return "", "", err
	}
	if !won {
		return "", "", alreadyRevealed(clusterID)
	}
	a.log.Info("admin password revealed", "cluster", clusterID, "user", acct.User)
	return acct.User, acct.Password, nil
}

func alreadyRevealed(clusterID int64) error {
	return conflict("the admin password of cluster %d was already revealed; set a new one with SET PASSWORD on the cluster and then PUT /api/cluster/%d/credentials {\"user\",\"password\"}", clusterID, clusterID)
}

var userName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// MaxPassword bounds an operator's password.
const MaxPassword = 128

// SetAccount records an operator's admin account for a cluster, after a
// login with it worked on the first FE that answers (the recorded master
// first). Nothing is recorded when the login is refused (an invalid error
// that says so, without the password) or no FE answers (a conflict).
func (a *Admin) SetAccount(ctx context.Context, clusterID int64, user, password string) error {
	if !userName.MatchString(user) {
		return invalid("user %q: a letter followed by at most 63 letters, digits or '_'", truncate(user, 40))
	}
	if password == "" {
		return invalid("password is required: the manager does not run a cluster whose admin has an empty password (set one on the cluster first)")
	}
	if len(password) > MaxPassword || strings.ContainsFunc(password, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return invalid("password: at most %d characters, no control characters", MaxPassword)
	}
	if err := a.clusterExists(ctx, clusterID); err != nil {
		return err
	}
	fes, err := a.feAddrs(ctx, clusterID)
	if err != nil {
		return err
	}
	if len(fes) == 0 {
		return conflict("cluster %d has no FE to check the account on", clusterID)
	}
	acct := roleexec.Account{User: user, Password: password}
	var tried []string
	checked := ""
	for _, fe := range fes {
		err := a.sql.Login(ctx, fe, acct)
		if err == nil {
			checked = fe
			break
		}
		if roleexec.AccessDenied(err) {
			return invalid("the FE %s refuses a login as %s with this password (%s): nothing recorded; send the user and password the cluster has",
				fe, user, redact(err, password))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		tried = append(tried, fmt.Sprintf("%s: %s", fe, redact(err, password)))
	}
	if checked == "" {
		return conflict("no FE of cluster %d answers to check the account (%s): nothing recorded; start the FEs, then send it again", clusterID, strings.Join(tried, "; "))
	}
	sealed, err := a.acc.Secrets.Seal([]byte(password))
	if err != nil {
		return fmt.Errorf("seal the admin password: %w", err)
	}
	if err := a.st.SetAdminAccount(ctx, clusterID, user, sealed); err != nil {
		return err
	}
	a.forget(ctx)
	a.log.Info("admin account set", "cluster", clusterID, "user", user, "checked on", checked)
	return nil
}

func (a *Admin) clusterExists(ctx context.Context, clusterID int64) error {
	_, err := a.st.GetCluster(ctx, clusterID)
	if errors.Is(err, store.ErrNotFound) {
		return &process.Error{Kind: process.KindNotFound, Msg: fmt.Sprintf("cluster %d does not exist", clusterID)}
	}
	return err
}

func invalid(format string, args ...any) error {
	return &process.Error{Kind: process.KindInvalid, Msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &process.Error{Kind: process.KindConflict, Msg: fmt.Sprintf(format, args...)}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
