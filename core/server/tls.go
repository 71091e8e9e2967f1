package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/dorismanager/dorismanager/core/pki"
)

// restListener puts TLS in front of the REST listener as configured, or
// warns when the API is plain HTTP on an address others can reach.
func (s *Server) restListener(ln net.Listener) (net.Listener, error) {
	cfg := s.cfg
	switch {
	case cfg.TLSAuto:
		c, err := s.ca.ManagerCertificate()
		if err != nil {
			return nil, err
		}
		s.tlsFP = pki.Fingerprint(c.Leaf)
		s.log.Info("serving the API over TLS with a certificate from the manager's CA: clients trust the CA bundle or check the fingerprint",
			"sha256", s.tlsFP, "ca_bundle", filepath.Join(cfg.DataDir, pki.Dir, pki.BundleFile),
			"names", append(ipStrings(c.Leaf.IPAddresses), c.Leaf.DNSNames...))
		return tls.NewListener(ln, s.ca.ServerTLS()), nil
	case cfg.TLSCert != "":
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		s.tlsFP = pki.Fingerprint(c.Leaf)
		s.log.Info("serving the API over TLS", "cert", cfg.TLSCert, "sha256", s.tlsFP)
		return tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}), nil
	}
	if !loopback(ln.Addr()) {
		s.log.Warn("THE API IS PLAIN HTTP ON A NON-LOOPBACK ADDRESS: API tokens, SSH private keys and passphrases "+
			"sent to it cross the network in clear text; serve it with --tls auto (or --tls-cert/--tls-key), "+
			"or listen on 127.0.0.1 only", "addr", ln.Addr().String())
	}
	return ln, nil
}

func loopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// managerHosts are the names and addresses on the manager's certificate:
// the hosts of the listen addresses (every interface address, the host
// name and localhost for a wildcard), the advertise URL's host and the
// extra names given.
func managerHosts(cfg Config) []string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, l := range []string{cfg.Listen, cfg.AgentListen} {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			add(host)
			continue
		}
		if name, err := os.Hostname(); err == nil {
			add(name)
		}
		add("localhost")
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				add(n.IP.String())
			}
		}
	}
	if u, err := url.Parse(cfg.AdvertiseURL); err == nil {
		add(u.Hostname())
	}
	for _, h := range cfg.TLSSANs {
		add(h)
	}
	return out
}
