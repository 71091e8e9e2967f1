// Package sshboot installs the doris-agent on a host over SSH: it checks
// the host key (pinned, or recorded per cluster in the store on first use;
// strict mode wants it pinned),
// uploads the agent built for the host's architecture (uname -m), its config, its key and certificate (issued by the
// manager's CA for this host, revoking any older one) and the CA bundle
// with sftp, starts it (systemd when the host runs it, else a detached
// process) and waits for its registration. The agent's key crosses the
// network only inside the SSH connection.
package sshboot

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/preflight"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/hashicorp/go-hclog"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Failure kinds, wrapped by Install's errors (the messages say what to fix).
var (
	ErrUnreachable    = errors.New("host unreachable")
	ErrAuthRefused    = errors.New("authentication refused")
	ErrHostKeyChanged = errors.New("host key changed")
	ErrHostKeyUnknown = errors.New("host key not given")
	ErrNoSpace        = errors.New("not enough free space")
	ErrNotRegistered  = errors.New("agent did not register")
	ErrBadKey         = errors.New("unusable private key")
	// ErrUnsupportedArch is a host the manager carries no agent for
	// (another architecture or kernel than preflight.AgentArches' Linux).
	ErrUnsupportedArch = preflight.ErrUnsupportedArch
)

// Config configures an Installer.
type Config struct {
	// AgentsDir holds an agent binary per architecture,
	// linux-<arch>/doris-agent (preflight.AgentPath); default:
	// preflight.Dir("agents") (bin/agents, /usr/lib/dorismanager/agents).
	AgentsDir string
	// AdvertiseURL is the https:// URL of the manager's agent endpoint as
	// agents reach it; default https://<the SSH connection's local
	// address>:<AgentEndpointPort>.
	AdvertiseURL      string
	AgentEndpointPort int
	// Managers, if set, returns the agent endpoints of every running
	// manager on the database: the agent's config lists them after this
	// manager's URL, so it can fail over to each.
	Managers        func() []string
	Registry        *agents.Registry
	Store           *store.Store
	Logger          hclog.Logger
	ConnectTimeout  time.Duration // default 10s
	RegisterTimeout time.Duration // default 60s
	MinFreeBytes    int64         // free space needed under the install dir; default 64 MiB
	SlowShellStart  time.Duration // a session slower than this to start its command is reported; default 2s
}

// Installer installs agents; safe for concurrent use (one SSH connection per Install).
type Installer struct {
	cfg Config
	log hclog.Logger

	binMu   sync.Mutex
	binSums map[string]localSum // by architecture: each agent binary's SHA-256, valid while size and mtime match
}

// localSum is the SHA-256 of a local agent binary as of one size+mtime.
type localSum struct {
	size  int64
	mtime time.Time
	sum   string // hex
}

// Target is the host to install on.
type Target struct {
	ClusterID  int64
	Host       string
	Port       int    // SSH port, default 22
	User       string // default root
	InstallDir string // e.g. /opt/doris; the agent goes to <InstallDir>/agent
	AgentPort  int    // default 9602
}

// Credentials authenticate the SSH connection. They are never logged.
type Credentials struct {
	PrivateKey []byte // PEM: RSA, ECDSA or ed25519
	Passphrase string
	// HostKeyFingerprint pins the host key ("SHA256:..."); empty: the key
	// the cluster recorded for the host, else trust on first use.
	HostKeyFingerprint string
	// StrictHostKeys refuses a host without HostKeyFingerprint: no trust
	// on first use, and no recorded key stands in for it.
	StrictHostKeys bool
}

// Result describes an installed agent.
type Result struct {
	AgentID            int64  // the manager's id of the agent
	HostKeyFingerprint string // SHA256:... of the host key
	LogPath            string // the agent's own log on the host
}

