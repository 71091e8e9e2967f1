package process

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/pkgsum"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/test/pgtest"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// plainSealer "seals" by prefixing, so tests can see what was stored.
type plainSealer struct{}

func (plainSealer) Seal(b []byte) ([]byte, error) { return append([]byte("sealed:"), b...), nil }
func (plainSealer) Open(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte("sealed:")) {
		return nil, errors.New("not sealed")
	}
	return b[len("sealed:"):], nil
}

type fakeStopper struct {
	mu    sync.Mutex
	calls [][]store.Task
	err   error
}

func (f *fakeStopper) StopStarted(_ context.Context, ts []store.Task) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ts)
	return f.err
}

type fixture struct {
	t       *testing.T
	st      *store.Store
	e       *Engine
	stopper *fakeStopper
	notes   int
	mu      sync.Mutex
}

func newFixture(t *testing.T, dsn string) *fixture {
	t.Helper()
	st, err := store.Open(dsn, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, stopper: &fakeStopper{}}
	f.e = New(Config{Store: st, Sealer: plainSealer{}, Stopper: f.stopper, Catalogue: dorisCatalogue(), Checksums: pkgsum.New(0), Notify: func() {
		f.mu.Lock()
		f.notes++
		f.mu.Unlock()
	}})
	return f
}

// eachBackend runs fn on SQLite and on PostgreSQL.
func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newFixture(t, "")) })
	t.Run("postgres", func(t *testing.T) { fn(t, newFixture(t, pgtest.Start(t))) })
}

var (
	keyOnce         sync.Once
	testKey, encKey string
)

func keys(t *testing.T) (plain, encrypted string) {
	keyOnce.Do(func() {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		b, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			panic(err)
		}
		testKey = string(pem.EncodeToMemory(b))
		b, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pw"))
		if err != nil {
			panic(err)
		}
		encKey = string(pem.EncodeToMemory(b))
	})
	return testKey, encKey
}

// The package repository of the tests: a loopback server that publishes
// doris.tar.gz's SHA-512 beside it, as Apache does; other.tar.gz has no
// checksum and bad.tar.gz one for another file.
var (
	repoOnce sync.Once
	repoBase string
)

// pkgSHA512 is what the repository publishes for doris.tar.gz.
var pkgSHA512 = strings.Repeat("5a", 64)

func repo() string {
	repoOnce.Do(func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/doris.tar.gz.sha512":
				fmt.Fprintf(w, "%s  doris.tar.gz\n", pkgSHA512)
			case "/bad.tar.gz.sha512":
				fmt.Fprintf(w, "%s  evil.tar.gz\n", pkgSHA512)
			default:
				http.NotFound(w, r)
			}
		}))
		repoBase = srv.URL // lives as long as the test binary
	})
	return repoBase
}

// packageURL is the tests' package, whose SHA-512 is published.
func packageURL() string { return repo() + "/doris.tar.gz" }

func agentReq(t *testing.T, hosts ...string) InstallAgentRequest {
	k, _ := keys(t)
	return InstallAgentRequest{ClusterID: 1, Hosts: hosts, User: "root", SSHPort: 22, SSHKey: k,
		PackageURL: packageURL(), InstallDir: "/opt/doris"}
}

func (f *fixture) tasks(pid int64, step int) []store.Task {
	f.t.Helper()
	ts, err := f.st.TasksOfStep(context.Background(), pid, step)
	if err != nil {
		f.t.Fatal(err)
	}
	return ts
}

// finishStep sets every task of the step to status (as a runner would).
func (f *fixture) finishStep(pid int64, step int, status string) {
	f.t.Helper()
	err := f.st.DB().Model(&store.Task{}).Where("process_id = ? AND step = ?", pid, step).
		Updates(map[string]any{"status": status, "finish": true}).Error
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) setStatus(id int64, status string) {
	f.t.Helper()
	if err := f.st.DB().Model(&store.Task{}).Where("id = ?", id).Update("status", status).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) count(model any) int64 {
	var n int64
	f.st.DB().Model(model).Count(&n)
	return n
}

func wantKind(t *testing.T, err error, k Kind) {
	t.Helper()
	if KindOf(err) != k {
		t.Fatalf("want error kind %d, got %v (kind %d)", k, err, KindOf(err))
	}
}

