package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/store"
)

// The token, grant and audit commands on one data dir: what each prints
// and what lands in the database.
func TestTokenGrantAuditCommands(t *testing.T) {
	dir := t.TempDir()
	do := func(args ...string) (string, string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(append(args, "--data-dir", dir), &out, &errb)
		return out.String(), errb.String(), err
	}
	open := func() *store.Store {
		t.Helper()
		st, err := store.Open("", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	ctx := context.Background()
	// Commands that read need a database; creating a token makes one.
	if _, _, err := do("token", "list"); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("list without a database: %v", err)
	}
	out, info, err := do("token", "create", "--user", "root", "--role", "admin")
	if err != nil || !strings.Contains(info, "never expires") || !strings.Contains(info, "shown only now") {
		t.Fatalf("admin token: %q %q %v", out, info, err)
	}
	admin := strings.TrimSpace(out)
	st := open()
	for _, name := range []string{"one", "two"} {
		if _, err := st.CreateCluster(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if tk, u, err := st.TokenByHash(ctx, auth.HashToken(admin)); err != nil || u.Name != "root" || tk.Role != store.RoleAdmin || tk.ExpiresAt != nil {
		t.Fatalf("admin token stored: %+v %+v %v", tk, u, err)
	}
	// An operator token: clusters granted, 90 days unless told.
	out, info, err = do("token", "create", "--user", "alice", "--role", "operator", "--clusters", "1,2")
	if err != nil || !strings.Contains(info, "role operator") || !strings.Contains(info, "expires") {
		t.Fatalf("operator token: %q %v", info, err)
	}
	tk, u, err := st.TokenByHash(ctx, auth.HashToken(strings.TrimSpace(out)))
	if err != nil || tk.Role != store.RoleOperator || tk.ExpiresAt == nil || time.Until(*tk.ExpiresAt) < 89*24*time.Hour {
		t.Fatalf("operator token stored: %+v %v", tk, err)
	}
	if g, _ := st.GrantsOf(ctx, u.ID); len(g) != 2 {
		t.Fatalf("grants: %v", g)
	}
	out, _, err = do("token", "create", "--user", "vic", "--role", "viewer", "--expires", "1d")
	if err != nil {
		t.Fatal(err)
	}
	if tk, _, _ := st.TokenByHash(ctx, auth.HashToken(strings.TrimSpace(out))); tk.ExpiresAt == nil || time.Until(*tk.ExpiresAt) > 24*time.Hour {
		t.Fatalf("viewer token for a day: %+v", tk)
	}
	if _, _, err := do("token", "create", "--user", "vic", "--role", "viewer", "--clusters", "9"); err == nil {
		t.Fatal("granted a cluster that does not exist")
	}

	// Grants: flags may come after the arguments.
	if out, _, err := do("revoke-grant", "alice", "2"); err != nil || !strings.Contains(out, "cluster 2 no longer granted to alice") {
		t.Fatalf("revoke-grant: %q %v", out, err)
	}
	if _, _, err := do("revoke-grant", "alice", "2"); err == nil || !strings.Contains(err.Error(), "not granted") {
		t.Fatalf("second revoke-grant: %v", err)
	}
	if out, _, err := do("grant", "vic", "1,2"); err != nil || !strings.Contains(out, "cluster 2 granted to vic") {
		t.Fatalf("grant: %q %v", out, err)
	}
	if _, _, err := do("grant", "nobody", "1"); err == nil || !strings.Contains(err.Error(), "first token") {
		t.Fatalf("grant to an unknown user: %v", err)
	}

	// The list shows every token and never a secret.
	out, _, err = do("token", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list:\n%s", out)
	}
	for i, want := range []string{"root  admin     all", "alice  operator  1", "vic    viewer    1,2"} {
		if !strings.Contains(strings.Join(strings.Fields(lines[i+1]), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("line %d %q does not show %q", i+1, lines[i+1], want)
		}
	}
	if strings.Contains(out, "dm_") || strings.Contains(out, tk.Hash) {
		t.Fatalf("list shows a secret:\n%s", out)
	}

	// Revoke once; the token is refused from then on.
	if out, _, err := do("token", "revoke", "2"); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q %v", out, err)
	}
	if out, _, _ := do("token", "revoke", "2"); !strings.Contains(out, "already") {
		t.Fatalf("second revoke: %q", out)
	}
	if _, _, err := do("token", "revoke", "99"); err == nil {
		t.Fatal("revoked a token that does not exist")
	}
	if out, _, _ := do("token", "list", "--user", "alice"); !strings.Contains(out, "alice") || strings.Contains(out, "vic") ||
		strings.Count(out, "\n") != 2 || strings.HasSuffix(strings.TrimSpace(out), "-") {
		t.Fatalf("alice's tokens:\n%s", out)
	}

	// Every change above is in the audit log, newest first.
	out, _, err = do("audit")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"CLI token revoke", "CLI grant", "CLI grant", "CLI revoke-grant", "CLI token create", "CLI token create", "CLI token create"}
	if len(lines) != len(want)+1 {
		t.Fatalf("audit:\n%s", out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i+1], w) {
			t.Errorf("audit line %d %q, want %q", i+1, lines[i+1], w)
		}
	}
	if out, _, _ := do("audit", "--cluster", "2", "--action", "grant"); strings.Count(out, "\n") != 3 {
		t.Fatalf("audit of cluster 2:\n%s", out)
	}
	if out, _, _ := do("audit", "--json", "--limit", "1"); !strings.HasPrefix(out, `{"id":`) || !strings.Contains(out, `"route":"token revoke"`) {
		t.Fatalf("audit --json:\n%s", out)
	}
	if out, _, _ := do("audit", "--since", "1h", "--outcome", "refused"); strings.Count(out, "\n") != 1 {
		t.Fatalf("no refusals, only the header:\n%s", out)
	}
}
