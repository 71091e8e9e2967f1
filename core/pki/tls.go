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

// ClientTLS is the TLS config of a call from the manager to an agent at
// host: TLS 1.3, the manager's certificate as client certificate, and the
// agent's certificate verified against the trusted CAs, for host, with the
// agent role; check, if set, vets the verified leaf
// further (which agent it belongs to).
//
// The chain is verified in VerifyConnection against the CAs trusted at
// that handshake, not against a pool copied when the config was made: a
// client made before a CA rotation was loaded must still accept an agent
// that has renewed onto the new CA in the meantime.
func (a *Authority) ClientTLS(host string, check func(leaf *x509.Certificate) error) *tls.Config {
	role := requireRole(Agent)
	return &tls.Config{MinVersion: tls.VersionTLS13,
		InsecureSkipVerify:   true, // the chain and host are verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return a.ManagerCertificate() },
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := a.verifyPeer(cs, host, x509.ExtKeyUsageServerAuth); err != nil {
				return err
			}
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

// verifyPeer verifies the peer's chain against the CAs trusted now, for
// host (an IP address or DNS name; the connection state carries no name
// for an IP address).
func (a *Authority) verifyPeer(cs tls.ConnectionState, host string, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: a.Pool(), Intermediates: inter,
		DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}