func TestInstallAgentValidation(t *testing.T) {
	_, enc := keys(t)
	cases := []struct {
		name string
		mod  func(r *InstallAgentRequest)
		want string
	}{
		{"no cluster", func(r *InstallAgentRequest) { r.ClusterID = 0 }, "clusterId"},
		{"no hosts", func(r *InstallAgentRequest) { r.Hosts = nil }, "hosts"},
		{"shell in host", func(r *InstallAgentRequest) { r.Hosts = []string{"a;rm -rf /"} }, "hosts[0]"},
		{"space in host", func(r *InstallAgentRequest) { r.Hosts = []string{"a b"} }, "hosts[0]"},
		{"dash label", func(r *InstallAgentRequest) { r.Hosts = []string{"-a.example"} }, "hosts[0]"},
		{"duplicate host", func(r *InstallAgentRequest) { r.Hosts = []string{"h1", "h1"} }, "twice"},
		{"no user", func(r *InstallAgentRequest) { r.User = "" }, "user"},
		{"bad user", func(r *InstallAgentRequest) { r.User = "root;x" }, "user"},
		{"port 0", func(r *InstallAgentRequest) { r.SSHPort = 0 }, "sshPort"},
		{"port too big", func(r *InstallAgentRequest) { r.SSHPort = 65536 }, "sshPort"},
		{"no key", func(r *InstallAgentRequest) { r.SSHKey = "" }, "sshKey"},
		{"garbage key", func(r *InstallAgentRequest) {
			r.SSHKey = "-----BEGIN RSA PRIVATE KEY-----\nSECRETSTUFF\n-----END RSA PRIVATE KEY-----"
		}, "sshKey"},
		{"encrypted key without passphrase", func(r *InstallAgentRequest) { r.SSHKey = enc }, "passphrase"},
		{"encrypted key wrong passphrase", func(r *InstallAgentRequest) { r.SSHKey, r.Passphrase = enc, "nope" }, "passphrase"},
		{"no url", func(r *InstallAgentRequest) { r.PackageURL = "" }, "packageUrl"},
		{"ftp url", func(r *InstallAgentRequest) { r.PackageURL = "ftp://x/y" }, "packageUrl"},
		{"password in the sealed form", func(r *InstallAgentRequest) { r.PackageURL = "http://u:dmsealed.AAAA@x/y.tgz" }, `begins with "dmsealed."`},
		{"relative dir", func(r *InstallAgentRequest) { r.InstallDir = "opt/doris" }, "installDir"},
		{"unclean dir", func(r *InstallAgentRequest) { r.InstallDir = "/opt/../doris" }, "installDir"},
		{"trailing slash", func(r *InstallAgentRequest) { r.InstallDir = "/opt/doris/" }, "installDir"},
		{"root dir", func(r *InstallAgentRequest) { r.InstallDir = "/" }, "installDir"},
		{"shell in dir", func(r *InstallAgentRequest) { r.InstallDir = "/opt/$(id)" }, "installDir"},
		{"no dir", func(r *InstallAgentRequest) { r.InstallDir = "" }, "installDir"},
		{"fingerprint for unknown host", func(r *InstallAgentRequest) {
			r.HostKeyFingerprints = map[string]string{"other": "SHA256:" + strings.Repeat("A", 43)}
		}, "hostKeyFingerprints"},
		{"bad fingerprint", func(r *InstallAgentRequest) { r.HostKeyFingerprints = map[string]string{"h1": "MD5:xx"} }, "hostKeyFingerprints"},
		{"strict without fingerprints", func(r *InstallAgentRequest) { r.StrictHostKeys = true }, "strictHostKeys: hostKeyFingerprints has no fingerprint for h1"},
		{"strict with one missing", func(r *InstallAgentRequest) {
			r.StrictHostKeys, r.Hosts = true, []string{"h1", "h2"}
			r.HostKeyFingerprints = map[string]string{"h1": "SHA256:" + strings.Repeat("A", 43)}
		}, "no fingerprint for h2:"},
	}
	f := newFixture(t, "")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := agentReq(t, "h1")
			c.mod(&r)
			_, err := f.e.InstallAgent(context.Background(), 1, r)
			wantKind(t, err, KindInvalid)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("message %q does not name %q", err, c.want)
			}
			if strings.Contains(err.Error(), "SECRETSTUFF") || strings.Contains(err.Error(), "BEGIN") {
				t.Fatalf("message echoes the key: %q", err)
			}
			if f.count(&store.Process{}) != 0 || f.count(&store.Task{}) != 0 || f.count(&store.Cluster{}) != 0 {
				t.Fatal("a refused request wrote something")
			}
		})
	}
	// Valid variants are accepted: IPv4, IPv6, encrypted key with passphrase.
	r := agentReq(t, "10.0.0.1", "::1", "node-1.example.com")
	r.SSHKey, r.Passphrase = enc, "pw"
	r.HostKeyFingerprints = map[string]string{"10.0.0.1": "SHA256:" + strings.Repeat("a", 43)}
	if _, err := f.e.InstallAgent(context.Background(), 1, r); err != nil {
		t.Fatal(err)
	}
	// Strict, with every host's fingerprint: accepted, and the tasks get
	// the strict mode with the fingerprints (sealed).
	f = newFixture(t, "")
	r = agentReq(t, "h1", "h2")
	r.StrictHostKeys = true
	r.HostKeyFingerprints = map[string]string{"h1": "SHA256:" + strings.Repeat("a", 43), "h2": "SHA256:" + strings.Repeat("b", 43)}
	pid, err := f.e.InstallAgent(context.Background(), 1, r)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.st.GetProcess(context.Background(), pid)
	var creds Credentials
	if json.Unmarshal(p.Credentials[len("sealed:"):], &creds) != nil || !creds.StrictHostKeys || len(creds.HostKeyFingerprints) != 2 {
		t.Fatalf("sealed credentials of a strict installAgent: %q", p.Credentials)
	}
}

