// Package agentclient is the manager's only way to call a doris-agent: run
// commands with streamed output, write and read files, download packages,
// and read hardware and health. Mutating calls carry a requestId, so they are
// retried after a dropped connection without running twice on the host.
package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/dorismanager/dorismanager/sdk"
)

// Client calls one agent.
type Client struct {
	base    string
	tls     *tls.Config
	hc      *http.Client
	retries int
	backoff time.Duration
	connect time.Duration
	idle    time.Duration
}

// Defaults of the options. A host that stops answering in the middle of a
// call (powered off, unplugged) is noticed after about 2 x DefaultKeepAlive
// of silence, and named as gone after DefaultRetries more connection
// attempts of up to DefaultConnectTimeout each.
const (
	DefaultRetries        = 5
	DefaultBackoff        = 200 * time.Millisecond
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 15 * time.Second
)

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (default: no overall timeout,
// since exec and download stream for as long as their context allows).
// WithConnectTimeout and WithKeepAlive then have no effect.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTLS sets the TLS config of calls to an https:// agent: the
// manager's client certificate and how the agent's is verified.
func WithTLS(cfg *tls.Config) Option { return func(c *Client) { c.tls = cfg } }

// WithRetries sets how often a request is re-sent after a dropped
// connection (default DefaultRetries).
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// WithBackoff sets the first delay between retries (default
// DefaultBackoff, doubling up to 5 s).
func WithBackoff(d time.Duration) Option { return func(c *Client) { c.backoff = d } }

// WithConnectTimeout bounds one attempt to connect (default
// DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option { return func(c *Client) { c.connect = d } }

// WithKeepAlive sets how long a connection may stay silent before TCP
// keepalive probes it (default DefaultKeepAlive). Probes follow every
// third of d and the third unanswered one breaks the connection, so a
// host that went silent is noticed after about 2 x d.
func WithKeepAlive(d time.Duration) Option { return func(c *Client) { c.idle = d } }

// New returns a client for the agent at baseURL (e.g.
// "https://10.0.0.5:9602", with WithTLS).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), retries: DefaultRetries, backoff: DefaultBackoff,
		connect: DefaultConnectTimeout, idle: DefaultKeepAlive}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		// Exec and download answers stream for as long as their command
		// runs, so there is no overall timeout; TCP keepalive instead
		// notices a host that stopped answering altogether (powered off,
		// unplugged) long before the task's timeout.
		ka := keepAlive(c.idle)
		dialer := &net.Dialer{Timeout: c.connect, KeepAliveConfig: ka,
			Control: userTimeout(ka.Idle + time.Duration(ka.Count)*ka.Interval)}
		// Idle connections are dropped before the agent's idle timeout
		// (agent.DefaultHTTP, 2 min) would close one under a new request.
		c.hc = &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext, MaxIdleConnsPerHost: 4,
			IdleConnTimeout: 90 * time.Second, TLSClientConfig: c.tls, TLSHandshakeTimeout: c.connect}}
	}
	return c
}

// keepAlive probes a connection idle for d every d/3, three times.
func keepAlive(d time.Duration) net.KeepAliveConfig {
	if d <= 0 {
		d = DefaultKeepAlive
	}
	return net.KeepAliveConfig{Enable: true, Idle: d, Interval: max(d/3, time.Second), Count: 3}
}

// BaseURL is the agent's address.
func (c *Client) BaseURL() string { return c.base }

// StatusError is an error answer of the agent.
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agent answered HTTP %d: %s", e.Status, e.Msg)
}

// ErrHandshake is wrapped when the TLS handshake with the agent fails:
// one side's certificate is not trusted by the other (another CA, another
// agent, expired, revoked by a reinstall). Re-sending does not help.
var ErrHandshake = errors.New("TLS handshake with the agent failed")

// ErrRequestIDReused is wrapped when the agent refuses a request because
// its request id was already used for a different request (HTTP 409): the
// agent keeps the id's recorded result for the request that first used it.
var ErrRequestIDReused = errors.New("a request id was reused for another request (the agent refused it and ran nothing)")

// transient marks failures worth re-sending: the request may or may not
// have reached the agent, and the requestId makes that harmless.
type transient struct{ err error }

func (t *transient) Error() string { return t.err.Error() }
func (t *transient) Unwrap() error { return t.err }

