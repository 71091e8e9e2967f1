package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, dataDir string) *Authority {
	t.Helper()
	a, err := Open(dataDir, Options{ManagerHosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// agentCert issues an agent certificate and returns it as a tls.Certificate.
func agentCert(t *testing.T, a *Authority, id, host string, lifetime time.Duration) (tls.Certificate, Issued) {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	is, err := a.Issue(Request{PublicKey: key.Public(), CommonName: id, Hosts: []string{host}, Role: Agent, Lifetime: lifetime})
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := EncodeKey(key)
	c, err := tls.X509KeyPair(is.PEM, kb)
	if err != nil {
		t.Fatal(err)
	}
	return c, is
}

// serve runs an HTTPS server with cfg on loopback that answers "ok".
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// get calls url with a TLS client config and says whether "ok" came back.
func get(url string, cfg *tls.Config) error {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return errors.New("unexpected answer " + string(b))
	}
	return nil
}

func clientWith(pool *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS13}
}

func TestCreateAndReopen(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	for name, mode := range map[string]os.FileMode{caKey: 0o600, managerFile: 0o600, caCert: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, Dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %o", name, fi, err, mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, Dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("pki dir: %v %v", fi, err)
	}
	m1, err := a.ManagerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if !HasRole(m1.Leaf, Manager) || HasRole(m1.Leaf, Agent) || m1.Leaf.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("manager certificate: URIs %v IPs %v", m1.Leaf.URIs, m1.Leaf.IPAddresses)
	}
	b := open(t, dir)
	m2, _ := b.ManagerCertificate()
	if a.SigningID() != b.SigningID() || Fingerprint(m1.Leaf) != Fingerprint(m2.Leaf) {
		t.Fatal("reopening made a new CA or a new manager certificate")
	}
	// Another host name on the manager's certificate: a new certificate, same CA.
	c, err := Open(dir, Options{ManagerHosts: []string{"127.0.0.1", "manager.example"}})
	if err != nil {
		t.Fatal(err)
	}
	m3, _ := c.ManagerCertificate()
	if Fingerprint(m3.Leaf) == Fingerprint(m1.Leaf) || m3.Leaf.VerifyHostname("manager.example") != nil || c.SigningID() != a.SigningID() {
		t.Fatal("a new manager host did not give a new certificate from the same CA")
	}
}

