package dorissim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

// login pings the FE at port as user with password and returns the error.
func login(t *testing.T, port int, user, password string) error {
	t.Helper()
	db := openDBAs(t, port, user, password)
	defer db.Close()
	return db.Ping()
}

// TestFEPasswords: root and admin start with empty passwords; SET PASSWORD
// (through the master or a follower) changes root's on every FE at once,
// a wrong or missing password is refused as Doris refuses it, and the
// password survives a restart without being written down in the clear.
func TestFEPasswords(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	masterHome := r.dirs[dorissim.RoleFE]
	mp := setupFE(t, masterHome)
	followerHome := r.clone(dorissim.RoleFE)
	fp := setupFE(t, followerHome)
	startFE(t, r.env, masterHome)
	waitFEReady(t, mp)
	for _, user := range []string{"root", "admin"} {
		if err := login(t, mp.query, user, ""); err != nil {
			t.Fatalf("a new cluster's %s with an empty password: %v", user, err)
		}
	}
	if err := login(t, mp.query, "nobody", ""); err == nil || !strings.Contains(err.Error(),
		"Error 1045 (28000): Access denied for user 'nobody'@'127.0.0.1' (using password: NO)") {
		t.Fatalf("unknown user: %v", err)
	}
	db := openDB(t, mp.query)
	if _, err := db.Exec(fmt.Sprintf(`ALTER SYSTEM ADD FOLLOWER "%s"`, fp.editAddr())); err != nil {
		t.Fatal(err)
	}
	startFE(t, r.env, followerHome, "--helper", mp.editAddr())
	waitFEReady(t, fp)

	const pw = "Gx7 q2-Lm9_zP4!rT8w"
	if _, err := db.Exec(fmt.Sprintf("SET PASSWORD FOR 'root' = PASSWORD('%s')", pw)); err != nil {
		t.Fatalf("set password: %v", err)
	}
	for _, port := range []int{mp.query, fp.query} {
		if err := login(t, port, "root", ""); err == nil || !strings.Contains(err.Error(),
			"Error 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: NO)") {
			t.Errorf("FE %d, empty password: %v", port, err)
		}
		if err := login(t, port, "root", "wrong"); err == nil || !strings.Contains(err.Error(),
			"Error 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: YES)") {
			t.Errorf("FE %d, wrong password: %v", port, err)
		}
		if err := login(t, port, "root", pw); err != nil {
			t.Errorf("FE %d, the password just set: %v", port, err)
		}
		if err := login(t, port, "admin", ""); err != nil {
			t.Errorf("FE %d: admin's password changed with root's: %v", port, err)
		}
	}
	// A connection made before the change keeps working, as in Doris.
	if _, _, err := rows(db, "SHOW FRONTENDS"); err != nil {
		t.Errorf("open session after SET PASSWORD: %v", err)
	}

	// The current user's own password, through the follower (forwarded).
	const pw2 = "second-Pw"
	fdb := openDBAs(t, fp.query, "root", pw)
	if _, err := fdb.Exec("SET PASSWORD = PASSWORD('" + pw2 + "')"); err != nil {
		t.Fatalf("SET PASSWORD = ... through the follower: %v", err)
	}
	if err := login(t, mp.query, "root", pw2); err != nil {
		t.Fatalf("master after the follower's SET PASSWORD: %v", err)
	}
	if err := login(t, fp.query, "root", pw); err == nil {
		t.Fatal("the old password still works on the follower")
	}
	for _, tc := range []struct{ sql, want string }{
		{"SET PASSWORD FOR 'ghost' = PASSWORD('x')", "user 'ghost'@'%' does not exist"},
		{"SET PASSWORD FOR 'root' = 'plain'", "Password hash should be a 41-digit hexadecimal number"},
	} {
		if _, err := fdb.Exec(tc.sql); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.sql, err, tc.want)
		}
	}

	// Restarted, both FEs still want it; the meta holds its hash only, and
	// no log holds it at all.
	for _, home := range []string{followerHome, masterHome} {
		if out, err := script(t, r.env, home, "stop_fe.sh"); err != nil {
			t.Fatalf("stop: %v %s", err, out)
		}
	}
	startFE(t, r.env, masterHome)
	startFE(t, r.env, followerHome)
	waitFEReady(t, mp)
	waitFEReady(t, fp)
	for _, port := range []int{mp.query, fp.query} {
		if err := login(t, port, "root", ""); err == nil {
			t.Errorf("FE %d accepts an empty root password after a restart", port)
		}
		if err := login(t, port, "root", pw2); err != nil {
			t.Errorf("FE %d after a restart: %v", port, err)
		}
	}
	for _, home := range []string{masterHome, followerHome} {
		meta, err := os.ReadFile(filepath.Join(home, "doris-meta", "image", "dorissim-meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(meta), `"root": "*`) || strings.Contains(string(meta), pw2) {
			t.Errorf("meta of %s: want root's hash, not the password:\n%s", home, meta)
		}
		logs, _ := filepath.Glob(filepath.Join(home, "log", "*"))
		for _, l := range logs {
			if ok, _ := fileContains(l, pw2); ok {
				t.Errorf("%s holds the password", l)
			}
		}
	}
}
