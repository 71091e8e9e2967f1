// Package pki is the manager's certificate authority. It keeps a small CA
// in <data-dir>/pki, issues the manager's certificate and the agents'
// certificates (each marked with its role as a URI SAN), and rolls the CA
// over with an overlap during which both the old and the new CA are
// trusted, so no agent is cut off.
//
// Files in the pki directory (0700; keys 0600):
//
//	ca.key, ca.crt            the signing CA: it signs agent certificates
//	ca-prev.key, ca-prev.crt  the previous CA while a rotation is under way:
//	                          still trusted, and still signing the manager's
//	                          certificate, which every agent can verify
//	                          until the rotation is finished
//	bundle.crt                the trusted CAs (what clients should trust)
//	manager.pem               the manager's certificate and key
//
// A running manager picks up a rotation made by `dorismanager ca rotate`
// on the next use after the files changed (checked at most every
// ReloadEvery).
package pki

import (
	"bytes"
	"crypto"
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
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/hashicorp/go-hclog"
)

// Role is what a certificate may be used for, carried as a URI SAN.
type Role string

// The two roles.
const (
	Manager Role = wire.ManagerURI
	Agent   Role = wire.AgentURI
)

// Defaults.
const (
	CALifetime      = 10 * 365 * 24 * time.Hour
	ManagerLifetime = 365 * 24 * time.Hour
	AgentLifetime   = 90 * 24 * time.Hour
	ReloadEvery     = 2 * time.Second
)

// File names inside the pki directory.
const (
	Dir         = "pki"
	caKey       = "ca.key"
	caCert      = "ca.crt"
	prevKey     = "ca-prev.key"
	prevCert    = "ca-prev.crt"
	BundleFile  = "bundle.crt"
	managerFile = "manager.pem"
)

// ca is one certificate authority: its certificate and key.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// state is what the files said at the last (re)load.
type state struct {
	signing *ca // signs agent certificates
	prev    *ca // nil unless a rotation is under way
	pool    *x509.CertPool
	bundle  []byte
	stamp   string
}

// managerCA is the CA that signs the manager's certificate: the previous
// one during a rotation, since agents that have not fetched the new
// bundle yet trust only that one.
func (s *state) managerCA() *ca {
	if s.prev != nil {
		return s.prev
	}
	return s.signing
}

// Options configure Open.
type Options struct {
	// ManagerHosts are the names and addresses on the manager's
	// certificate (IPs become IP SANs, the rest DNS SANs).
	ManagerHosts    []string
	ManagerLifetime time.Duration // default ManagerLifetime
	Logger          hclog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Authority is the manager's CA, safe for concurrent use.
type Authority struct {
	dir  string
	opts Options
	log  hclog.Logger

	mu      sync.Mutex
	snap    atomic.Pointer[snapshot] // what readers use without mu; see view
	st      *state
	checked time.Time
	mgr     *tls.Certificate
	mgrLeaf *x509.Certificate
}

// Open loads the CA in <dataDir>/pki, creating it on first start, and
// makes sure the manager has a certificate for opts.ManagerHosts signed by
// the CA every agent trusts.
func Open(dataDir string, opts Options) (*Authority, error) {
	if opts.ManagerLifetime <= 0 {
		opts.ManagerLifetime = ManagerLifetime
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir := filepath.Join(dataDir, Dir)
	if err := create(dir, opts.Now()); err != nil {
		return nil, err
	}
	a := &Authority{dir: dir, opts: opts, log: opts.Logger.Named("pki")}
	st, err := load(dir)
	if err != nil {
		return nil, err
	}
	a.st, a.checked = st, opts.Now()
	if _, err := a.managerLocked(); err != nil {
		return nil, err
	}
	return a, nil
}

// create makes the CA unless the directory exists: it is built in a
// temporary directory and renamed into place, so a crash or a second
// manager starting at the same moment never leaves half a CA.
func create(dir string, now time.Time) error {
	if _, err := os.Stat(filepath.Join(dir, caCert)); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".pki-new-")
	if err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	defer os.RemoveAll(tmp)
	c, err := newCA(now)
	if err != nil {
		return err
	}
	if err := writeCA(tmp, caKey, caCert, c); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(tmp, BundleFile), c.pem, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, caCert)); serr == nil {
			return nil // made by someone else just now
		}
		return fmt.Errorf("create CA in %s: %w", dir, err)
	}
	return nil
}

