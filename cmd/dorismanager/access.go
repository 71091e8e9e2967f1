package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dorismanager/dorismanager/core/api"
	"github.com/dorismanager/dorismanager/core/audit"
	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/store"
)

// Tokens, grants and the audit log from the command line. These commands
// work on the manager's database directly (--data-dir or --db), like
// "plugins pin": they need no token and no running manager, only access
// to the database, which is what makes an operator of the machine an
// admin. Every change they make is audited as method CLI, by the local
// user name, from "local".

const tokenUsage = `usage:
  dorismanager token create --user NAME --role admin|operator|viewer [--clusters 1,2] [--expires 90d|12h|never]
      print a new token (once: only its hash is kept); --clusters grants those clusters to the user
      (grants belong to the user and hold for all its tokens); operator and viewer tokens expire
      after 90 days unless --expires says otherwise, admin tokens never unless it does
  dorismanager token list [--user NAME]
      every token: id, user, role, the user's clusters, created, expires, last used, revoked
  dorismanager token revoke ID
      refuse the token from now on
common flags: --data-dir DIR (default ./data), --db URL
`

const grantUsage = `usage:
  dorismanager grant USER CLUSTER[,CLUSTER...]         let USER's operator and viewer tokens reach these clusters
  dorismanager revoke-grant USER CLUSTER[,CLUSTER...]  take them away again
common flags: --data-dir DIR (default ./data), --db URL
`

// storeFlags adds --data-dir and --db to fs.
func storeFlags(fs *flag.FlagSet) (dataDir, db *string) {
	return fs.String("data-dir", "./data", "the manager's data dir"),
		fs.String("db", "", "the manager's database (empty for SQLite in the data dir)")
}

// parseAll parses flags anywhere among args (flag stops at the first
// positional argument) and returns the positional ones.
func parseAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// openStore opens the manager's database. Without --db, the SQLite file
// must exist unless create (a token may be made before the first start).
func openStore(dataDir, db string, create bool) (*store.Store, error) {
	if db == "" && !create {
		path := filepath.Join(dataDir, "dorismanager.db")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no database at %s: give the manager's --data-dir or --db", path)
		}
	}
	return store.Open(db, dataDir, nil)
}

// localAudit records a change made from the command line.
func localAudit(ctx context.Context, st *store.Store, command string, clusterID int64, reason string) {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	e := store.AuditEntry{UserName: name, Remote: "local", Method: "CLI", Route: command, ClusterID: clusterID,
		Status: 200, Reason: audit.Reason(reason)}
	if err := st.AddAudit(ctx, &e); err != nil {
		fmt.Fprintf(os.Stderr, "dorismanager: warning: %v\n", err)
	}
}

func tokenCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return errors.New("token: give create, list or revoke")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("token "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir, db := storeFlags(fs)
	var userName, roleName, clusters, expires *string
	switch cmd {
	case "create":
		userName = fs.String("user", "", "the user the token belongs to (created if new)")
		roleName = fs.String("role", "", "admin, operator or viewer")
		clusters = fs.String("clusters", "", "cluster ids to grant the user, comma-separated")
		expires = fs.String("expires", "", "lifetime: 90d, 12h or never (default: 90d for operator and viewer, never for admin)")
	case "list":
		userName = fs.String("user", "", "only this user's tokens")
	case "revoke":
	default:
		fmt.Fprint(stderr, tokenUsage)
		return fmt.Errorf("token: unknown command %q (create, list or revoke)", cmd)
	}
	pos, err := parseAll(fs, args[1:])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch cmd {
	case "create":
		if len(pos) > 0 {
			return fmt.Errorf("token create takes no arguments, got %q", pos)
		}
		spec, err := cliTokenSpec(*userName, *roleName, *clusters, *expires)
		if err != nil {
			return err
		}
		st, err := openStore(*dataDir, *db, true)
		if err != nil {
			return err
		}
		defer st.Close()
		tok, rec, err := auth.CreateToken(ctx, st, spec)
		if err != nil {
			return err
		}
		localAudit(ctx, st, "token create", 0, fmt.Sprintf("token %d for %s, role %s", rec.ID, spec.User, spec.Role))
		fmt.Fprintln(stdout, tok)
		exp := "never expires"
		if rec.ExpiresAt != nil {
			exp = "expires " + rec.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(stderr, "token %d for %s, role %s, %s; it is shown only now\n", rec.ID, spec.User, spec.Role, exp)
		return nil
	case "list":
		if len(pos) > 0 {
			return fmt.Errorf("token list takes no arguments, got %q", pos)
		}
		st, err := openStore(*dataDir, *db, false)
		if err != nil {
			return err
		}
		defer st.Close()
		rows, err := st.ListTokens(ctx, *userName)
		if err != nil {
			return err
		}
		printTokens(stdout, rows)
		return nil
	}
	if len(pos) != 1 {
		return errors.New("usage: dorismanager token revoke ID")
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("token id %q: give the ID that token list shows", pos[0])
	}
	st, err := openStore(*dataDir, *db, false)
	if err != nil {
		return err
	}
	defer st.Close()
	changed, err := st.RevokeToken(ctx, id, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token %d does not exist (see token list)", id)
	}
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(stdout, "token %d was revoked already\n", id)
		return nil
	}
	localAudit(ctx, st, "token revoke", 0, fmt.Sprintf("token %d revoked", id))
	fmt.Fprintf(stdout, "token %d revoked: it is refused from now on\n", id)
	return nil
}