// New returns an Installer.
func New(cfg Config) (*Installer, error) {
	if cfg.Registry == nil || cfg.Store == nil {
		return nil, errors.New("sshboot: Registry and Store are required")
	}
	if cfg.AdvertiseURL == "" && cfg.AgentEndpointPort <= 0 {
		return nil, errors.New("sshboot: give AdvertiseURL or AgentEndpointPort")
	}
	if cfg.AdvertiseURL != "" && !strings.HasPrefix(cfg.AdvertiseURL, "https://") {
		return nil, fmt.Errorf("sshboot: the advertise URL %q must be https:// (agents reach the manager only over mutual TLS)", cfg.AdvertiseURL)
	}
	if cfg.AgentsDir == "" {
		cfg.AgentsDir = preflight.Dir("agents")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RegisterTimeout <= 0 {
		cfg.RegisterTimeout = 60 * time.Second
	}
	if cfg.SlowShellStart <= 0 {
		cfg.SlowShellStart = 2 * time.Second
	}
	if cfg.MinFreeBytes <= 0 {
		cfg.MinFreeBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	// A missing agent binary is serve's to report (core/preflight); the
	// install of a host that needs it says so too.
	return &Installer{cfg: cfg, log: cfg.Logger.Named("sshboot"), binSums: map[string]localSum{}}, nil
}

// agentBinary returns the path, size and SHA-256 (hex) of the local agent
// binary for linux/arch. The sum is computed once and kept while the
// file's size and mtime stay the same, so a rebuilt binary is noticed
// without hashing 7 MB on every install.
func (in *Installer) agentBinary(arch string) (string, int64, string, error) {
	p := preflight.AgentPath(in.cfg.AgentsDir, arch)
	fi, err := os.Stat(p)
	if err != nil {
		return p, 0, "", fmt.Errorf("no agent binary for linux/%s (%w): build it with `make build` (it cross-compiles the agent for every supported architecture into bin/agents), "+
			"or `CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o %s ./cmd/doris-agent`; the dorismanager package has it in %s", arch, err, arch, p, preflight.PackageDir+"/agents")
	}
	in.binMu.Lock()
	defer in.binMu.Unlock()
	c := in.binSums[arch]
	if c.sum != "" && c.size == fi.Size() && c.mtime.Equal(fi.ModTime()) {
		return p, c.size, c.sum, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return p, 0, "", fmt.Errorf("agent binary %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return p, 0, "", fmt.Errorf("read agent binary %s: %w", p, err)
	}
	c = localSum{size: fi.Size(), mtime: fi.ModTime(), sum: hex.EncodeToString(h.Sum(nil))}
	in.binSums[arch] = c
	return p, c.size, c.sum, nil
}

// available are the `uname -m` names of the hosts the manager has an agent
// binary for, and the largest binary's size (for the free-space check).
func (in *Installer) available() ([]string, int64) {
	var names []string
	var size int64
	for _, arch := range preflight.AgentArches {
		if fi, err := os.Stat(preflight.AgentPath(in.cfg.AgentsDir, arch)); err == nil && fi.Mode().IsRegular() {
			names = append(names, preflight.Machines(arch)...)
			size = max(size, fi.Size())
		}
	}
	return names, size
}

// Install installs (or reinstalls) the agent on t and waits until it has
// registered. Progress lines go to log.
func (in *Installer) Install(ctx context.Context, t Target, cred Credentials, log io.Writer) (Result, error) {
	if log == nil {
		log = io.Discard
	}
	if t.Port <= 0 {
		t.Port = 22
	}
	if t.User == "" {
		t.User = "root"
	}
	if t.AgentPort <= 0 {
		t.AgentPort = wire.DefaultPort
	}
	if t.Host == "" || !path.IsAbs(t.InstallDir) {
		return Result{}, fmt.Errorf("install agent: host and an absolute installDir are required (got %q, %q)", t.Host, t.InstallDir)
	}
	t.InstallDir = path.Clean(t.InstallDir)
	signer, err := parseKey(cred)
	if err != nil {
		return Result{}, err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))

	if cred.StrictHostKeys && cred.HostKeyFingerprint == "" {
		err := fmt.Errorf("%w: strictHostKeys is set and no fingerprint was given for %s: add it to hostKeyFingerprints (ssh-keygen -lf on the host's key, or from its console)", ErrHostKeyUnknown, t.Host)
		logf("%v", err)
		return Result{}, err
	}
	logf("connecting to %s as %s", addr, t.User)
	client, fp, err := in.dial(ctx, t, signer, cred.HostKeyFingerprint)
	if err != nil {
		var ue *UnreachableError
		if errors.As(err, &ue) {
			logf("%s: %v", ue.Addr, ue.Detail) // only here: the answer is the same for every cause
		}
		logf("%v", err)
		return Result{HostKeyFingerprint: fp}, err
	}
	defer client.Close()
	res := Result{HostKeyFingerprint: fp, LogPath: path.Join(t.InstallDir, "agent", "log", "agent.out")}
	logf("connected; host key %s", fp)
	sh := &shell{client: client, host: t.Host, logf: logf, slow: in.cfg.SlowShellStart}
	machines, maxSize := in.available()

	serverURL := in.cfg.AdvertiseURL
	if serverURL == "" {
		la, _ := client.LocalAddr().(*net.TCPAddr)
		if la == nil {
			return res, errors.New("install agent: cannot tell the local address of the SSH connection; set --advertise-url")
		}
		serverURL = "https://" + net.JoinHostPort(la.IP.String(), strconv.Itoa(in.cfg.AgentEndpointPort))
	}
	if err := in.cfg.Registry.CheckManagerURL(serverURL); err != nil {
		logf("%v", err)
		return res, err
	}
	sc, err := sh.openSFTP(ctx)
	if err != nil {
		return res, fmt.Errorf("open sftp on %s: %w", t.Host, err)
	}
	defer sc.Close()
	if err := checkSpace(sc, t.InstallDir, maxSize+in.cfg.MinFreeBytes); err != nil {
		logf("%v", err)
		return res, fmt.Errorf("%s: %w", t.Host, err)
	}

	home := path.Join(t.InstallDir, "agent")
	// The agent keeps its id across reinstalls; its certificate names it.
	idFile := path.Join(home, "data", "agent-id")
	agentID, newID := readAgentID(sc, idFile), false
	if agentID == "" {
		if agentID, err = newUUID(); err != nil {
			return res, err
		}
		newID = true
	}
	unit := UnitName(t.InstallDir)
	// One session probes the host (its architecture too) and stops an
	// older agent, but only on a host the manager has an agent binary for:
	// a host of another architecture, or one whose binary is missing, is
	// refused with nothing changed, on the host or in the store (no
	// certificate yet). The session runs after the free-space check, so a
	// reinstall refused for lack of space leaves the running agent alone,
	// as it would be if probing and stopping were separate steps. If the
	// session itself fails, or the certificate cannot be recorded after
	// it, the older agent may be stopped: the install is to be retried.
	logf("probing the host and stopping an older agent in %s, if any", home)
	out, err := sh.run(ctx, probeStopScript, append([]string{home, unit}, machines...)...)
	if err != nil {
		return res, fmt.Errorf("probe %s and stop its older agent: %w", t.Host, err)
	}
	pr, err := parseProbe(out)
	if err != nil {
		return res, fmt.Errorf("probe %s: %w", t.Host, err)
	}
	arch, err := preflight.HostArch(pr.kernel, pr.machine)
	if err != nil {
		err = fmt.Errorf("install agent on %s: %w; nothing was changed on the host", t.Host, err)
		logf("%v", err)
		return res, err
	}
	binPath, binSize, binSum, err := in.agentBinary(arch)
	if err != nil {
		err = fmt.Errorf("install agent on %s: %w; nothing was changed on the host", t.Host, err)
		logf("%v", err)
		return res, err
	}
	logf("the host is linux/%s: installing %s", arch, binPath)
	creds, err := in.cfg.Registry.Prepare(ctx, t.ClusterID, t.Host, t.AgentPort, t.InstallDir, agentID)
	if err != nil {
		return res, err
	}
	listenIP, systemd := pr.listenIP, pr.systemd
	for _, d := range []string{"bin", "conf", "log", "data"} {
		if err := sc.MkdirAll(path.Join(home, d)); err != nil {
			return res, fmt.Errorf("create %s on %s: %w", path.Join(home, d), t.Host, err)
		}
	}
	_ = sc.Chmod(path.Join(home, "conf"), 0o700)
	_ = sc.Chmod(path.Join(home, "data"), 0o700)

	if pr.agentSum == binSum {
		logf("agent on the host is the same binary (sha256 %s…): not uploading it again", binSum[:12])
	} else {
		logf("uploading agent (%d bytes) to %s", binSize, path.Join(home, "bin", "doris-agent"))
		bin, err := os.Open(binPath)
		if err != nil {
			return res, err
		}
		err = upload(sc, path.Join(home, "bin", "doris-agent"), bin, 0o755)
		bin.Close()
		if err != nil {
			return res, fmt.Errorf("upload agent to %s: %w", t.Host, err)
		}
	}
	// The agent listens only on the address this host was reached at
	// (as the SSH server saw it), else on the address it was named by.
	listenHost := listenIP
	if listenHost == "" {
		listenHost = t.Host
	}
	listen := net.JoinHostPort(listenHost, strconv.Itoa(t.AgentPort))
	certFile, caFile := path.Join(home, "conf", "agent.pem"), path.Join(home, "conf", "ca.pem")
	serverURLs := []string{serverURL}
	if in.cfg.Managers != nil {
		serverURLs = wire.MergeURLs(serverURLs, in.cfg.Managers())
	}
	conf, _ := json.MarshalIndent(wire.Config{ServerURL: serverURL, ServerURLs: serverURLs, CertFile: certFile, CAFile: caFile, Listen: listen, Host: t.Host,
		DataDir: path.Join(home, "data"), ClusterID: t.ClusterID, HeartbeatSeconds: 5, InstallDir: t.InstallDir}, "", "  ")
	type file struct {
		path string
		data []byte
		mode os.FileMode
	}
	files := []file{{certFile, creds.CertAndKey, 0o600}, {caFile, creds.CABundle, 0o644},
		{path.Join(home, "conf", "agent.json"), conf, 0o600}}
	if newID {
		files = append(files, file{idFile, []byte(agentID + "\n"), 0o600})
	}
	for _, f := range files {
		if err := upload(sc, f.path, bytes.NewReader(f.data), f.mode); err != nil {
			return res, fmt.Errorf("upload %s to %s: %w", f.path, t.Host, err)
		}
	}
	logf("uploaded the agent's certificate (serial %s, for %s) and the manager's CA bundle", creds.Serial, t.Host)

	if systemd {
		logf("starting agent as systemd unit %s (manager at %s, listening on %s)", unit, serverURL, listen)
		if err := startSystemd(ctx, sc, sh, home, unit); err != nil {
			return res, fmt.Errorf("start agent on %s: %w", t.Host, err)
		}
	} else {
		logf("starting agent detached (manager at %s, listening on %s)", serverURL, listen)
		if _, err := sh.run(ctx, `cd "$1" && setsid nohup "$1/bin/doris-agent" -config "$1/conf/agent.json" >>"$1/log/agent.out" 2>&1 </dev/null &`, home); err != nil {
			return res, fmt.Errorf("start agent on %s: %w", t.Host, err)
		}
	}

	logf("waiting up to %s for the agent to register", in.cfg.RegisterTimeout)
	wctx, cancel := context.WithTimeout(ctx, in.cfg.RegisterTimeout)
	defer cancel()
	a, err := in.cfg.Registry.WaitRegistered(wctx, t.ClusterID, t.Host)
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		tail := readTail(sc, res.LogPath, 4096)
		if systemd {
			if j, jerr := sh.run(ctx, `journalctl -u "$1" -n 30 --no-pager 2>&1`, unit); jerr == nil {
				tail += j
			}
		}
		e := fmt.Errorf("%w: the agent on %s did not register within %s (it must reach the manager at %s; set --advertise-url if that address is wrong); last lines of %s:\n%s",
			ErrNotRegistered, t.Host, in.cfg.RegisterTimeout, serverURL, res.LogPath, tail)
		logf("%v", e)
		return res, e
	}
	res.AgentID = a.ID
	logf("agent registered (id %d, uuid %s)", a.ID, a.AgentUUID)
	in.log.Info("agent installed", "host", t.Host, "agent", a.ID)
	return res, nil
}

func parseKey(cred Credentials) (ssh.Signer, error) {
	if len(bytes.TrimSpace(cred.PrivateKey)) == 0 {
		return nil, fmt.Errorf("%w: the SSH private key is empty", ErrBadKey)
	}
	var signer ssh.Signer
	var err error
	if cred.Passphrase != "" {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(cred.PrivateKey, []byte(cred.Passphrase))
	} else {
		signer, err = ssh.ParsePrivateKey(cred.PrivateKey)
	}
	var pm *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &pm):
		return nil, fmt.Errorf("%w: the private key is encrypted: give its passphrase", ErrBadKey)
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, fmt.Errorf("%w: the passphrase does not decrypt the private key", ErrBadKey)
	default:
		// The parser's message never quotes key material.
		return nil, fmt.Errorf("%w: the private key is not a PEM RSA, ECDSA or ed25519 key: %v", ErrBadKey, err)
	}
}