// do sends one request, retrying transient failures with backoff.
func (c *Client) do(ctx context.Context, what string, attempt func(ctx context.Context) error) error {
	delay := c.backoff
	var err error
	for i := 0; ; i++ {
		err = attempt(ctx)
		var tr *transient
		if err == nil || !errors.As(err, &tr) || i >= c.retries || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s on agent %s: %w (after %v)", what, c.base, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
	if err != nil {
		if unreachable(err) {
			return fmt.Errorf("%s: %w: %w", what, &AgentGoneError{Base: c.base}, err)
		}
		return fmt.Errorf("%s on agent %s: %w", what, c.base, err)
	}
	return nil
}

// AgentGoneError says that no agent answered at an address after every
// retry: it is not running, or the host or network is down.
type AgentGoneError struct{ Base string }

func (e *AgentGoneError) Error() string {
	host := e.Base
	if u, err := url.Parse(e.Base); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return fmt.Sprintf("the agent on %s is not running or not reachable at %s (start doris-agent on the host again or fix the network, then retry)", host, e.Base)
}

// unreachable tells a failure to connect (nothing listens, no route, dial
// timeout) from other errors: only then is the agent surely gone.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if refused(err) {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return nil, &transient{err}
	}
	return resp, nil
}

// refused tells a TLS refusal (either side's certificate not accepted)
// from a broken connection.
func refused(err error) bool {
	var verify *tls.CertificateVerificationError
	var hostname x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	// A TLS alert from the agent (it refused the manager's certificate)
	// comes as a "remote error".
	var op *net.OpError
	return errors.As(err, &verify) || errors.As(err, &hostname) || errors.As(err, &unknown) ||
		errors.As(err, &invalid) || errors.As(err, &op) && op.Op == "remote error"
}

// errorOf maps a non-200 response to an error.
func errorOf(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env wire.Envelope[wire.ErrorData]
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &env) == nil && env.Msg != "" {
		msg = env.Msg
	}
	se := &StatusError{Status: resp.StatusCode, Msg: msg}
	switch {
	case resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %w", ErrRequestIDReused, se)
	case env.Data.Reason == wire.ReasonNotExist:
		return fmt.Errorf("%w: %w", sdk.ErrNotExist, se)
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable:
		return &transient{se}
	}
	return se
}

// getJSON performs a JSON request and decodes the envelope's data into out.
func (c *Client) getJSON(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorOf(resp)
	}
	var env wire.Envelope[json.RawMessage]
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return &transient{fmt.Errorf("read answer: %w", err)}
	}
	if out != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