// walk drives a process through every step with all tasks succeeding.
func TestWizardHappyPath(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid, err := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2", "h3"))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := f.st.GetCluster(ctx, 1); err != nil || c.Name != "cluster-1" {
			t.Fatalf("cluster not created: %+v %v", c, err)
		}
		p, _ := f.st.GetProcess(ctx, pid)
		var creds Credentials
		if !strings.HasPrefix(string(p.Credentials), "sealed:") || json.Unmarshal(p.Credentials[7:], &creds) != nil || creds.User != "root" {
			t.Fatalf("credentials not sealed as expected: %q", p.Credentials)
		}
		v, _ := f.e.Current(ctx, 1)
		if v == nil || v.ID != pid || v.ProcessStep != 0 || v.ProcessType != "INSTALL_AGENT" {
			t.Fatalf("current: %+v", v)
		}
		if n := len(f.tasks(pid, 0)); n != 3 {
			t.Fatalf("want 3 INSTALL_AGENT tasks, got %d", n)
		}
		f.finishStep(pid, 0, store.StatusSuccess)
		if v, _ := f.e.Current(ctx, 1); v.ProcessStep != 1 {
			t.Fatalf("processStep after step 0 done: %d", v.ProcessStep)
		}

		err = f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{
			{Host: "h1", Role: "FE"}, {Host: "h2", Role: "fe", FENodeType: "follower", Master: true},
			{Host: "h3", Role: "FE", FENodeType: "OBSERVER"},
			{Host: "h1", Role: "BE"}, {Host: "h2", Role: "BE"}, {Host: "h3", Role: "BROKER"},
		}, PackageSha256: strings.Repeat("ab", 32)})
		if err != nil {
			t.Fatal(err)
		}
		roles, _ := f.st.ListRoles(ctx, 1)
		if len(roles) != 6 {
			t.Fatalf("roles: %+v", roles)
		}
		for _, r := range roles {
			if r.Master != (r.Role == "FE" && r.Host == "h2") {
				t.Fatalf("master flag wrong: %+v", r)
			}
			if r.Role == "BROKER" && r.InstallDir != "/opt/doris/apache_hdfs_broker" || r.Role == "FE" && r.InstallDir != "/opt/doris/fe" {
				t.Fatalf("install dir: %+v", r)
			}
		}
		st1 := f.tasks(pid, 1)
		if len(st1) != 6 || st1[0].TaskType != "INSTALL_FE" || st1[0].TaskRole != "FE" {
			t.Fatalf("step 1 tasks: %+v", st1)
		}
		in := inputOf(t, st1[0])
		if in.PackageURL != packageURL() || in.Labels[LabelFENodeType] != FEFollower || isMaster(in) {
			t.Fatalf("INSTALL_FE input on h1: %+v", in)
		}
		if in := inputOf(t, st1[1]); in.Host != "h2" || !isMaster(in) || in.PackageSHA256 != strings.Repeat("ab", 32) {
			t.Fatalf("INSTALL_FE input on h2: %+v", in)
		}
		if in := inputOf(t, st1[3]); in.Role != RoleBE || in.Labels != nil {
			t.Fatalf("INSTALL_BE input: %+v", in)
		}
		f.finishStep(pid, 1, store.StatusSuccess)

		err = f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
			{Hosts: []string{"h1", "h2", "h3"}, Role: "FE", Conf: "http_port = 8030"},
			{Hosts: []string{"h1", "h2"}, Role: "BE", Conf: "be_port = 9060"},
			{Hosts: []string{"h3"}, Role: "BROKER", Conf: "broker_ipc_port = 8000"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range f.tasks(pid, 2) {
			if in := inputOf(t, tk); !strings.HasPrefix(tk.TaskType, "DEPLOY_") || in.Conf == "" || in.PackageURL != "" {
				t.Fatalf("deploy task %+v", tk)
			}
		}
		f.finishStep(pid, 2, store.StatusSuccess)

		err = f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{
			{"h1", "FE"}, {"h3", "FE"}, {"h2", "FE"}, {"h1", "BE"}, {"h2", "BE"}, {"h3", "BROKER"}}})
		if err != nil {
			t.Fatal(err)
		}
		seqs := map[string]int{}
		for _, tk := range f.tasks(pid, 3) {
			seqs[tk.TaskType+"@"+tk.Host] = tk.Seq
			if inputOf(t, tk).Conf != "" {
				t.Fatal("START task carries the conf")
			}
		}
		want := map[string]int{"START_FE@h2": 0, "START_BE@h1": 0, "START_BE@h2": 0, "START_BROKER@h3": 0,
			"START_FE@h1": 1, "START_FE@h3": 2}
		if !equalMap(seqs, want) {
			t.Fatalf("START seqs %v, want %v", seqs, want)
		}
		f.finishStep(pid, 3, store.StatusSuccess)

		err = f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1", "h2", "h3"}, BEHosts: []string{"h1", "h2"}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = map[string]int{}
		for _, tk := range f.tasks(pid, 4) {
			seqs[tk.TaskType+"@"+tk.Host] = tk.Seq
			if tk.TaskType == TaskSecureCluster {
				if in, err := task.ClusterOf(tk); err != nil || in.ClusterID != 1 || tk.TaskRole != "" {
					t.Fatalf("SECURE_CLUSTER task: %+v %v", tk, err)
				}
				continue
			}
			if tk.TaskRole != "" || inputOf(t, tk).Role == "" {
				t.Fatalf("BUILD_CLUSTER task role: %+v", tk)
			}
		}
		// The admin password is set last, once every node joined.
		want = map[string]int{"ADD_FE@h2": 0, "ADD_FE@h1": 1, "ADD_FE@h3": 2, "ADD_BACKEND@h1": 3, "ADD_BACKEND@h2": 3, "ADD_BROKER@h3": 3,
			"SECURE_CLUSTER@": 4}
		if !equalMap(seqs, want) {
			t.Fatalf("BUILD seqs %v, want %v", seqs, want)
		}
		f.finishStep(pid, 4, store.StatusSuccess)
		if v, _ := f.e.Current(ctx, 1); v.ProcessStep != 5 {
			t.Fatalf("processStep at the end: %d", v.ProcessStep)
		}
		if err := f.e.Complete(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		p, _ = f.st.GetProcess(ctx, pid)
		if !p.Finish || p.Status != store.ProcessSuccess || len(p.Credentials) != 0 {
			t.Fatalf("completed process: %+v", p)
		}
		if v, _ := f.e.Current(ctx, 1); v != nil {
			t.Fatal("a completed process is still current")
		}
		// Read-only now.
		wantKind(t, f.e.Complete(ctx, 1, pid), KindConflict)
		wantKind(t, f.e.Back(ctx, 1, pid), KindConflict)
		wantKind(t, f.e.Retry(ctx, 1, f.tasks(pid, 4)[0].ID), KindConflict)
		// A new process on the same cluster is allowed now.
		if _, err := f.e.InstallAgent(ctx, 1, agentReq(t, "h1")); err != nil {
			t.Fatal(err)
		}
	})
}