func normFP(fp string) string {
	fp = strings.TrimSpace(fp)
	if fp != "" && !strings.HasPrefix(fp, "SHA256:") {
		fp = "SHA256:" + fp
	}
	return fp
}

// dial connects and authenticates, checking the host key. Whatever keeps
// it from an SSH server (a refused port, a filtered one, one that speaks
// something else) gives the same *UnreachableError after the same time, so
// installAgent's answers cannot tell ports apart; the cause is in its
// Detail, for the task log.
func (in *Installer) dial(ctx context.Context, t Target, signer ssh.Signer, pinned string) (*ssh.Client, string, error) {
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	timeout := in.cfg.ConnectTimeout
	start := time.Now()
	unreachable := func(seen string, detail error) (*ssh.Client, string, error) {
		// A refusal comes at once and a filtered port at the timeout:
		// answer both at the timeout.
		select {
		case <-ctx.Done():
			return nil, seen, ctx.Err()
		case <-time.After(time.Until(start.Add(timeout))):
		}
		return nil, seen, &UnreachableError{Addr: addr, Detail: detail}
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return unreachable("", fmt.Errorf("connect: %w", err))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(timeout))

	var keyErr error
	var seen string
	cb := func(_ string, _ net.Addr, key ssh.PublicKey) error {
		seen = ssh.FingerprintSHA256(key)
		keyErr = in.checkHostKey(ctx, t, key, normFP(pinned))
		return keyErr
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: t.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: cb, Timeout: timeout,
	})
	if err != nil {
		conn.Close()
		switch {
		case keyErr != nil:
			return nil, seen, keyErr
		case ctx.Err() != nil:
			return nil, seen, ctx.Err()
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, seen, fmt.Errorf("%w: %s refused the key for user %s: check the user and that the public key is in its authorized_keys", ErrAuthRefused, addr, t.User)
		case isTimeout(err):
			return unreachable(seen, fmt.Errorf("the connection was accepted, but no SSH answer came within %s", timeout))
		default:
			return unreachable(seen, fmt.Errorf("SSH handshake: %w", err))
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), seen, nil
}

