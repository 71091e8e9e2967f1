package server

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/core/agentclient"
	"github.com/dorismanager/dorismanager/core/roleexec"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
	"github.com/dorismanager/dorismanager/sdk"
)

// capturePlugin records the requests of Precheck and Install (the only
// methods an INSTALL task calls).
type capturePlugin struct {
	sdk.Remote
	mu  sync.Mutex
	got []sdk.Request
}

func (c *capturePlugin) Precheck(_ context.Context, _ sdk.Host, r sdk.Request) (sdk.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, r)
	return sdk.Result{}, nil
}

func (c *capturePlugin) Install(ctx context.Context, h sdk.Host, r sdk.Request) (sdk.Result, error) {
	return c.Precheck(ctx, h, r)
}

func (c *capturePlugin) Role(context.Context, int64, string, io.Writer) (sdk.Remote, error) {
	return c, nil
}

// unusedAgents hands out a client nothing listens for: the plugin above
// never uses the host.
type unusedAgents struct{}

func (unusedAgents) Client(context.Context, int64, string) (*agentclient.Client, error) {
	return agentclient.New("http://127.0.0.1:1"), nil
}

// Package URL passwords that an earlier version stored in plain text (in
// a process and in its tasks' input) are sealed when the manager starts,
// once; the task then runs with the URL and its password.
func TestStartSealsPlainPackageURLPasswords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const plain, upgrade = "https://u:s3cret@mirror.example/doris-2.1.tar.gz", "https://u:s3cret-up@mirror.example/doris-2.2.tar.gz"
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCluster(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertRole(ctx, &store.AgentRole{ClusterID: c.ID, Host: "h1", Role: "FE", FENodeType: "FOLLOWER", Master: true,
		InstallDir: "/opt/doris/fe"}); err != nil {
		t.Fatal(err)
	}
	wizard := store.Process{ClusterID: c.ID, UserID: 1, ProcessType: "INSTALL_SERVICE", Step: 1, Status: store.ProcessRunning, PackageURL: plain}
	if err := st.CreateProcess(ctx, &wizard); err != nil {
		t.Fatal(err)
	}
	op := store.Process{ClusterID: c.ID, UserID: 1, Kind: store.KindOperation, ProcessType: "UPGRADE", Status: store.ProcessRunning, PackageURL: upgrade}
	if err := st.CreateProcess(ctx, &op); err != nil {
		t.Fatal(err)
	}
	// FAILURE: the runner leaves them alone while the manager runs.
	install := task.Encode(task.Role{ClusterID: c.ID, Host: "h1", Role: "FE", PackageURL: plain, PackageSHA256: strings.Repeat("ab", 32),
		Params: map[string]string{"javaHome": "/opt/jdk"}})
	if err := st.CreateTasks(ctx, []store.Task{
		{ProcessID: wizard.ID, Step: 1, Host: "h1", TaskType: "INSTALL_FE", TaskRole: "FE", Status: store.StatusFailure, Input: install},
		{ProcessID: op.ID, Host: "h1", TaskType: "UPGRADE_NODE", TaskRole: "FE", Status: store.StatusFailure,
			Input: `{"clusterId":1,"host":"h1","role":"FE","order":0,"packageUrl":"` + upgrade + `"}`},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	_, _, stop := startServer(t, Config{DataDir: dir})
	stop()
	st, err = store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	var ps []store.Process
	var ts []store.Task
	if err := st.DB().Order("id").Find(&ps).Error; err != nil {
		t.Fatal(err)
	}
	if err := st.DB().Order("id").Find(&ts).Error; err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || len(ts) != 2 {
		t.Fatalf("%d processes, %d tasks", len(ps), len(ts))
	}
	for _, p := range ps {
		if strings.Contains(p.PackageURL, "s3cret") || !secret.IsSealedURL(p.PackageURL) {
			t.Errorf("process %d: package URL %q", p.ID, p.PackageURL)
		}
	}
	for _, tk := range ts {
		if strings.Contains(tk.Input, "s3cret") || !strings.Contains(tk.Input, `"packageUrl":"https://u:`+secret.SealedPrefix) {
			t.Errorf("task %d: input %s", tk.ID, tk.Input)
		}
	}
	in, err := task.RoleOf(ts[0])
	if err != nil || in.Params["javaHome"] != "/opt/jdk" || in.PackageSHA256 != strings.Repeat("ab", 32) {
		t.Fatalf("the other fields of the input: %+v %v", in, err)
	}

	// The INSTALL task runs with the URL and its password.
	box, err := secret.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	plugin := &capturePlugin{}
	x := roleexec.New(roleexec.Config{Store: st, Roles: plugin, Agents: unusedAgents{}, Secrets: box})
	defer x.Close()
	a, ok := x.Resolve("INSTALL_FE")
	if !ok {
		t.Fatal("no INSTALL_FE action")
	}
	if _, err := a.Run(ctx, runner.Job{Task: ts[0], Log: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if len(plugin.got) != 2 || plugin.got[1].PackageURL != plain {
		t.Fatalf("the plugin got %+v, want %q", plugin.got, plain)
	}
	if u, err := secret.OpenURLPassword(box, ps[1].PackageURL); err != nil || u != upgrade {
		t.Fatalf("the upgrade's URL opens to %q %v", u, err)
	}

	// A second start finds nothing to seal and leaves the rows as they are.
	st.Close()
	_, _, stop = startServer(t, Config{DataDir: dir})
	stop()
	st, err = store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ps2 []store.Process
	var ts2 []store.Task
	st.DB().Order("id").Find(&ps2)
	st.DB().Order("id").Find(&ts2)
	for i := range ps {
		if ps2[i].PackageURL != ps[i].PackageURL || ts2[i].Input != ts[i].Input {
			t.Errorf("row %d changed at the second start", i)
		}
	}
}