func TestIssueAndVerify(t *testing.T) {
	a := open(t, t.TempDir())
	other := open(t, t.TempDir())
	_, is := agentCert(t, a, "6f1c2a8e-0000-4000-8000-000000000001", "10.1.2.3", AgentLifetime)
	c := is.Cert
	if c.Subject.CommonName != "6f1c2a8e-0000-4000-8000-000000000001" || HostOf(c) != "10.1.2.3" || !HasRole(c, Agent) || HasRole(c, Manager) {
		t.Fatalf("agent certificate: CN %q host %q URIs %v", c.Subject.CommonName, HostOf(c), c.URIs)
	}
	if c.SerialNumber.BitLen() < 64 || is.Serial != Serial(c) || is.Issuer != a.SigningID() || IssuerID(c) != a.SigningID() {
		t.Fatalf("serial %s (%d bits), issuer %s", is.Serial, c.SerialNumber.BitLen(), is.Issuer)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < AgentLifetime || got > AgentLifetime+time.Hour {
		t.Fatalf("lifetime %v", got)
	}
	_, is2 := agentCert(t, a, "x", "h", time.Hour)
	if is2.Serial == is.Serial {
		t.Fatal("two certificates share a serial")
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: a.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err == nil {
			t.Error("another CA verified the certificate")
		}
	}
	if _, err := a.Issue(Request{PublicKey: c.PublicKey, CommonName: "x", Hosts: []string{"h"}, Role: "admin", Lifetime: time.Hour}); err == nil {
		t.Error("issued a certificate for an unknown role")
	}
}

// The agent endpoint's config takes agent certificates of its CA only.
func TestAgentEndpointRefuses(t *testing.T) {
	a := open(t, t.TempDir())
	other := open(t, t.TempDir())
	url := serve(t, a.AgentEndpointTLS())
	good, _ := agentCert(t, a, "id-1", "127.0.0.1", time.Hour)
	foreign, _ := agentCert(t, other, "id-1", "127.0.0.1", time.Hour)
	mgr, _ := a.ManagerCertificate()
	if err := get(url, clientWith(a.Pool(), good)); err != nil {
		t.Fatalf("a valid agent certificate was refused: %v", err)
	}
	for name, cfg := range map[string]*tls.Config{
		"no certificate": clientWith(a.Pool()),
		"certificate of another CA": {RootCAs: a.Pool(), MinVersion: tls.VersionTLS13,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }},
		"manager-role certificate": clientWith(a.Pool(), *mgr),
	} {
		if err := get(url, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if err := get(url, &tls.Config{RootCAs: a.Pool(), Certificates: []tls.Certificate{good}, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 accepted")
	}
}

// A certificate whose NotAfter has passed is refused, by x509 and by a
// real handshake.
func TestExpired(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	// The same CA with its clock 48 hours back issues a certificate for a
	// day: it expired yesterday.
	back, err := Open(dir, Options{ManagerHosts: []string{"127.0.0.1"}, Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	old, is := agentCert(t, back, "id-1", "127.0.0.1", 24*time.Hour)
	if !is.Cert.NotAfter.Before(time.Now()) {
		t.Fatalf("NotAfter %v is not in the past", is.Cert.NotAfter)
	}
	var ce x509.CertificateInvalidError
	if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: a.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); !errors.As(err, &ce) || ce.Reason != x509.Expired {
		t.Fatalf("verify an expired certificate: %v", err)
	}
	url := serve(t, a.AgentEndpointTLS())
	if err := get(url, clientWith(a.Pool(), old)); err == nil {
		t.Fatal("an expired agent certificate was accepted")
	}
	// An expired server certificate is refused by the client as well.
	srv := serve(t, &tls.Config{Certificates: []tls.Certificate{old}})
	if err := get(srv, clientWith(a.Pool())); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("client accepted an expired server certificate: %v", err)
	}
}

// A rotation trusts both CAs until it is finished; the manager's
// certificate stays with the old CA until then, agents' new certificates
// come from the new one.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	oldID := a.SigningID()
	oldAgent, _ := agentCert(t, a, "id-1", "127.0.0.1", time.Hour)
	oldPool := a.Pool()
	mgr0, _ := a.ManagerCertificate()

	newID, err := Rotate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(dir, time.Now()); err == nil {
		t.Fatal("a second rotation started while one is under way")
	}
	if st, err := ReadStatus(dir); err != nil || st.SigningID != newID || st.PrevID != oldID {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.SigningID() != newID || !a.Rotating() || newID == oldID {
		t.Fatalf("signing %s, want %s", a.SigningID(), newID)
	}
	newAgent, is := agentCert(t, a, "id-1", "127.0.0.1", time.Hour)
	if is.Issuer != newID {
		t.Fatalf("issued by %s during the rotation, want the new CA %s", is.Issuer, newID)
	}
	mgr1, _ := a.ManagerCertificate()
	if Fingerprint(mgr1.Leaf) != Fingerprint(mgr0.Leaf) {
		t.Fatal("the manager certificate changed during the overlap: agents with the old bundle could not verify it")
	}
	url := serve(t, a.AgentEndpointTLS())
	// An agent that has not fetched the new bundle, with its old
	// certificate, and one that renewed: both get through.
	for name, cfg := range map[string]*tls.Config{
		"old bundle, old certificate": clientWith(oldPool, oldAgent),
		"new bundle, new certificate": clientWith(a.Pool(), newAgent),
	} {
		if err := get(url, cfg); err != nil {
			t.Errorf("during the rotation, %s: %v", name, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, Dir, BundleFile))
	if string(b) != string(a.Bundle()) || strings.Count(string(b), "BEGIN CERTIFICATE") != 2 {
		t.Fatalf("bundle file during the rotation:\n%s", b)
	}

	if err := FinishRotation(dir); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	mgr2, _ := a.ManagerCertificate()
	if IssuerID(mgr2.Leaf) != newID {
		t.Fatalf("after the rotation the manager certificate is from %s, want %s", IssuerID(mgr2.Leaf), newID)
	}
	if err := get(url, clientWith(a.Pool(), newAgent)); err != nil {
		t.Errorf("after the rotation, a renewed agent: %v", err)
	}
	if err := get(url, clientWith(a.Pool(), oldAgent)); err == nil {
		t.Error("after the rotation, a certificate of the old CA was accepted")
	}
	if err := FinishRotation(dir); err == nil {
		t.Error("finished a rotation that was not under way")
	}
}

// A client config made before a rotation was loaded accepts an agent that
// renewed onto the new CA since: the chain is checked against the CAs
// trusted at the handshake. It still checks the host it dials.
func TestClientTLSFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	before := a.ClientTLS("127.0.0.1", nil)
	elsewhere := a.ClientTLS("10.9.9.9", nil)
	if _, err := Rotate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	renewed, _ := agentCert(t, a, "id-1", "127.0.0.1", time.Hour)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{renewed},
		ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	for _, c := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{{"made before the rotation", before, true}, {"dialing another host", elsewhere, false}} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), c.cfg)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: handshake error %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