// UnreachableError is an installAgent that found no SSH server to talk to.
// Its message is the same for every cause; Detail says which it was.
type UnreachableError struct {
	Addr   string
	Detail error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%v: no SSH server answered at %s (nothing listens there, a firewall drops the connection, or it does not speak SSH): check the address, the SSH port and firewalls; the task log has the details", ErrUnreachable, e.Addr)
}

func (e *UnreachableError) Unwrap() error { return ErrUnreachable }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "i/o timeout")
}

// checkHostKey checks the key against the pinned fingerprint and the key
// the target's cluster recorded for the host: both must match where they
// exist. A host the cluster has no key for gets the pinned one, else the
// one seen (trust on first use). A recorded key is changed only through
// the store's ChangeHostKey, which wants the old fingerprint: a pin alone
// never replaces it.
func (in *Installer) checkHostKey(ctx context.Context, t Target, key ssh.PublicKey, pinned string) error {
	fp := ssh.FingerprintSHA256(key)
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	if pinned != "" && pinned != fp {
		return fmt.Errorf("%w: %s presented host key %s, but %s was pinned for it: check the host or correct the pinned fingerprint", ErrHostKeyChanged, addr, fp, pinned)
	}
	st := in.cfg.Store
	rec, err := st.HostKeyOf(ctx, t.ClusterID, t.Host, t.Port)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = store.HostKey{ClusterID: t.ClusterID, Host: t.Host, Port: t.Port, KeyType: key.Type(), Fingerprint: fp, PublicKey: key.Marshal()}
		if err := st.AddHostKey(ctx, &rec); err != nil {
			// Another install may have recorded it just now: compare with that.
			rec, err2 := st.HostKeyOf(ctx, t.ClusterID, t.Host, t.Port)
			if err2 != nil {
				return fmt.Errorf("record host key of %s: %w", addr, err)
			}
			if rec.Fingerprint != fp {
				return changed(addr, t.ClusterID, rec.Fingerprint, fp)
			}
		}
		if pinned == "" {
			in.log.Info("trusting host key on first use", "cluster", t.ClusterID, "host", addr, "fingerprint", fp)
		}
		return nil
	case err != nil:
		return fmt.Errorf("look up host key of %s: %w", addr, err)
	case rec.Fingerprint != fp:
		return changed(addr, t.ClusterID, rec.Fingerprint, fp)
	case len(rec.PublicKey) == 0:
		// The first connection since the fingerprint was changed.
		return st.SetHostKeyMaterial(ctx, rec.ID, fp, key.Type(), key.Marshal())
	}
	return nil
}