func inputOf(t *testing.T, tk store.Task) task.Role {
	t.Helper()
	in, err := task.RoleOf(tk)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func equalMap(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestStepOrderAndOwnership(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid, err := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
	if err != nil {
		t.Fatal(err)
	}
	fe := []InstallInfo{{Host: "h1", Role: "FE"}}
	cases := []struct {
		name string
		call func() error
		kind Kind
	}{
		{"install before agents done", func() error {
			return f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: fe})
		}, KindConflict},
		{"deploy at step 0", func() error {
			return f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1"}, Role: "FE", Conf: "x"}}})
		}, KindConflict},
		{"start at step 0", func() error {
			return f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "FE"}}})
		}, KindConflict},
		{"build at step 0", func() error {
			return f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1"}})
		}, KindConflict},
		{"unknown process", func() error {
			return f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: 99, InstallInfos: fe})
		}, KindNotFound},
		{"missing process id", func() error { return f.e.InstallService(ctx, 1, InstallServiceRequest{InstallInfos: fe}) }, KindInvalid},
		{"other user's process", func() error {
			return f.e.InstallService(ctx, 2, InstallServiceRequest{ProcessID: pid, InstallInfos: fe})
		}, KindForbidden},
		{"back from step 0", func() error { return f.e.Back(ctx, 1, pid) }, KindConflict},
		{"second process of user", func() error {
			r := agentReq(t, "h9")
			r.ClusterID = 2
			_, err := f.e.InstallAgent(ctx, 1, r)
			return err
		}, KindConflict},
		{"second process of cluster", func() error { _, err := f.e.InstallAgent(ctx, 2, agentReq(t, "h9")); return err }, KindConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.count(&store.Task{})
			wantKind(t, c.call(), c.kind)
			if f.count(&store.Task{}) != before || f.count(&store.Process{}) != 1 {
				t.Fatal("a refused call wrote something")
			}
		})
	}
}

func TestInstallServiceValidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2", "h3"))
	f.finishStep(pid, 0, store.StatusSuccess)
	h3 := f.tasks(pid, 0)[2]
	f.st.DB().Model(&store.Task{}).Where("id = ?", h3.ID).Updates(map[string]any{"status": store.StatusFailure, "skip": true})
	cases := []struct {
		name   string
		infos  []InstallInfo
		sha    string
		want   string
		params map[string]string
	}{
		{"empty", nil, "", "installInfos", nil},
		{"bad role", []InstallInfo{{Host: "h1", Role: "CN"}}, "", "installInfos[0].role", nil},
		{"no role", []InstallInfo{{Host: "h1"}}, "", "installInfos[0].role", nil},
		{"bad node type", []InstallInfo{{Host: "h1", Role: "FE", FENodeType: "LEADER"}}, "", "feNodeType", nil},
		{"bad host", []InstallInfo{{Host: "h1|x", Role: "FE"}}, "", "installInfos[0].host", nil},
		{"host without agent", []InstallInfo{{Host: "h9", Role: "FE"}}, "", "h9", nil},
		{"host with skipped agent", []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h3", Role: "BE"}}, "", "skipped", nil},
		{"twice", []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h1", Role: "FE"}}, "", "twice", nil},
		{"no follower", []InstallInfo{{Host: "h1", Role: "FE", FENodeType: "OBSERVER"}, {Host: "h2", Role: "BE"}}, "", "FOLLOWER", nil},
		{"observer master", []InstallInfo{{Host: "h1", Role: "FE", FENodeType: "OBSERVER", Master: true}}, "", "master", nil},
		{"two masters", []InstallInfo{{Host: "h1", Role: "FE", Master: true}, {Host: "h2", Role: "FE", Master: true}}, "", "master", nil},
		{"be master", []InstallInfo{{Host: "h1", Role: "BE", Master: true}}, "", "master", nil},
		{"bad sha", []InstallInfo{{Host: "h1", Role: "FE"}}, "xyz", "packageSha256", nil},
		{"bad param key", []InstallInfo{{Host: "h1", Role: "FE"}}, "", "params", map[string]string{"a b": "1"}},
		{"param with newline", []InstallInfo{{Host: "h1", Role: "FE"}}, "", "params.javaHome", map[string]string{"javaHome": "/x\nrm -rf /"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: c.infos, PackageSha256: c.sha, Params: c.params})
			wantKind(t, err, KindInvalid)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("message %q does not name %q", err, c.want)
			}
			if f.count(&store.AgentRole{}) != 0 || len(f.tasks(pid, 1)) != 0 {
				t.Fatal("a refused request wrote something")
			}
			if p, _ := f.st.GetProcess(ctx, pid); p.Step != 0 {
				t.Fatal("step moved")
			}
		})
	}
}

// toStep drives a fresh process with FE on h1, h2 and BE on h1, h2 to step
// `to` with every task SUCCESS except those of step `to`.
func toStep(t *testing.T, f *fixture, to int) int64 {
	ctx := context.Background()
	pid, err := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			return f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{
				{Host: "h1", Role: "FE"}, {Host: "h2", Role: "FE"}, {Host: "h1", Role: "BE"}, {Host: "h2", Role: "BE"}}})
		},
		func() error {
			return f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
				{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a=1"}, {Hosts: []string{"h1", "h2"}, Role: "BE", Conf: "b=1"}}})
		},
		func() error {
			return f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{
				{"h1", "FE"}, {"h2", "FE"}, {"h1", "BE"}, {"h2", "BE"}}})
		},
		func() error {
			return f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1", "h2"}, BEHosts: []string{"h1", "h2"}})
		},
	}
	for s := 1; s <= to; s++ {
		f.finishStep(pid, s-1, store.StatusSuccess)
		if err := steps[s-1](); err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
	}
	return pid
}

func TestDeployConfigValidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid := toStep(t, f, 1)
	f.finishStep(pid, 1, store.StatusSuccess)
	big := strings.Repeat("x", MaxConf+1)
	ok := DeployConfig{Hosts: []string{"h1", "h2"}, Role: "BE", Conf: "b=1"}
	cases := []struct {
		name string
		dcs  []DeployConfig
		want string
	}{
		{"empty", nil, "deployConfigs"},
		{"no hosts", []DeployConfig{{Role: "FE", Conf: "a"}, ok}, "deployConfigs[0].hosts"},
		{"bad role", []DeployConfig{{Hosts: []string{"h1"}, Role: "XX", Conf: "a"}}, "deployConfigs[0].role"},
		{"no conf", []DeployConfig{{Hosts: []string{"h1", "h2"}, Role: "FE"}, ok}, "conf"},
		{"conf too big", []DeployConfig{{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: big}, ok}, "256 KiB"},
		{"not installed", []DeployConfig{{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a"}, ok, {Hosts: []string{"h1"}, Role: "BROKER", Conf: "c"}}, "BROKER was not installed on h1"},
		{"missing one", []DeployConfig{{Hosts: []string{"h1"}, Role: "FE", Conf: "a"}, ok}, "FE on h2"},
		{"twice", []DeployConfig{{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a"}, {Hosts: []string{"h1"}, Role: "FE", Conf: "a"}, ok}, "twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: c.dcs})
			wantKind(t, err, KindInvalid)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("message %q does not name %q", err, c.want)
			}
			if len(f.tasks(pid, 2)) != 0 {
				t.Fatal("a refused request wrote tasks")
			}
		})
	}
}

func TestStartAndBuildValidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid := toStep(t, f, 2)
	f.finishStep(pid, 2, store.StatusSuccess)
	wantKind(t, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "BROKER"}}}), KindInvalid)
	wantKind(t, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "FE"}, {"h1", "fe"}}}), KindInvalid)
	err := f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h2", "FE"}}})
	wantKind(t, err, KindInvalid) // the master (h1) must start too
	if !strings.Contains(err.Error(), "h1") {
		t.Fatalf("message does not name the master: %v", err)
	}
	if len(f.tasks(pid, 3)) != 0 {
		t.Fatal("refused start wrote tasks")
	}
	if err := f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "FE"}, {"h1", "BE"}}}); err != nil {
		t.Fatal(err)
	}
	f.finishStep(pid, 3, store.StatusSuccess)
	for name, r := range map[string]BuildClusterRequest{
		"no fe":          {ProcessID: pid},
		"fe not started": {ProcessID: pid, FEHosts: []string{"h2"}},
		"be not started": {ProcessID: pid, FEHosts: []string{"h1"}, BEHosts: []string{"h2"}},
		"bad host":       {ProcessID: pid, FEHosts: []string{"h1", "$x"}},
	} {
		wantKind(t, f.e.BuildCluster(ctx, 1, r), KindInvalid)
		if len(f.tasks(pid, 4)) != 0 {
			t.Fatalf("%s: refused build wrote tasks", name)
		}
	}
}

func TestRetryAndSkip(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
		ts := f.tasks(pid, 0)
		a, b := ts[0], ts[1]
		// Only FAILURE tasks can be retried or skipped.
		for _, st := range []string{store.StatusSubmitted, store.StatusRunning, store.StatusSuccess} {
			f.setStatus(a.ID, st)
			wantKind(t, f.e.Retry(ctx, 1, a.ID), KindConflict)
			wantKind(t, f.e.Skip(ctx, 1, a.ID), KindConflict)
		}
		wantKind(t, f.e.Retry(ctx, 1, 999), KindNotFound)
		f.setStatus(a.ID, store.StatusFailure)
		wantKind(t, f.e.Retry(ctx, 2, a.ID), KindForbidden)
		f.notes = 0
		if err := f.e.Retry(ctx, 1, a.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := f.st.GetTask(ctx, a.ID)
		if got.Status != store.StatusSubmitted || got.Attempt != 1 || got.Input != a.Input || got.Finish {
			t.Fatalf("retried task: %+v", got)
		}
		if f.notes != 1 {
			t.Fatalf("retry must notify the runner once, got %d", f.notes)
		}
		// Skip b after it failed; a succeeds; the step is done and b's host is
		// left out of the next step.
		f.setStatus(b.ID, store.StatusFailure)
		if err := f.e.Skip(ctx, 1, b.ID); err != nil {
			t.Fatal(err)
		}
		wantKind(t, f.e.Skip(ctx, 1, b.ID), KindConflict)
		if ct, _ := f.e.CurrentTasks(ctx, pid); len(ct) != 2 || ct[0].ID != a.ID || ct[0].Skip || ct[1].ID != b.ID || !ct[1].Skip {
			t.Fatalf("currentTasks must list the skipped task, marked: %+v", ct)
		}
		wantKind(t, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}), KindConflict)
		f.setStatus(a.ID, store.StatusSuccess)
		err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h2", Role: "BE"}}})
		if err == nil || !strings.Contains(err.Error(), "skipped") {
			t.Fatalf("a skipped agent host must be refused: %v", err)
		}
		if err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h1", Role: "BE"}}}); err != nil {
			t.Fatal(err)
		}
		// A task of an earlier step can no longer be retried.
		f.setStatus(a.ID, store.StatusFailure)
		wantKind(t, f.e.Retry(ctx, 1, a.ID), KindConflict)
		// Skipped installs are left out of DEPLOY_CONFIG.
		ts = f.tasks(pid, 1)
		f.finishStep(pid, 1, store.StatusSuccess)
		f.setStatus(ts[1].ID, store.StatusFailure)
		if err := f.e.Skip(ctx, 1, ts[1].ID); err != nil {
			t.Fatal(err)
		}
		err = f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
			{Hosts: []string{"h1"}, Role: "FE", Conf: "a"}, {Hosts: []string{"h1"}, Role: "BE", Conf: "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		if d := f.tasks(pid, 2); len(d) != 1 || d[0].TaskRole != ts[0].TaskRole {
			t.Fatalf("deploy tasks after skip: %+v", d)
		}
	})
}

