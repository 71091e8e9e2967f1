package process

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"golang.org/x/crypto/ssh"
)

// dbFiles reads the SQLite database and its -wal and -shm files.
func dbFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{"dorismanager.db", "dorismanager.db-wal", "dorismanager.db-shm"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// traces lists the files holding any 32-byte piece of secret.
func traces(files map[string][]byte, secret []byte) []string {
	var found []string
	for name, b := range files {
		for i := 0; i+32 <= len(secret); i += 32 {
			if bytes.Contains(b, secret[i:i+32]) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}

// SSH credentials wiped at installComplete, or replaced by installAgent
// again, leave no piece of their sealed bytes in the database, its
// write-ahead log or its shared-memory file.
func TestWipedCredentialsLeaveNoTrace(t *testing.T) {
	small, _ := keys(t)
	rk, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := ssh.MarshalPrivateKey(rk, "")
	if err != nil {
		t.Fatal(err)
	}
	large := string(pem.EncodeToMemory(pb)) // beyond one page once sealed
	for _, key := range []struct{ name, pem string }{{"ed25519 key", small}, {"rsa 4096 key", large}} {
		for _, how := range []string{"installComplete", "installAgent again"} {
			t.Run(key.name+", "+how, func(t *testing.T) {
				ctx := context.Background()
				dir := t.TempDir()
				st, err := store.Open("", dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				box, err := secret.LoadOrCreate(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				e := New(Config{Store: st, Sealer: box})
				r := agentReq(t, "h1")
				r.SSHKey = key.pem
				pid, err := e.InstallAgent(ctx, 1, r)
				if err != nil {
					t.Fatal(err)
				}
				p, _ := st.GetProcess(ctx, pid)
				old := p.Credentials
				if len(old) < 64 {
					t.Fatalf("sealed credentials of %d bytes", len(old))
				}
				// The search finds them while they are there.
				if len(traces(dbFiles(t, dir), old)) == 0 {
					t.Fatal("the sealed credentials are in none of the database files: the search cannot work")
				}
				switch how {
				case "installComplete":
					if err := e.Complete(ctx, 1, pid); err != nil {
						t.Fatal(err)
					}
				case "installAgent again":
					ts, _ := st.TasksOfStep(ctx, pid, StepInstallAgent)
					if err := st.DB().Model(&store.Task{}).Where("id = ?", ts[0].ID).Update("status", store.StatusFailure).Error; err != nil {
						t.Fatal(err)
					}
					r.ProcessID, r.User = pid, "deploy"
					if _, err := e.InstallAgent(ctx, 1, r); err != nil {
						t.Fatal(err)
					}
					p, _ := st.GetProcess(ctx, pid)
					if bytes.Equal(p.Credentials, old) || len(traces(dbFiles(t, dir), p.Credentials)) == 0 {
						t.Fatal("the new credentials are not in the database files")
					}
				}
				if found := traces(dbFiles(t, dir), old); len(found) > 0 {
					t.Fatalf("pieces of the old sealed credentials remain in %v", found)
				}
			})
		}
	}
}