func changed(addr string, cluster int64, old, now string) error {
	return fmt.Errorf("%w: %s presented host key %s, but cluster %d recorded %s for it: if the host was really reinstalled, "+
		"change the recorded key (POST /api/cluster/%d/hostKeys with host, oldFingerprint and newFingerprint), then retry",
		ErrHostKeyChanged, addr, now, cluster, old, cluster)
}

// quote makes s one word for a POSIX shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// UnitName is the systemd unit of the agent installed in installDir (on
// hosts that run systemd); the destroy operation has the agent remove it.
func UnitName(installDir string) string { return "doris-agent-" + shortHash(installDir) + ".service" }

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

func checkSpace(sc *sftp.Client, dir string, need int64) error {
	p := dir
	for {
		if _, err := sc.Stat(p); err == nil {
			break
		}
		if p == "/" {
			break
		}
		p = path.Dir(p)
	}
	st, err := sc.StatVFS(p)
	if err != nil {
		return nil // the server lacks the statvfs extension; the upload will tell
	}
	free := int64(st.Frsize * st.Bavail)
	if free < need {
		return fmt.Errorf("%w: %s has %d MiB free, the agent needs %d MiB: free space or choose another installDir", ErrNoSpace, p, free>>20, need>>20)
	}
	return nil
}