func TestReinstallAgentReplacesCredentialsAndResubmits(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
	ts := f.tasks(pid, 0)
	f.setStatus(ts[0].ID, store.StatusSuccess)
	f.setStatus(ts[1].ID, store.StatusFailure)
	r := agentReq(t, "h2", "h3")
	r.ProcessID, r.User, r.SSHPort = pid, "deploy", 2222
	wrong := r
	wrong.ClusterID = 7
	wantKind(t, func() error { _, err := f.e.InstallAgent(ctx, 1, wrong); return err }(), KindInvalid)
	if _, err := f.e.InstallAgent(ctx, 1, r); err != nil {
		t.Fatal(err)
	}
	p, _ := f.st.GetProcess(ctx, pid)
	if !strings.Contains(string(p.Credentials), `"user":"deploy"`) {
		t.Fatalf("credentials not replaced: %s", p.Credentials)
	}
	ts = f.tasks(pid, 0)
	if len(ts) != 3 {
		t.Fatalf("want a new task for h3, got %d tasks", len(ts))
	}
	byHost := map[string]store.Task{}
	for _, tk := range ts {
		byHost[tk.Host] = tk
	}
	if byHost["h1"].Status != store.StatusSuccess || byHost["h2"].Status != store.StatusSubmitted || byHost["h2"].Attempt != 1 {
		t.Fatalf("tasks after re-run: %+v", byHost)
	}
	if in, err := task.AgentOf(byHost["h2"]); err != nil || in.User != "deploy" || in.SSHPort != 2222 || in.Host != "h2" {
		t.Fatalf("re-submitted input: %v", in)
	}
	// Not possible once the process moved on.
	f.finishStep(pid, 0, store.StatusSuccess)
	if err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := f.e.InstallAgent(ctx, 1, r)
	wantKind(t, err, KindConflict)
}

func TestBack(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid := toStep(t, f, 3)
		ts := f.tasks(pid, 3)
		// master FE + BEs Seq 0 started; FE h2 (Seq 1) failed... one task still running.
		f.setStatus(ts[0].ID, store.StatusSuccess)
		f.setStatus(ts[1].ID, store.StatusRunning)
		wantKind(t, f.e.Back(ctx, 1, pid), KindConflict)
		if f.stopper.calls != nil {
			t.Fatal("stopper called while a task runs")
		}
		f.setStatus(ts[1].ID, store.StatusFailure)
		// A stopper failure keeps the process at START_SERVICE.
		f.stopper.err = errors.New("agent unreachable")
		err := f.e.Back(ctx, 1, pid)
		if err == nil || !strings.Contains(err.Error(), "agent unreachable") {
			t.Fatalf("back with failing stopper: %v", err)
		}
		if p, _ := f.st.GetProcess(ctx, pid); p.Step != StepStartService {
			t.Fatal("step moved although stopping failed")
		}
		f.stopper.err = nil
		if err := f.e.Back(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		last := f.stopper.calls[len(f.stopper.calls)-1]
		if len(last) != 4 {
			t.Fatalf("stopper got %d tasks, want all 4 that ran or were canceled", len(last))
		}
		p, _ := f.st.GetProcess(ctx, pid)
		if p.Step != StepDeployConfig || p.ProcessType != "DEPLOY_CONFIG" || len(f.tasks(pid, 3)) != 0 {
			t.Fatalf("after back: %+v, %d tasks", p, len(f.tasks(pid, 3)))
		}
		// The step can be sent again.
		err = f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "FE"}}})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentSameStepOneWins(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1"))
		f.finishStep(pid, 0, store.StatusSuccess)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}})
			}(i)
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else {
				wantKind(t, err, KindConflict)
				// Whichever way it lost, the loser learns where the process is now.
				if !strings.Contains(err.Error(), "INSTALL_SERVICE") {
					t.Errorf("the conflict does not name the state: %v", err)
				}
			}
		}
		if wins != 1 || len(f.tasks(pid, 1)) != 1 {
			t.Fatalf("wins %d, tasks %d: want exactly one", wins, len(f.tasks(pid, 1)))
		}
	})
}

func TestConcurrentInstallAgentOneProcess(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = f.e.InstallAgent(context.Background(), int64(i+1), agentReq(t, "h1"))
			}(i)
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else {
				wantKind(t, err, KindConflict)
			}
		}
		if wins != 1 || f.count(&store.Process{}) != 1 {
			t.Fatalf("want one process for cluster 1, got wins %d", wins)
		}
	})
}

func TestCompleteCancelsWaitingTasksAndRefusesWhileRunning(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
	ts := f.tasks(pid, 0)
	f.setStatus(ts[0].ID, store.StatusRunning)
	wantKind(t, f.e.Complete(ctx, 1, pid), KindConflict)
	wantKind(t, f.e.Complete(ctx, 2, pid), KindForbidden)
	f.setStatus(ts[0].ID, store.StatusFailure)
	if err := f.e.Complete(ctx, 1, pid); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.st.GetTask(ctx, ts[1].ID); got.Status != store.StatusFailure || !strings.Contains(got.Response, "canceled") {
		t.Fatalf("waiting task after complete: %+v", got)
	}
	// Completed before the cluster was built: not a success.
	if p, _ := f.st.GetProcess(ctx, pid); !p.Finish || p.Status != StatusCanceled {
		t.Fatalf("process completed early: finish %v status %s, want CANCELED", p.Finish, p.Status)
	}
}

