package roleexec

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// oldPlugin downloads the package as a plugin built before SHA-512 does:
// without passing any checksum on.
type oldPlugin struct{ *scripted }

func (p oldPlugin) Install(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	dl, err := h.Download(ctx, sdk.Download{URL: r.PackageURL, Dest: "/unused"})
	if err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "installed " + r.PackageURL + " sha512 " + dl.SHA512, Facts: sdk.Facts{"packageUrl": r.PackageURL}}, nil
}

type oldRole struct{ r oldPlugin }

func (o oldRole) Role(context.Context, int64, string, io.Writer) (sdk.Remote, error) { return o.r, nil }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The manager's checksums reach the host's download of the task's package
// even when the plugin passes none; the task log says how the package is
// checked, or that it is not; a password in the URL shows neither in the
// log nor in the facts (responses: see core/runner).
func TestPackageChecksumsReachTheHost(t *testing.T) {
	pkg := []byte("the package")
	sum := sha512.Sum512(pkg)
	good := hex.EncodeToString(sum[:])
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); strings.HasPrefix(r.URL.Path, "/auth/") && (u != "bob" || p != "pw-secret") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write(pkg)
	}))
	defer files.Close()
	withPassword := strings.Replace(files.URL, "http://", "http://bob:pw-secret@", 1)
	box, err := secret.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secret.SealURLPassword(box, withPassword+"/auth/e.tgz")
	if err != nil {
		t.Fatal(err)
	}
	f := newFactsEnv(t)
	f.role.facts["Precheck"] = sdk.Facts{}
	client, _ := realAgent(t)
	f.e = New(Config{Store: f.st, Roles: oldRole{oldPlugin{f.role}}, Agents: oneAgent{client}, Secrets: box})
	t.Cleanup(f.e.Close)
	a, _ := f.e.Resolve("INSTALL_EXPORTER")
	cases := []struct {
		name    string
		in      task.Role
		fail    string // in the error; "" for success
		log     string // in the task log
		summary string // in the response
	}{
		{"published SHA-512 matches", task.Role{PackageURL: files.URL + "/a.tgz", PackageSHA512: good, PackageSumFrom: files.URL + "/a.tgz.sha512"},
			"", "the host checks its SHA-512 " + good + ", published at " + files.URL + "/a.tgz.sha512", "sha512 " + good},
		{"published SHA-512 differs", task.Role{PackageURL: files.URL + "/b.tgz", PackageSHA512: strings.Repeat("0", 128), PackageSumFrom: files.URL + "/b.tgz.sha512"},
			"SHA-512 is " + good + ", expected " + strings.Repeat("0", 128), "published at", ""},
		{"no checksum, allowed", task.Role{PackageURL: files.URL + "/c.tgz"}, "", "UNVERIFIED", "sha512 " + good},
		{"password in the URL", task.Role{PackageURL: withPassword + "/d.tgz", PackageSHA512: good, PackageSumFrom: "x"},
			"", "bob:***@", "sha512 " + good}, // the runner redacts responses
		// As stored: the host downloads it with the password.
		{"sealed password in the URL", task.Role{PackageURL: sealed, PackageSHA512: good, PackageSumFrom: "x"},
			"", "bob:***@", "sha512 " + good},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.ClusterID, in.Host, in.Role = f.key.ClusterID, f.key.Host, f.key.Role
			log := &syncBuf{}
			out, err := a.Run(context.Background(), runner.Job{Task: store.Task{ID: int64(10 + i), ProcessID: f.p.ID, TaskType: "INSTALL_EXPORTER", Input: task.Encode(in)}, Log: log})
			switch {
			case c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)):
				t.Fatalf("error %v, want it to say %q", err, c.fail)
			case c.fail == "" && err != nil:
				t.Fatal(err)
			case c.fail == "" && !strings.Contains(out.Response, c.summary):
				t.Errorf("response %q, want %q in it", out.Response, c.summary)
			}
			if !strings.Contains(log.String(), c.log) {
				t.Errorf("task log %q, want %q in it", log.String(), c.log)
			}
			facts, _, _ := f.record(t)
			for _, text := range []string{log.String(), facts["packageUrl"], func() string {
				if err != nil {
					return err.Error()
				}
				return ""
			}()} {
				if strings.Contains(text, "pw-secret") || strings.Contains(text, secret.SealedPrefix) {
					t.Errorf("the password shows: %q", text)
				}
			}
		})
	}
}

// The role tasks' input keeps the package URL's password sealed: the
// plugin gets the URL opened, and an executor without the key fails the
// task, saying why and hiding the password.
func TestSealedPackageURLReachesThePluginOpened(t *testing.T) {
	box, err := secret.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const plain = "https://bob:s3cret@mirror.example/e.tgz"
	sealed, err := secret.SealURLPassword(box, plain)
	if err != nil {
		t.Fatal(err)
	}
	f := newFactsEnv(t)
	f.role.facts["Precheck"], f.role.facts["Install"] = sdk.Facts{}, sdk.Facts{}
	f.e = New(Config{Store: f.st, Roles: oneRole{f.role}, Agents: noAgents{}, Secrets: box})
	t.Cleanup(f.e.Close)
	f.run(t, "INSTALL_EXPORTER", task.Role{PackageURL: sealed, PackageSHA256: strings.Repeat("ab", 32)})
	for _, m := range []string{"Precheck", "Install"} {
		if got := f.role.last(m).PackageURL; got != plain {
			t.Errorf("%s got %q, want %q", m, got, plain)
		}
	}
	noKey := New(Config{Store: f.st, Roles: oneRole{f.role}, Agents: noAgents{}})
	t.Cleanup(noKey.Close)
	a, _ := noKey.Resolve("INSTALL_EXPORTER")
	in := task.Role{ClusterID: f.key.ClusterID, Host: f.key.Host, Role: f.key.Role, PackageURL: sealed}
	_, err = a.Run(context.Background(), runner.Job{Task: store.Task{ID: 8, ProcessID: f.p.ID, TaskType: "INSTALL_EXPORTER", Input: task.Encode(in)}, Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "no secret key") || !strings.Contains(err.Error(), "bob:***@mirror.example") ||
		strings.Contains(err.Error(), secret.SealedPrefix) {
		t.Fatalf("without the key: %v", err)
	}
}