func cliTokenSpec(userName, roleName, clusters, expires string) (auth.TokenSpec, error) {
	if userName == "" {
		return auth.TokenSpec{}, errors.New("--user is required")
	}
	if roleName == "" {
		return auth.TokenSpec{}, errors.New("--role is required: admin, operator or viewer")
	}
	role, err := auth.ParseRole(roleName)
	if err != nil {
		return auth.TokenSpec{}, fmt.Errorf("--role: %w", err)
	}
	life := auth.DefaultLifetime(role)
	if expires != "" {
		if life, err = auth.ParseLifetime(expires); err != nil {
			return auth.TokenSpec{}, fmt.Errorf("--expires: %w", err)
		}
	}
	ids, err := clusterIDs(clusters)
	if err != nil {
		return auth.TokenSpec{}, fmt.Errorf("--clusters: %w", err)
	}
	if role == auth.Admin && len(ids) > 0 {
		return auth.TokenSpec{}, errors.New("--clusters: an admin token reaches every cluster; grant clusters to operators and viewers")
	}
	return auth.TokenSpec{User: userName, Role: role, Clusters: ids, Lifetime: life}, nil
}

// clusterIDs reads "1,2,3" (empty: none).
func clusterIDs(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a cluster id", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func printTokens(w io.Writer, rows []store.TokenRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tROLE\tCLUSTERS\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range rows {
		clusters := "-"
		switch {
		case t.Role == store.RoleAdmin:
			clusters = "all"
		case len(t.Grants) > 0:
			s := make([]string, len(t.Grants))
			for i, c := range t.Grants {
				s[i] = strconv.FormatInt(c, 10)
			}
			clusters = strings.Join(s, ",")
		}
		exp := when(t.ExpiresAt)
		if t.ExpiresAt == nil {
			exp = "never"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.UserName, t.Role, clusters, when(&t.CreatedAt), exp,
			when(t.LastUsedAt), when(t.RevokedAt))
	}
	_ = tw.Flush()
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// grantCommand is "grant" and "revoke-grant".
func grantCommand(name string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir, db := storeFlags(fs)
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fmt.Fprint(stderr, grantUsage)
		return fmt.Errorf("usage: dorismanager %s USER CLUSTER[,CLUSTER...]", name)
	}
	ids, err := clusterIDs(pos[1])
	if err != nil || len(ids) == 0 {
		return fmt.Errorf("clusters %q: give cluster ids such as 1 or 1,2", pos[1])
	}
	st, err := openStore(*dataDir, *db, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := st.RequireUser(ctx, pos[0])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if name == "grant" {
			if err := st.AddGrant(ctx, u.ID, id); err != nil {
				return err
			}
			localAudit(ctx, st, "grant", id, fmt.Sprintf("cluster %d granted to %s", id, u.Name))
			fmt.Fprintf(stdout, "cluster %d granted to %s\n", id, u.Name)
			continue
		}
		if err := st.RemoveGrant(ctx, u.ID, id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s is not granted cluster %d", u.Name, id)
		} else if err != nil {
			return err
		}
		localAudit(ctx, st, "revoke-grant", id, fmt.Sprintf("cluster %d no longer granted to %s", id, u.Name))
		fmt.Fprintf(stdout, "cluster %d no longer granted to %s\n", id, u.Name)
	}
	return nil
}

// auditCommand prints audit entries, newest first, from the database.
func auditCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir, db := storeFlags(fs)
	filters := map[string]*string{}
	for _, f := range []struct{ name, usage string }{
		{audit.FilterUser, "only this user's calls"},
		{audit.FilterCluster, "only calls on this cluster id"},
		{audit.FilterSince, "from this time (2024-05-01, 2024-05-01T12:00:00Z) or age (24h, 7d)"},
		{audit.FilterUntil, "before this time or age"},
		{audit.FilterAction, `calls whose "METHOD route" contains this (stop, "POST /api/tokens")`},
		{audit.FilterOutcome, "ok, refused (401, 403, 429), error, or an HTTP status"},
		{audit.FilterLimit, "at most this many entries (default 100, at most 1000)"},
		{audit.FilterBefore, "only entries older than this entry id (the next page)"},
	} {
		filters[f.name] = fs.String(f.name, "", f.usage)
	}
	asJSON := fs.Bool("json", false, "one JSON object a line, as GET /api/audit has them")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("audit takes no arguments, got %q", pos)
	}
	q, err := audit.ParseQuery(func(name string) string { return *filters[name] }, time.Now())
	if err != nil {
		return fmt.Errorf("--%v", err)
	}
	st, err := openStore(*dataDir, *db, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	es, err := st.ListAudit(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range es {
			if err := enc.Encode(api.AuditViewOf(e)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tUSER\tTOKEN\tFROM\tACTION\tTARGET\tSTATUS\tPROCESS\tREASON")
	for _, e := range es {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s\t%d\t%s\t%s\n", e.ID, e.At.UTC().Format("2006-01-02 15:04:05Z"),
			dash(e.UserName), idOrDash(e.TokenID), dash(e.Remote), e.Method, e.Route, targetOf(e), e.Status,
			idOrDash(e.CreatedProcessID), dash(e.Reason))
	}
	_ = tw.Flush()
	return nil
}

func targetOf(e store.AuditEntry) string {
	var parts []string
	for _, p := range []struct {
		name string
		id   int64
	}{{"cluster", e.ClusterID}, {"process", e.ProcessID}, {"task", e.TaskID}} {
		if p.id != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p.name, p.id))
		}
	}
	if e.Hosts != "" {
		parts = append(parts, "hosts "+e.Hosts)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}