// DEPLOY_CONFIG can be sent again with fixed confs after back or after a
// failed deploy: its tasks are replaced, never while one waits or runs.
func TestDeployConfigAgain(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid := toStep(t, f, 2)
		fixed := DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
			{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a=2"}, {Hosts: []string{"h1", "h2"}, Role: "BE", Conf: "b=2"}}}
		// Still waiting to run: refused.
		wantKind(t, f.e.DeployConfig(ctx, 1, fixed), KindConflict)
		ts := f.tasks(pid, 2)
		f.setStatus(ts[0].ID, store.StatusSuccess)
		f.setStatus(ts[1].ID, store.StatusFailure)
		f.setStatus(ts[2].ID, store.StatusSuccess)
		f.setStatus(ts[3].ID, store.StatusRunning)
		wantKind(t, f.e.DeployConfig(ctx, 1, fixed), KindConflict)
		f.setStatus(ts[3].ID, store.StatusSuccess)
		// A failed deploy: send the step again with the fixed confs.
		if err := f.e.DeployConfig(ctx, 1, fixed); err != nil {
			t.Fatal(err)
		}
		again := f.tasks(pid, 2)
		if len(again) != 4 {
			t.Fatalf("%d DEPLOY_CONFIG tasks after sending it again, want 4", len(again))
		}
		old := map[int64]bool{}
		for _, tk := range ts {
			old[tk.ID] = true
		}
		for _, tk := range again {
			c := inputOf(t, tk).Conf
			if old[tk.ID] || tk.Status != store.StatusSubmitted || (c != "a=2" && c != "b=2") {
				t.Fatalf("task after sending DEPLOY_CONFIG again: %+v (conf %v)", tk, c)
			}
		}
		// After back from START_SERVICE too.
		f.finishStep(pid, 2, store.StatusSuccess)
		if err := f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "FE"}}}); err != nil {
			t.Fatal(err)
		}
		wantKind(t, f.e.DeployConfig(ctx, 1, fixed), KindConflict) // at START_SERVICE: back first
		f.finishStep(pid, 3, store.StatusFailure)
		if err := f.e.Back(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		if err := f.e.DeployConfig(ctx, 1, fixed); err != nil {
			t.Fatalf("deployConfig after back: %v", err)
		}
		if p, _ := f.st.GetProcess(ctx, pid); p.Step != StepDeployConfig || len(f.tasks(pid, 2)) != 4 {
			t.Fatalf("after deployConfig again: step %d, %d tasks", p.Step, len(f.tasks(pid, 2)))
		}
	})
}

func TestStepEnded(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		w := f.start(t, "h1", "h2")
		w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h2", Role: "BE"}}}))
		w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1"}, Role: "FE", Conf: "a=1"}, {Hosts: []string{"h2"}, Role: "BE", Conf: "b=1"}}}))
		w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h1", "FE"}, {"h2", "BE"}}}))
		if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{"h1"}, BEHosts: []string{"h2"}}); err != nil {
			t.Fatal(err)
		}
		ts := f.tasks(w.pid, StepBuildCluster)
		if len(ts) < 2 {
			t.Fatalf("BUILD_CLUSTER tasks %v", types(ts))
		}
		ended := func(id int64) (int64, int, bool) {
			t.Helper()
			c, s, ok, err := StepEnded(ctx, f.st, id)
			if err != nil {
				t.Fatal(err)
			}
			return c, s, ok
		}
		// Each task but the last: the step has work left.
		for i, tk := range ts[:len(ts)-1] {
			if i == 0 {
				f.setStatus(tk.ID, store.StatusSuccess)
			} else if err := f.st.DB().Model(&store.Task{}).Where("id = ?", tk.ID).Update("skip", true).Error; err != nil {
				t.Fatal(err)
			}
			if _, _, ok := ended(tk.ID); ok {
				t.Fatalf("task %d %s ended the step with %s still to run", tk.ID, tk.TaskType, ts[len(ts)-1].TaskType)
			}
		}
		// A failed last task does not end it either.
		last := ts[len(ts)-1]
		f.setStatus(last.ID, store.StatusFailure)
		if _, _, ok := ended(last.ID); ok {
			t.Fatal("a failed task ended the step")
		}
		f.setStatus(last.ID, store.StatusSuccess)
		if c, s, ok := ended(last.ID); !ok || c != 1 || s != StepBuildCluster {
			t.Fatalf("the last task: cluster %d step %d ended %v, want cluster 1 step %d", c, s, ok, StepBuildCluster)
		}

		// An operation's task is not the wizard's business.
		op := store.Process{ClusterID: 1, UserID: 1, Kind: store.KindOperation, ProcessType: "RESTART", Status: StatusRunning}
		if err := f.st.DB().Create(&op).Error; err != nil {
			t.Fatal(err)
		}
		ot := store.Task{ProcessID: op.ID, TaskType: "RESTART_NODE", Status: store.StatusSuccess}
		if err := f.st.DB().Create(&ot).Error; err != nil {
			t.Fatal(err)
		}
		if _, _, ok := ended(ot.ID); ok {
			t.Fatal("an operation's task ended a wizard step")
		}
		if _, _, _, err := StepEnded(ctx, f.st, 1<<40); err == nil {
			t.Fatal("no error for a task that does not exist")
		}
	})
}