func upload(sc *sftp.Client, dst string, src io.Reader, mode os.FileMode) error {
	tmp := dst + ".upload"
	f, err := sc.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.ReadFrom(src); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Renaming over a running binary is fine; writing into it is not.
	if err := sc.PosixRename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// probeStopScript reports what the install needs to know about the host
// and stops an agent already installed in the same place, in one SSH
// session. $1 is the agent's home, $2 its systemd unit, the rest the
// `uname -m` names of the hosts the manager has an agent for. It prints
// key=value lines: conn (SSH_CONNECTION: the address this host was
// reached at), init (the name of pid 1), kernel and machine (uname -s,
// uname -m) and, when an executable agent binary is there, its sha256.
// On a host that is not Linux on one of those machines it stops nothing.
const probeStopScript = `printf 'conn=%s\n' "$SSH_CONNECTION"
init=$(cat /proc/1/comm 2>/dev/null) || init=unknown
printf 'init=%s\n' "$init"
kernel=$(uname -s) machine=$(uname -m)
printf 'kernel=%s\nmachine=%s\n' "$kernel" "$machine"
bin="$1/bin/doris-agent"
if [ -f "$bin" ] && [ -x "$bin" ]; then
  sum=$(sha256sum "$bin" 2>/dev/null) && printf 'sha256=%s\n' "${sum%% *}"
fi
home=$1 unit=$2
shift 2
ok=
if [ "$kernel" = Linux ]; then
  for m in "$@"; do [ "$machine" = "$m" ] && ok=1; done
fi
[ -n "$ok" ] || exit 0
if [ "$init" = systemd ]; then systemctl stop "$unit" 2>/dev/null; fi
pidf="$home/data/agent.pid"
[ -f "$pidf" ] || exit 0
pid=$(cat "$pidf")
case "$pid" in ''|*[!0-9]*) exit 0;; esac
grep -q doris-agent "/proc/$pid/cmdline" 2>/dev/null || exit 0
kill "$pid" 2>/dev/null
i=0
while [ $i -lt 100 ] && [ -d "/proc/$pid" ] && ! grep -q '^State:.*[ZX]' "/proc/$pid/status" 2>/dev/null; do
  sleep 0.1; i=$((i+1))
done
kill -9 "$pid" 2>/dev/null
exit 0`

// hostProbe is what probeStopScript reported.
type hostProbe struct {
	listenIP string // the address this host was reached at ("" if unknown)
	systemd  bool
	agentSum string // sha256 of the installed agent binary, "" if none
	kernel   string // uname -s
	machine  string // uname -m
}

// parseProbe reads probeStopScript's output. It insists on the conn,
// init, kernel and machine lines, so a shell that printed something else
// is not mistaken for a host without systemd or of another architecture.
func parseProbe(out string) (hostProbe, error) {
	var p hostProbe
	var conn, init, kernel, machine bool
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "conn":
			conn = true
			if f := strings.Fields(v); len(f) == 4 {
				p.listenIP = f[2]
			}
		case "init":
			init = true
			p.systemd = strings.TrimSpace(v) == "systemd"
		case "kernel":
			kernel, p.kernel = true, strings.TrimSpace(v)
		case "machine":
			machine, p.machine = true, strings.TrimSpace(v)
		case "sha256":
			if len(v) == 64 && strings.Trim(v, "0123456789abcdef") == "" {
				p.agentSum = v
			}
		}
	}
	if !conn || !init || !kernel || !machine {
		return p, fmt.Errorf("the host's shell printed no usable answer: %q", clip(out, 200))
	}
	return p, nil
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func startSystemd(ctx context.Context, sc *sftp.Client, sh *shell, home, unit string) error {
	u := fmt.Sprintf(`[Unit]
Description=Doris Manager agent (%s)
After=network-online.target

[Service]
ExecStart=%s/bin/doris-agent -config %s/conf/agent.json
WorkingDirectory=%s
Restart=on-failure
RestartSec=2
KillMode=process
LimitNOFILE=65536
StandardOutput=append:%s/log/agent.out
StandardError=append:%s/log/agent.out

[Install]
WantedBy=multi-user.target
`, home, home, home, home, home, home)
	if err := upload(sc, "/etc/systemd/system/"+unit, strings.NewReader(u), 0o644); err != nil {
		return err
	}
	_, err := sh.run(ctx, `systemctl daemon-reload && systemctl enable "$1" && systemctl restart "$1"`, unit)
	return err
}

func readTail(sc *sftp.Client, p string, n int64) string {
	f, err := sc.Open(p)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, fi.Size()-n)
	b := make([]byte, fi.Size()-off)
	m, _ := f.ReadAt(b, off)
	return string(b[:m])
}

// readAgentID reads the agent id an earlier install left on the host, ""
// when there is none or it is not a UUID (the host's word is checked).
func readAgentID(sc *sftp.Client, p string) string {
	f, err := sc.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 128))
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	if !isUUID(id) {
		return ""
	}
	return id
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdef", c):
			return false
		}
	}
	return true
}

// newUUID makes a random (version 4) UUID, as the agent does.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}
