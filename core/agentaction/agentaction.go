// Package agentaction is the INSTALL_AGENT task: it unseals the process's
// SSH credentials and hands them to core/sshboot for one host.
package agentaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/runner"
	"github.com/dorismanager/dorismanager/core/sshboot"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/core/task"
)

// Opener unseals what core/process sealed (core/secret.Box).
type Opener interface {
	Open(sealed []byte) ([]byte, error)
}

// Installer installs an agent on a host (core/sshboot.Installer).
type Installer interface {
	Install(ctx context.Context, t sshboot.Target, cred sshboot.Credentials, log io.Writer) (sshboot.Result, error)
}

// Action runs INSTALL_AGENT tasks.
type Action struct {
	Store     *store.Store
	Secrets   Opener
	Installer Installer
}

// Idempotent: installing an agent again replaces the older one.
func (Action) Idempotent() bool { return true }

// Run installs the agent on the task's host.
func (a Action) Run(ctx context.Context, job runner.Job) (runner.Outcome, error) {
	in, err := task.AgentOf(job.Task)
	if err != nil {
		return runner.Outcome{}, err
	}
	p, err := a.Store.GetProcess(ctx, job.Task.ProcessID)
	if err != nil {
		return runner.Outcome{}, fmt.Errorf("process %d: %w", job.Task.ProcessID, err)
	}
	if len(p.Credentials) == 0 {
		return runner.Outcome{}, errors.New("the SSH credentials of this process are gone (was it completed?): call installAgent again with this processId and the key")
	}
	plain, err := a.Secrets.Open(p.Credentials)
	if err != nil {
		return runner.Outcome{}, fmt.Errorf("unseal SSH credentials (was secret.key replaced?): %w", err)
	}
	var cred process.Credentials
	if err := json.Unmarshal(plain, &cred); err != nil {
		return runner.Outcome{}, fmt.Errorf("SSH credentials of process %d are unreadable: %w", p.ID, err)
	}
	user := in.User
	if user == "" {
		user = cred.User
	}
	res, err := a.Installer.Install(ctx, sshboot.Target{ClusterID: in.ClusterID, Host: in.Host, Port: in.SSHPort,
		User: user, InstallDir: in.InstallDir},
		sshboot.Credentials{PrivateKey: []byte(cred.SSHKey), Passphrase: cred.Passphrase,
			HostKeyFingerprint: cred.HostKeyFingerprints[in.Host], StrictHostKeys: cred.StrictHostKeys}, job.Log)
	if err != nil {
		return runner.Outcome{}, err
	}
	return runner.Outcome{
		Response: fmt.Sprintf("agent %d installed on %s and registered", res.AgentID, in.Host),
		Result:   map[string]string{"agentId": strconv.FormatInt(res.AgentID, 10), "hostKeyFingerprint": res.HostKeyFingerprint},
		LogPath:  res.LogPath,
	}, nil
}
