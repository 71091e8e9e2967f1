package agentaction

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/sshboot"
	"github.com/dorismanager/dorismanager/core/store"
)

type fakeInstaller struct {
	target sshboot.Target
	cred   sshboot.Credentials
}

func (f *fakeInstaller) Install(ctx context.Context, t sshboot.Target, c sshboot.Credentials, log io.Writer) (sshboot.Result, error) {
	f.target, f.cred = t, c
	return sshboot.Result{AgentID: 7, HostKeyFingerprint: "SHA256:abc", LogPath: "/opt/doris/agent/log/agent.out"}, nil
}

func TestRunUnsealsCredentialsForTheHost(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	box, err := secret.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(process.Credentials{User: "root", SSHKey: "PEM", Passphrase: "pw",
		HostKeyFingerprints: map[string]string{"10.0.0.2": "SHA256:pinned"}, StrictHostKeys: true})
	sealed, err := box.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	p := store.Process{ClusterID: 1, UserID: 1, ProcessType: process.StepTypes[process.StepInstallAgent], Status: store.ProcessRunning, Credentials: sealed}
	if err := st.CreateProcess(ctx, &p); err != nil {
		t.Fatal(err)
	}
	inst := &fakeInstaller{}
	a := Action{Store: st, Secrets: box, Installer: inst}
	task := store.Task{ID: 3, ProcessID: p.ID, Input: `{"clusterId":1,"host":"10.0.0.2","sshPort":2222,"user":"ops","installDir":"/opt/doris"}`}
	out, err := a.Run(ctx, runner.Job{Task: task, Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	want := sshboot.Target{ClusterID: 1, Host: "10.0.0.2", Port: 2222, User: "ops", InstallDir: "/opt/doris"}
	if inst.target != want {
		t.Errorf("target %+v, want %+v", inst.target, want)
	}
	if string(inst.cred.PrivateKey) != "PEM" || inst.cred.Passphrase != "pw" || inst.cred.HostKeyFingerprint != "SHA256:pinned" || !inst.cred.StrictHostKeys {
		t.Errorf("credentials not handed over: %+v", inst.cred)
	}
	if out.Result["agentId"] != "7" || out.LogPath == "" || strings.Contains(out.Response, "PEM") {
		t.Errorf("outcome %+v", out)
	}

	// Completed processes have their credentials wiped: the task says what to do.
	if ok, err := st.UpdateProcessIf(ctx, p.ID, p.Version, map[string]any{"credentials": nil}); err != nil || !ok {
		t.Fatalf("wipe credentials: %v %v", ok, err)
	}
	if _, err := a.Run(ctx, runner.Job{Task: task, Log: io.Discard}); err == nil || !strings.Contains(err.Error(), "installAgent again") {
		t.Fatalf("without credentials: %v", err)
	}
}
