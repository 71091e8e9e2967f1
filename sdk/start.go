package sdk

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// StartOptions says how StartPlugin runs a plugin binary.
type StartOptions struct {
	// Cmd runs the binary. The plugin gets only the environment in Cmd.Env.
	Cmd *exec.Cmd
	// Checksum, if set, is the binary's SHA-256, checked before it runs.
	Checksum []byte
	// StartTimeout bounds the start up to the end of the handshake.
	StartTimeout time.Duration
	// Logger receives go-plugin's records and the plugin's hclog records.
	Logger hclog.Logger
	// Stderr receives every line the plugin writes to stderr, log records
	// included; SyncStdout and SyncStderr what its os.Stdout and os.Stderr
	// write after the handshake. Nil discards.
	Stderr, SyncStdout, SyncStderr io.Writer
}

// StartPlugin starts a role plugin binary as the manager does: the
// go-plugin handshake (Handshake, PluginSets(nil)), gRPC only, AutoMTLS,
// and dispenses its role, whose every call goes through gRPC to that
// process. Stop the process with Kill on the returned client. When the
// start fails, the process is killed before StartPlugin returns; Kill
// waits until its stderr is read, so what Stderr received is complete.
// sdktest.StartBinary uses it for tests.
func StartPlugin(o StartOptions) (*plugin.Client, *RoleClient, error) {
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: PluginSets(nil),
		Cmd:              o.Cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     o.StartTimeout,
		Logger:           o.Logger,
		Stderr:           o.Stderr,
		SyncStdout:       o.SyncStdout,
		SyncStderr:       o.SyncStderr,
	}
	if o.Checksum != nil {
		// A fresh hash per client: SecureConfig.Check writes into it.
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: o.Checksum, Hash: sha256.New()}
	}
	pc := plugin.NewClient(cfg)
	fail := func(err error) (*plugin.Client, *RoleClient, error) {
		pc.Kill()
		return nil, nil, err
	}
	rpc, err := pc.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		return fail(err)
	}
	rc, ok := raw.(*RoleClient)
	if !ok {
		return fail(fmt.Errorf("dispensed %T, want *sdk.RoleClient", raw))
	}
	return pc, rc, nil
}