// stream performs a streaming request: output lines go to out, the final
// line is returned. A stream cut before its final line is transient.
func (c *Client) stream(ctx context.Context, path string, body any, out io.Writer) (wire.Line, error) {
	resp, err := c.send(ctx, http.MethodPost, path, body)
	if err != nil {
		return wire.Line{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return wire.Line{}, errorOf(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l wire.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return wire.Line{}, fmt.Errorf("bad line from agent: %w", err)
		}
		if l.Exec != nil || l.Download != nil || l.Error != "" {
			return l, nil
		}
		if l.Output != "" && out != nil {
			_, _ = io.WriteString(out, l.Output)
		}
	}
	if ctx.Err() != nil {
		return wire.Line{}, ctx.Err()
	}
	err = sc.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return wire.Line{}, &transient{fmt.Errorf("stream cut before the result: %w", err)}
}

// Health checks that the agent answers.
func (c *Client) Health(ctx context.Context) (wire.Health, error) {
	var h wire.Health
	err := c.do(ctx, "health", func(ctx context.Context) error {
		return c.getJSON(ctx, http.MethodGet, wire.HealthPath, nil, &h)
	})
	return h, err
}

// Hardware returns the agent's hardware report.
func (c *Client) Hardware(ctx context.Context) (wire.Hardware, error) {
	var h wire.Hardware
	err := c.do(ctx, "hardware", func(ctx context.Context) error {
		return c.getJSON(ctx, http.MethodGet, wire.HardwarePath, nil, &h)
	})
	return h, err
}

// ExecRequest is one command for Exec.
type ExecRequest struct {
	RequestID string // unique per attempt of the call; re-sent as is
	TaskID    string // the task whose log file receives the output
	Command   sdk.Command
	// Probe runs a read-only check without recording it or writing the
	// task log (status probes); it cannot be detached.
	Probe bool
}

// Exec runs a command, streaming its output into out. A non-zero exit is
// not an error; a timeout or a failure to start is (with the result too).
func (c *Client) Exec(ctx context.Context, req ExecRequest, out io.Writer) (sdk.ExecResult, error) {
	if req.RequestID == "" {
		return sdk.ExecResult{}, errors.New("exec: requestId is required")
	}
	cmd := req.Command
	timeout := cmd.Timeout
	if dl, ok := ctx.Deadline(); ok && timeout == 0 && !cmd.Detach {
		timeout = time.Until(dl)
	}
	body := wire.Exec{RequestID: req.RequestID, TaskID: req.TaskID, Argv: cmd.Argv, Env: cmd.Env, Dir: cmd.Dir,
		NoFile: cmd.NoFile, TimeoutSeconds: timeout.Seconds(), Detach: cmd.Detach, Stdin: cmd.Stdin, Probe: req.Probe}
	var line wire.Line
	name := "run " + first(cmd.Argv)
	err := c.do(ctx, name, func(ctx context.Context) error {
		var err error
		line, err = c.stream(ctx, wire.ExecPath, body, out)
		return err
	})
	if err != nil {
		return sdk.ExecResult{}, err
	}
	if line.Exec == nil {
		return sdk.ExecResult{}, fmt.Errorf("%s on agent %s: %s", name, c.base, line.Error)
	}
	r := line.Exec
	res := sdk.ExecResult{ExitCode: r.ExitCode, Output: r.Output, LogPath: r.LogPath, Pid: r.Pid, Running: r.Running}
	if r.Error != "" {
		return res, fmt.Errorf("%s on agent %s: %s", name, c.base, r.Error)
	}
	return res, nil
}

func first(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return argv[0]
}

// WriteFileRequest is one file for WriteFile.
type WriteFileRequest struct {
	RequestID string
	Path      string
	Data      []byte
	Mode      uint32 // 0: 0644
}

// WriteFile writes a file atomically, creating parent directories.
func (c *Client) WriteFile(ctx context.Context, req WriteFileRequest) error {
	if req.RequestID == "" {
		return errors.New("write file: requestId is required")
	}
	return c.do(ctx, "write "+req.Path, func(ctx context.Context) error {
		return c.getJSON(ctx, http.MethodPost, wire.WriteFilePath,
			wire.WriteFile{RequestID: req.RequestID, Path: req.Path, Data: req.Data, Mode: req.Mode}, nil)
	})
}

// ReadFile returns at most maxBytes from the end of a file (0: 1 MiB).
// A missing file gives an error wrapping sdk.ErrNotExist.
func (c *Client) ReadFile(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	var fd wire.FileData
	err := c.do(ctx, "read "+path, func(ctx context.Context) error {
		return c.getJSON(ctx, http.MethodPost, wire.ReadFilePath, wire.ReadFile{Path: path, MaxBytes: maxBytes}, &fd)
	})
	return fd.Data, err
}

// DownloadRequest is one package for Download.
type DownloadRequest struct {
	RequestID string
	TaskID    string
	Download  sdk.Download
	MaxBytes  int64         // 0: the agent's limit
	Timeout   time.Duration // 0: the context's remaining time, else one hour
	// ViaManager has the agent fetch the package from the manager's relay
	// (Download.SHA256 required) instead of Download.URL.
	ViaManager bool
}

// Download fetches (and unpacks) a package on the host; progress lines go to out.
func (c *Client) Download(ctx context.Context, req DownloadRequest, out io.Writer) (sdk.DownloadResult, error) {
	if req.RequestID == "" {
		return sdk.DownloadResult{}, errors.New("download: requestId is required")
	}
	timeout := req.Timeout
	if dl, ok := ctx.Deadline(); ok && timeout == 0 {
		timeout = time.Until(dl)
	}
	d := req.Download
	body := wire.Download{RequestID: req.RequestID, TaskID: req.TaskID, URL: d.URL, SHA256: d.SHA256, SHA512: d.SHA512,
		Dest: d.Dest, Unpack: d.Unpack, MaxBytes: req.MaxBytes, TimeoutSeconds: timeout.Seconds(), ViaManager: req.ViaManager}
	var line wire.Line
	err := c.do(ctx, "download "+redact.String(d.URL), func(ctx context.Context) error {
		var err error
		line, err = c.stream(ctx, wire.DownloadPath, body, out)
		return err
	})
	if err != nil {
		return sdk.DownloadResult{}, err
	}
	if line.Download == nil {
		return sdk.DownloadResult{}, fmt.Errorf("agent %s: %s", c.base, line.Error)
	}
	r := line.Download
	return sdk.DownloadResult{Path: r.Path, SHA256: r.SHA256, SHA512: r.SHA512, Bytes: r.Bytes, Cached: r.Cached}, nil
}

// SetDesired records the state a role should be in on the agent's host;
// the agent restores it when it starts (after a reboot). Repeating it is
// harmless, so it carries no request id.
func (c *Client) SetDesired(ctx context.Context, d wire.DesiredRole) error {
	return c.do(ctx, "record desired state of "+d.Role, func(ctx context.Context) error {
		return c.getJSON(ctx, http.MethodPost, wire.DesiredPath, d, nil)
	})
}

// Uninstall asks the agent to remove itself from its host and exit. It
// returns once the agent accepted; the removal follows right after.
func (c *Client) Uninstall(ctx context.Context, u wire.Uninstall) error {
	return c.do(ctx, "uninstall", func(ctx context.Context) error {
		return c.getJSON(ctx, http.MethodPost, wire.UninstallPath, u, nil)
	})
}