func newCA(now time.Time) (*ca, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the name keeps two CAs apart (a rotation) by name too.
		Subject:               pkix.Name{CommonName: "Doris Manager CA " + now.UTC().Format("2006-01-02") + " " + serial.Text(16)[:8]},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func writeCA(dir, keyName, certName string, c *ca) error {
	kb, err := EncodeKey(c.key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, keyName), kb, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, certName), c.pem, 0o644)
}

// load reads the CA files. A key that does not match its certificate
// (a rotation caught halfway) is an error; a reload then keeps the old state.
func load(dir string) (*state, error) {
	stamp, err := stampOf(dir)
	if err != nil {
		return nil, err
	}
	signing, err := readCA(dir, caKey, caCert)
	if err != nil {
		return nil, err
	}
	st := &state{signing: signing, stamp: stamp, pool: x509.NewCertPool()}
	prev, err := readCA(dir, prevKey, prevCert)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		st.prev = prev
	}
	for _, c := range []*ca{st.signing, st.prev} {
		if c != nil {
			st.pool.AddCert(c.cert)
			st.bundle = append(st.bundle, c.pem...)
		}
	}
	return st, nil
}

// stampOf identifies the CA files' versions by size and mtime.
func stampOf(dir string) (string, error) {
	var b strings.Builder
	for _, n := range []string{caKey, caCert, prevKey, prevCert} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if errors.Is(err, fs.ErrNotExist) {
			b.WriteString("-;")
			continue
		}
		if err != nil {
			return "", fmt.Errorf("CA file: %w", err)
		}
		fmt.Fprintf(&b, "%d:%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

func readCA(dir, keyName, certName string) (*ca, error) {
	cb, err := os.ReadFile(filepath.Join(dir, certName))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, keyName))
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertificate(cb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, certName), err)
	}
	key, err := ParseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, keyName), err)
	}
	if !publicEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not belong to %s (a rotation in progress? try again)", keyName, certName)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, certName))
	}
	return &ca{cert: cert, key: key, pem: cb}, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(eq)
	return ok && e.Equal(b)
}

// current returns the state, reloading it when the files changed (at most
// every ReloadEvery). Callers hold a.mu.
func (a *Authority) currentLocked() *state {
	now := a.opts.Now()
	if now.Sub(a.checked) < ReloadEvery {
		return a.st
	}
	a.checked = now
	stamp, err := stampOf(a.dir)
	if err != nil || stamp == a.st.stamp {
		return a.st
	}
	if err := a.reloadLocked(); err != nil {
		a.log.Warn("CA files changed but cannot be loaded yet; keeping the loaded CA", "error", err)
	}
	return a.st
}

func (a *Authority) reloadLocked() error {
	st, err := load(a.dir)
	if err != nil {
		return err
	}
	old := a.st
	a.st = st
	if old == nil || !bytes.Equal(old.bundle, st.bundle) {
		a.log.Info("loaded the CA", "signing", CAID(st.signing.cert), "rotating", st.prev != nil)
	}
	if _, err := a.managerLocked(); err != nil {
		return err
	}
	return nil
}

// Reload reads the CA files now.
func (a *Authority) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checked = a.opts.Now()
	if err := a.reloadLocked(); err != nil {
		return err
	}
	a.refreshLocked()
	return nil
}

// Pool is the set of trusted CAs.
func (a *Authority) Pool() *x509.CertPool {
	return a.view().st.pool
}

// Bundle is the trusted CAs as PEM.
func (a *Authority) Bundle() []byte {
	return a.view().st.bundle
}

