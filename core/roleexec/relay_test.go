package roleexec

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dorismanager/dorismanager/core/pkgrelay"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// failingRelay is a manager's package relay that cannot relay: its error
// is err.
type failingRelay struct {
	err   error
	calls atomic.Int32
}

func (r *failingRelay) Fetch(context.Context, string, pkgrelay.Sums, int64) (pkgrelay.Entry, error) {
	r.calls.Add(1)
	return pkgrelay.Entry{}, r.err
}

// When the manager cannot fetch the task's package (its network does not
// reach the mirror), the host downloads it itself, and the task log says
// so; a package the relay refused after its checks fails the task, and the
// host does not try.
func TestRelayFailureFallsBackToTheHost(t *testing.T) {
	pkg := []byte("the package")
	sum := sha512.Sum512(pkg)
	good := hex.EncodeToString(sum[:])
	var gets atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Write(pkg)
	}))
	defer files.Close()
	client, _ := realAgent(t)
	cases := []struct {
		name     string
		err      error
		fail     string // in the task's error; "" for success
		hostGets int32
	}{
		{"manager cannot reach the mirror", errors.New("the manager's fetch of x: dial tcp 192.0.2.1:80: connect: no route to host"), "", 1},
		{"package failed the manager's checks", fmt.Errorf("the manager's fetch of x: SHA-512 is 00, expected 11: %w", pkgrelay.ErrBadPackage), "SHA-512 is 00", 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gets.Store(0)
			f := newFactsEnv(t)
			f.role.facts["Precheck"] = sdk.Facts{}
			relay := &failingRelay{err: c.err}
			f.e = New(Config{Store: f.st, Roles: oldRole{oldPlugin{f.role}}, Agents: oneAgent{client}, Relay: relay})
			t.Cleanup(f.e.Close)
			a, _ := f.e.Resolve("INSTALL_EXPORTER")
			in := task.Role{ClusterID: f.key.ClusterID, Host: f.key.Host, Role: f.key.Role,
				PackageURL: fmt.Sprintf("%s/p%d.tgz", files.URL, i), PackageSHA512: good, PackageSumFrom: "x"}
			log := &syncBuf{}
			_, err := a.Run(context.Background(), runner.Job{Task: store.Task{ID: int64(20 + i), ProcessID: f.p.ID, TaskType: "INSTALL_EXPORTER", Input: task.Encode(in)}, Log: log})
			switch {
			case c.fail == "" && err != nil:
				t.Fatalf("install: %v\nlog: %s", err, log)
			case c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)):
				t.Fatalf("install: %v, want it to say %q", err, c.fail)
			}
			if relay.calls.Load() != 1 || gets.Load() != c.hostGets {
				t.Errorf("relay asked %d times, the host fetched %d times; want 1 and %d", relay.calls.Load(), gets.Load(), c.hostGets)
			}
			if said := strings.Contains(log.String(), "the host downloads it itself"); said != (c.fail == "") {
				t.Errorf("task log %q: says the host downloads it itself: %v", log, said)
			}
		})
	}
}
