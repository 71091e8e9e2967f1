package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// storeOptions are --data-dir and --db: which manager's database.
type storeOptions struct{ dataDir, db string }

func (o *storeOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.dataDir, "data-dir", "./data", "the manager's data dir")
	fs.StringVar(&o.db, "db", "", "the manager's database (empty for SQLite in the data dir)")
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

func tokenCommand(stdout, stderr io.Writer) *cobra.Command {
	var db storeOptions
	cmd := group(&cobra.Command{
		Use:   "token",
		Short: "create, list and revoke API tokens",
		Long: `Create, list and revoke API tokens, on the manager's database directly (--data-dir, --db).
Changes are audited as method CLI, by the local user name, from "local".`,
	})
	db.register(cmd.PersistentFlags())

	var userName, roleName, clusters, expires string
	create := &cobra.Command{
		Use:   "create --user NAME --role admin|operator|viewer",
		Short: "print a new API token (shown once)",
		Long: `Print a new token (once: only its hash is kept). --clusters grants those clusters to the user
(grants belong to the user and hold for all its tokens); operator and viewer tokens expire
after 90 days unless --expires says otherwise, admin tokens never unless it does.`,
		Example: "  dorismanager token create --user alice --role operator --clusters 1,2\n" +
			"  dorismanager token create --user ops --role admin",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := cliTokenSpec(userName, roleName, clusters, expires)
			if err != nil {
				return err
			}
			st, err := openStore(db.dataDir, db.db, true)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
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
		},
	}
	create.Flags().StringVar(&userName, "user", "", "the user the token belongs to (created if new)")
	create.Flags().StringVar(&roleName, "role", "", "admin, operator or viewer")
	create.Flags().StringVar(&clusters, "clusters", "", "cluster ids to grant the user, comma-separated")
	create.Flags().StringVar(&expires, "expires", "", "lifetime: 90d, 12h or never (default: 90d for operator and viewer, never for admin)")

	var listUser string
	list := &cobra.Command{
		Use:   "list",
		Short: "list the tokens: id, user, role, the user's clusters, created, expires, last used, revoked",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(db.dataDir, db.db, false)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			rows, err := st.ListTokens(ctx, listUser)
			if err != nil {
				return err
			}
			printTokens(stdout, rows)
			return nil
		},
	}
	list.Flags().StringVar(&listUser, "user", "", "only this user's tokens")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "refuse a token from now on",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return revokeToken(cmd.Context(), db, args[0], stdout)
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func revokeToken(ctx context.Context, db storeOptions, arg string, stdout io.Writer) error {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("token id %q: give the ID that token list shows", arg)
	}
	st, err := openStore(db.dataDir, db.db, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
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
func grantCommand(name string, stdout io.Writer) *cobra.Command {
	var db storeOptions
	short := "let USER's operator and viewer tokens reach these clusters"
	if name == "revoke-grant" {
		short = "take USER's access to these clusters away again"
	}
	cmd := &cobra.Command{
		Use:   name + " USER CLUSTER[,CLUSTER...]",
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("usage: dorismanager %s USER CLUSTER[,CLUSTER...]", name)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return changeGrants(cmd.Context(), name, db, args[0], args[1], stdout)
		},
	}
	db.register(cmd.Flags())
	return cmd
}

func changeGrants(ctx context.Context, name string, db storeOptions, userName, clusters string, stdout io.Writer) error {
	ids, err := clusterIDs(clusters)
	if err != nil || len(ids) == 0 {
		return fmt.Errorf("clusters %q: give cluster ids such as 1 or 1,2", clusters)
	}
	st, err := openStore(db.dataDir, db.db, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	u, err := st.RequireUser(ctx, userName)
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
func auditCommand(stdout io.Writer) *cobra.Command {
	var db storeOptions
	filters := map[string]*string{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "who did what, newest first",
		Long: `Print the audit log, newest first, from the manager's database: every call that changed state
or was refused, and every change made by these commands.`,
		Example: "  dorismanager audit --user alice --cluster 1 --since 24h --outcome refused",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := audit.ParseQuery(func(name string) string { return *filters[name] }, time.Now())
			if err != nil {
				return fmt.Errorf("--%v", err)
			}
			st, err := openStore(db.dataDir, db.db, false)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			es, err := st.ListAudit(ctx, q)
			if err != nil {
				return err
			}
			return printAudit(stdout, es, asJSON)
		},
	}
	db.register(cmd.Flags())
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
		filters[f.name] = cmd.Flags().String(f.name, "", f.usage)
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object a line, as GET /api/audit has them")
	return cmd
}

func printAudit(stdout io.Writer, es []store.AuditEntry, asJSON bool) error {
	if asJSON {
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
	return tw.Flush()
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