// SigningID identifies the CA that signs agent certificates now (see CAID).
func (a *Authority) SigningID() string {
	return CAID(a.view().st.signing.cert)
}

// Rotating tells whether a rotation is under way.
func (a *Authority) Rotating() bool {
	return a.view().st.prev != nil
}

// Request is a certificate to issue.
type Request struct {
	PublicKey  crypto.PublicKey
	CommonName string
	Hosts      []string // IP addresses or DNS names
	Role       Role
	Lifetime   time.Duration
}

// Issued is an issued certificate.
type Issued struct {
	Cert   *x509.Certificate
	PEM    []byte
	Serial string // see Serial
	Issuer string // see CAID
}

// Issue signs a certificate with the signing CA.
func (a *Authority) Issue(r Request) (Issued, error) {
	a.mu.Lock()
	st := a.currentLocked()
	a.mu.Unlock()
	return issue(st.signing, r, a.opts.Now())
}

func issue(c *ca, r Request, now time.Time) (Issued, error) {
	if r.Role != Manager && r.Role != Agent {
		return Issued{}, fmt.Errorf("issue certificate: unknown role %q", r.Role)
	}
	if r.Lifetime <= 0 {
		return Issued{}, errors.New("issue certificate: lifetime must be positive")
	}
	if len(r.Hosts) == 0 {
		return Issued{}, errors.New("issue certificate: at least one host name or address is needed")
	}
	serial, err := randomSerial()
	if err != nil {
		return Issued{}, err
	}
	role, _ := url.Parse(string(r.Role))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: r.CommonName},
		NotBefore:    now.Add(-5 * time.Minute), // some clock skew between hosts
		NotAfter:     now.Add(r.Lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{role},
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	for _, h := range r.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, r.PublicKey, c.key)
	if err != nil {
		return Issued{}, fmt.Errorf("issue certificate for %s: %w", r.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Issued{}, err
	}
	return Issued{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Serial: Serial(cert), Issuer: CAID(c.cert)}, nil
}

// ManagerCertificate is the manager's current certificate (for servers
// and as the client certificate towards agents).
func (a *Authority) ManagerCertificate() (*tls.Certificate, error) {
	v := a.view()
	return v.mgr, v.mgrErr
}

// managerLocked returns the manager's certificate, reusing manager.pem
// while it is signed by the right CA, names every wanted host and has a
// third of its lifetime left; otherwise it issues and saves a new one.
func (a *Authority) managerLocked() (*tls.Certificate, error) {
	st := a.st
	want := st.managerCA()
	now := a.opts.Now()
	fits := func(leaf *x509.Certificate) bool {
		if leaf == nil || !bytes.Equal(leaf.AuthorityKeyId, want.cert.SubjectKeyId) {
			return false
		}
		if now.After(leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3)) {
			return false
		}
		for _, h := range a.opts.ManagerHosts {
			if leaf.VerifyHostname(h) != nil {
				return false
			}
		}
		return true
	}
	if a.mgr != nil && fits(a.mgrLeaf) {
		return a.mgr, nil
	}
	path := filepath.Join(a.dir, managerFile)
	if b, err := os.ReadFile(path); err == nil {
		if c, err := tls.X509KeyPair(b, b); err == nil && fits(c.Leaf) {
			a.mgr, a.mgrLeaf = &c, c.Leaf
			return a.mgr, nil
		}
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	hosts := a.opts.ManagerHosts
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	is, err := issue(want, Request{PublicKey: key.Public(), CommonName: "Doris Manager", Hosts: hosts, Role: Manager,
		Lifetime: a.opts.ManagerLifetime}, now)
	if err != nil {
		return nil, err
	}
	kb, err := EncodeKey(key)
	if err != nil {
		return nil, err
	}
	pair := append(append([]byte{}, is.PEM...), kb...)
	if err := writeFile(path, pair, 0o600); err != nil {
		return nil, fmt.Errorf("save the manager certificate: %w", err)
	}
	c, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		return nil, err
	}
	a.mgr, a.mgrLeaf = &c, c.Leaf
	a.log.Info("issued the manager certificate", "hosts", hosts, "sha256", Fingerprint(c.Leaf), "notAfter", c.Leaf.NotAfter)
	return a.mgr, nil
}

