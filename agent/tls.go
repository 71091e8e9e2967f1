package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// creds are the agent's certificate (with its key) and the CAs it trusts.
type creds struct {
	cert      *tls.Certificate // Leaf is set
	pool      *x509.CertPool
	bundle    []byte
	bundleSum string // hex SHA-256 of bundle
}

// loadCreds reads the certificate+key file and the CA bundle file.
func loadCreds(certFile, caFile string) (*creds, error) {
	pair, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("agent certificate: %w (install the agent from the manager)", err)
	}
	bundle, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("agent CA bundle: %w (install the agent from the manager)", err)
	}
	cert, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		return nil, fmt.Errorf("agent certificate %s: %w", certFile, err)
	}
	return newCreds(cert, bundle)
}

func newCreds(cert tls.Certificate, bundle []byte) (*creds, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return nil, errors.New("agent CA bundle: no certificate in it")
	}
	sum := sha256.Sum256(bundle)
	return &creds{cert: &cert, pool: pool, bundle: bundle, bundleSum: hex.EncodeToString(sum[:])}, nil
}

// setCreds puts new credentials in use: new connections to the manager
// and new handshakes on the agent's port use them; connections already
// open keep going.
func (a *Agent) setCreds(c *creds) {
	a.creds.Store(c)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.pool, Certificates: []tls.Certificate{*c.cert},
		VerifyConnection: requireRole(wire.ManagerURI)}
	old := a.mgr.Swap(&http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: cfg, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
		TLSHandshakeTimeout: 10 * time.Second}})
	if old != nil {
		old.CloseIdleConnections()
	}
}

// serverTLS is the agent port's TLS: version 1.3 only, and a client
// certificate is required that chains to the manager's CA bundle and
// carries the manager's role. Plain HTTP, anonymous TLS and every other
// certificate (an agent's, another CA's, an expired one) fail the
// handshake and never reach the API.
func (a *Agent) serverTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := a.creds.Load()
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*c.cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: c.pool, VerifyConnection: requireRole(wire.ManagerURI)}, nil
	}}
}

// requireRole refuses a peer whose verified certificate lacks the role URI.
func requireRole(role string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no peer certificate")
		}
		for _, u := range cs.PeerCertificates[0].URIs {
			if u.String() == role {
				return nil
			}
		}
		return fmt.Errorf("the peer's certificate is not for the %s role", role)
	}
}

// answered applies what the manager said in a register or heartbeat
// answer: the pid files to report, a new CA bundle, or a request to renew
// now (a CA rotation).
func (a *Agent) answered(ctx context.Context, b wire.Beat) {
	a.watch(b.PidFiles)
	a.learnFrom(b.Managers)
	if b.CABundle != "" {
		if err := a.storeBundle([]byte(b.CABundle)); err != nil {
			a.log.Warn("cannot store the manager's CA bundle", "error", err)
		}
	}
	if (b.Renew || a.renewDue()) && time.Now().After(a.retryRenew) {
		if err := a.Renew(ctx); err != nil {
			// Not at every beat: a manager that keeps refusing would
			// otherwise fill the log.
			a.retryRenew = time.Now().Add(time.Minute)
			a.log.Warn("certificate renewal failed; trying again in a minute", "error", err)
		}
	}
}

// storeBundle writes a new CA bundle and trusts it from now on.
func (a *Agent) storeBundle(bundle []byte) error {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	c := a.creds.Load()
	if bytes.Equal(bundle, c.bundle) {
		return nil
	}
	n, err := newCreds(*c.cert, bundle)
	if err != nil {
		return err
	}
	if err := writeAtomic(a.cfg.CAFile, bundle, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", a.cfg.CAFile, err)
	}
	a.setCreds(n)
	a.log.Info("stored the manager's new CA bundle", "file", a.cfg.CAFile)
	return nil
}

// renewDue tells whether the renewal fraction of the certificate's
// lifetime has passed (default two thirds).
func (a *Agent) renewDue() bool {
	f := a.cfg.RenewFraction
	if f <= 0 {
		f = 2.0 / 3
	}
	leaf := a.creds.Load().cert.Leaf
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return time.Now().After(leaf.NotBefore.Add(time.Duration(float64(life) * f)))
}

// Renew gets a new certificate over the mutual-TLS channel: a new key made
// here (it never leaves the host), a certificate request for it, and the
// manager's answer written with the key into the certificate file at once
// (one file, renamed into place). New connections use it.
func (a *Agent) Renew(ctx context.Context) error {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: a.id}}, key)
	if err != nil {
		return fmt.Errorf("certificate request: %w", err)
	}
	var out wire.Renewed
	if _, err := a.post(ctx, wire.RenewPath, wire.Renew{AgentID: a.id,
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}, &out); err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	bundle := []byte(out.CABundle)
	if len(bundle) == 0 {
		bundle = a.creds.Load().bundle
	}
	cert, err := tls.X509KeyPair([]byte(out.Certificate), keyPEM)
	if err != nil {
		return fmt.Errorf("the renewed certificate: %w", err)
	}
	n, err := newCreds(cert, bundle)
	if err != nil {
		return err
	}
	// Check what came back before replacing what works.
	if _, err := n.cert.Leaf.Verify(x509.VerifyOptions{Roots: n.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the renewed certificate does not verify against the CA bundle: %w", err)
	}
	if n.cert.Leaf.Subject.CommonName != a.id {
		return fmt.Errorf("the renewed certificate is for %q, not this agent %s", n.cert.Leaf.Subject.CommonName, a.id)
	}
	if !bytes.Equal(bundle, a.creds.Load().bundle) {
		if err := writeAtomic(a.cfg.CAFile, bundle, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", a.cfg.CAFile, err)
		}
	}
	if err := writeAtomic(a.cfg.CertFile, append([]byte(out.Certificate), keyPEM...), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", a.cfg.CertFile, err)
	}
	a.setCreds(n)
	a.log.Info("renewed the agent certificate", "serial", n.cert.Leaf.SerialNumber.Text(16), "notAfter", n.cert.Leaf.NotAfter)
	return nil
}

// Certificate is the agent's certificate in use.
func (a *Agent) Certificate() *x509.Certificate { return a.creds.Load().cert.Leaf }
