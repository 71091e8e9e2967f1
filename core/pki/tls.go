package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// AgentEndpointTLS is the TLS config of the manager's agent endpoint:
// TLS 1.3 only, the manager's certificate, and a client certificate
// required, chaining to the trusted CAs and carrying the agent role. The
// CAs and the certificate are looked up per connection, so a rotation or
// a renewed manager certificate applies to the next handshake.
func (a *Authority) AgentEndpointTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, err := a.ManagerCertificate()
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: a.Pool(), VerifyConnection: requireRole(Agent)}, nil
	}}
}

// ServerTLS is the TLS config of the REST API served with the manager's
// certificate (`--tls auto`); API clients authenticate with tokens.
func (a *Authority) ServerTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return a.ManagerCertificate()
	}}
}

// ClientTLS is the TLS config of a call from the manager to an agent:
// TLS 1.3, the manager's certificate as client certificate, and the
// agent's certificate verified against the trusted CAs, for the host
// dialed, with the agent role; check, if set, vets the verified leaf
// further (which agent it belongs to).
func (a *Authority) ClientTLS(check func(leaf *x509.Certificate) error) *tls.Config {
	role := requireRole(Agent)
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: a.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return a.ManagerCertificate() },
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := role(cs); err != nil {
				return err
			}
			if check != nil {
				if err := check(cs.PeerCertificates[0]); err != nil {
					return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
				}
			}
			return nil
		}}
}

// requireRole refuses a peer whose (already verified) certificate lacks role.
func requireRole(role Role) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer presented no certificate")
		}
		if leaf := cs.PeerCertificates[0]; !HasRole(leaf, role) {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
				Err: fmt.Errorf("the peer's certificate (CN %q) is not for the %s role", leaf.Subject.CommonName, role)}
		}
		return nil
	}
}
