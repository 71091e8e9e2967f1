// Package rest is a typed client of the manager's REST API for the
// command-line client: the envelope, errors as the manager words them, the
// token from a file or the environment (never from the command line), and
// TLS with the manager's CA bundle.
package rest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Environment variables the client reads when a flag is not given.
const (
	EnvServer    = "DORISMANAGER_SERVER"
	EnvTokenFile = "DORISMANAGER_TOKEN_FILE"
	EnvToken     = "DORISMANAGER_TOKEN"
	EnvCAFile    = "DORISMANAGER_CA_FILE"
)

// DefaultServer is the manager `make run` serves.
const DefaultServer = "http://127.0.0.1:9601"

// DefaultTokenFile is where `serve` writes the admin token with the default
// data dir; used when nothing else names a token and the file exists.
const DefaultTokenFile = "data/admin.token"

// Config says how to reach a manager. Empty fields fall back to the
// environment, then to the defaults.
type Config struct {
	Server    string
	TokenFile string
	CAFile    string
	// Getenv reads the environment (os.Getenv when nil); tests set it.
	Getenv func(string) string
	// Timeout bounds one request (default 60 s).
	Timeout time.Duration
}

// Client calls one manager.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New resolves cfg (flags, then environment, then defaults) and reads the
// token and CA bundle.
func New(cfg Config) (*Client, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	server := first(cfg.Server, getenv(EnvServer), DefaultServer)
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: give the manager's URL, like https://10.0.0.5:9601 (--server or %s)", server, EnvServer)
	}
	token, err := readToken(cfg.TokenFile, getenv)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if ca := first(cfg.CAFile, getenv(EnvCAFile)); ca != "" {
		if u.Scheme != "https" {
			return nil, fmt.Errorf("--ca-file %s is given but the server %s is plain http: use https://", ca, server)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read the CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate (the manager's is <data-dir>/pki/bundle.crt)", ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	return &Client{base: u, token: token, http: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// Server is the manager's URL as used.
func (c *Client) Server() string { return c.base.String() }

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// readToken takes the token from --token-file, DORISMANAGER_TOKEN_FILE,
// DORISMANAGER_TOKEN or data/admin.token, in that order.
func readToken(flagFile string, getenv func(string) string) (string, error) {
	file := first(flagFile, getenv(EnvTokenFile))
	if file == "" {
		if t := strings.TrimSpace(getenv(EnvToken)); t != "" {
			return t, nil
		}
		if _, err := os.Stat(DefaultTokenFile); err != nil {
			return "", fmt.Errorf("no API token: give --token-file FILE (or set %s, or %s), e.g. the manager's <data-dir>/admin.token", EnvTokenFile, EnvToken)
		}
		file = DefaultTokenFile
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the API token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return "", fmt.Errorf("token file %s must hold one token on one line", file)
	}
	return t, nil
}

// Error is a refusal by the manager: its HTTP status and its code and
// message, shown as the manager wrote them.
type Error struct {
	Method, Path string
	Status       int
	Code         int
	Msg          string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: the manager answered %d: %s", e.Method, e.Path, e.Code, e.Msg)
}

// NoEndpoint is true when the manager has no such route at all (an older
// manager), as opposed to a 404 for an unknown id.
func (e *Error) NoEndpoint() bool {
	return e.Status == http.StatusNotFound && strings.HasPrefix(e.Msg, "no endpoint ")
}

// IsNoEndpoint reports whether err is an *Error of a route the manager lacks.
func IsNoEndpoint(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.NoEndpoint()
}

// StatusOf is the HTTP status of a refusal, 0 for other errors.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

type envelope struct {
	Msg  string          `json:"msg"`
	Code *int            `json:"code"`
	Data json.RawMessage `json:"data"`
}

// Do sends body as JSON (nil: no body) and decodes the envelope's data
// into out (nil: ignored). A non-zero code is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	raw, err := c.DoRaw(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out == nil || len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// DoRaw is Do that returns the envelope's data as it came.
func (c *Client) DoRaw(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode the request of %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, explain(err, c.base))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || env.Code == nil {
		if strings.Contains(string(b), "HTTP request to an HTTPS server") {
			return nil, fmt.Errorf("%s %s: the manager serves TLS: use https://%s", method, path, c.base.Host)
		}
		return nil, fmt.Errorf("%s %s: HTTP %d and no API answer (is %s a Doris Manager?): %s", method, path, resp.StatusCode, c.base, snippet(b))
	}
	if *env.Code != 0 {
		return nil, &Error{Method: method, Path: path, Status: resp.StatusCode, Code: *env.Code, Msg: env.Msg}
	}
	return env.Data, nil
}

// explain adds what to do to the transport errors a user meets first.
func explain(err error, base *url.URL) error {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &cv) {
		return fmt.Errorf("%w (trust the manager's CA with --ca-file <data-dir>/pki/bundle.crt)", err)
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%w (the manager serves plain http: use http://%s)", err, base.Host)
	}
	return err
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