// Rotate starts a CA rotation in <dataDir>/pki: the signing CA becomes
// the previous one (still trusted) and a new CA signs from now on. It
// returns the new CA's id.
func Rotate(dataDir string, now time.Time) (string, error) {
	dir := filepath.Join(dataDir, Dir)
	st, err := load(dir)
	if err != nil {
		return "", fmt.Errorf("load the CA in %s: %w", dir, err)
	}
	if st.prev != nil {
		return "", errors.New("a CA rotation is already under way: finish it first (dorismanager ca rotate --finish)")
	}
	next, err := newCA(now)
	if err != nil {
		return "", err
	}
	// The old CA is written as the previous one before the new one
	// replaces it, so a reader sees at worst the old CA twice.
	if err := writeCA(dir, prevKey, prevCert, st.signing); err != nil {
		return "", err
	}
	if err := writeCA(dir, caKey, caCert, next); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(dir, BundleFile), append(append([]byte{}, next.pem...), st.signing.pem...), 0o644); err != nil {
		return "", err
	}
	return CAID(next.cert), nil
}

// FinishRotation drops the previous CA: certificates it signed are no
// longer trusted.
func FinishRotation(dataDir string) error {
	dir := filepath.Join(dataDir, Dir)
	st, err := load(dir)
	if err != nil {
		return fmt.Errorf("load the CA in %s: %w", dir, err)
	}
	if st.prev == nil {
		return errors.New("no CA rotation is under way")
	}
	if err := writeFile(filepath.Join(dir, BundleFile), st.signing.pem, 0o644); err != nil {
		return err
	}
	// The certificate goes first: without it the key is ignored.
	if err := os.Remove(filepath.Join(dir, prevCert)); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, prevKey))
}

// Status describes the CA in <dataDir>/pki.
type Status struct {
	SigningID string // CAID of the signing CA
	PrevID    string // CAID of the previous CA during a rotation, else ""
}

// ReadStatus reads the CA's status.
func ReadStatus(dataDir string) (Status, error) {
	st, err := load(filepath.Join(dataDir, Dir))
	if err != nil {
		return Status{}, err
	}
	s := Status{SigningID: CAID(st.signing.cert)}
	if st.prev != nil {
		s.PrevID = CAID(st.prev.cert)
	}
	return s, nil
}

// NewKey makes an ECDSA P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// EncodeKey encodes a private key as PKCS#8 PEM.
func EncodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads the first private key in PEM data.
func ParseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no private key in PEM data")
		}
		if blk.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("private key cannot sign")
		}
		return s, nil
	}
}

// ParseCertificate reads the first certificate in PEM data.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no certificate in PEM data")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// Serial is a certificate's serial number in hex.
func Serial(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// CAID identifies a CA by its subject key id (hex); IssuerID gives the
// same value for the certificates it signed.
func CAID(c *x509.Certificate) string { return hex.EncodeToString(c.SubjectKeyId) }

// IssuerID is the CAID of the CA that signed c.
func IssuerID(c *x509.Certificate) string { return hex.EncodeToString(c.AuthorityKeyId) }

// HasRole tells whether c carries role's URI SAN.
func HasRole(c *x509.Certificate, role Role) bool {
	return slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == string(role) })
}

// Fingerprint is the SHA-256 of a certificate, as colon-separated hex.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(s[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// HostOf is the host name or address a certificate was issued for: its
// first IP SAN, else its first DNS SAN.
func HostOf(c *x509.Certificate) string {
	if len(c.IPAddresses) > 0 {
		return c.IPAddresses[0].String()
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return ""
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// writeFile writes via a temp file, fsync and rename.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
