package topology

import (
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	clusterName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	hostName     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	shortName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	userName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	confKey      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
	paramName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	dottedDigits = regexp.MustCompile(`^[0-9.]+$`) // an IPv4 address gone wrong, not a name
	fingerprint  = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}=?$`)
)

type checker struct {
	root *yaml.Node
	dir  string
	ps   Problems
}

func (c *checker) add(field, format string, args ...any) {
	c.ps = append(c.ps, Problem{Line: lineOf(c.root, field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) check(t *Topology) {
	f := &t.File
	switch {
	case f.Cluster == "":
		c.add("cluster", "required: the cluster's name (created when the manager has none of that name)")
	case !clusterName.MatchString(f.Cluster):
		c.add("cluster", "%q: up to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", f.Cluster)
	}
	c.checkSSH(t)
	c.checkPackage(f)
	c.checkInstallDir(f.InstallDir)
	for k := range f.Params {
		if !paramName.MatchString(k) {
			c.add("params."+k, "parameter names are letters, digits and '_' (javaHome, startTimeout...)")
		}
	}
	c.checkHosts(t)
	c.checkPlacement(t)
	c.checkConfig("config.fe", f.Config.FE)
	c.checkConfig("config.be", f.Config.BE)
	c.checkConfig("config.broker", f.Config.Broker)
}

func (c *checker) checkSSH(t *Topology) {
	s := &t.SSH
	switch {
	case s.User == "":
		c.add("ssh.user", "required: the SSH user on the hosts (root, or one with sudo)")
	case !userName.MatchString(s.User):
		c.add("ssh.user", "%q is not a user name", s.User)
	}
	if s.Port == 0 {
		s.Port = 22
	} else if s.Port < 1 || s.Port > 65535 {
		c.add("ssh.port", "%d is not a port (1-65535)", s.Port)
	}
	if s.KeyFile == "" {
		c.add("ssh.keyFile", "required: the private key file the manager logs in with (e.g. ~/.ssh/id_ed25519)")
	} else if key, err := c.readFile(s.KeyFile); err != nil {
		c.add("ssh.keyFile", "%v", err)
	} else if b, _ := pem.Decode(key); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
		c.add("ssh.keyFile", "%s is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)", s.KeyFile)
	} else {
		t.SSHKey = string(key)
	}
	if s.PassphraseFile != "" {
		if b, err := c.readFile(s.PassphraseFile); err != nil {
			c.add("ssh.passphraseFile", "%v", err)
		} else {
			t.Passphrase = strings.TrimRight(string(b), "\r\n")
		}
	}
	for h, fp := range s.HostKeys {
		if !fingerprint.MatchString(fp) {
			c.add("ssh.hostKeys."+h, "%q is not a fingerprint as ssh-keygen -l prints it (SHA256:...)", fp)
		}
	}
}

// readFile reads a file named in the topology (~ and relative paths
// resolved), refusing a private file readable by others.
func (c *checker) readFile(name string) ([]byte, error) {
	p := name
	if strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("%s: no home folder to resolve ~: %v", name, err)
		}
		p = filepath.Join(home, p[2:])
	} else if !filepath.IsAbs(p) {
		p = filepath.Join(c.dir, p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s cannot be read: %v", p, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a file", p)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %04o): chmod 600 %s", p, st.Mode().Perm(), p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s cannot be read: %v", p, unwrapPath(err))
	}
	return b, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (c *checker) checkPackage(f *File) {
	p := f.Package
	if p.URL == "" {
		c.add("package.url", "required: the Doris release to install (http or https URL of apache-doris-...-bin-....tar.gz)")
	} else if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add("package.url", "%q is not an http or https URL", redactURL(p.URL))
	}
	if p.SHA256 != "" && !sha256Hex.MatchString(p.SHA256) {
		c.add("package.sha256", "%q is not a SHA-256 (64 hex digits, as sha256sum prints)", p.SHA256)
	}
	if p.SHA256 != "" && p.AllowUnverified {
		c.add("package.allowUnverified", "a package with a sha256 is verified: leave allowUnverified out")
	}
}

// redactURL hides a password in a URL that is quoted back.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "***")
			return strings.Replace(u.String(), "%2A%2A%2A", "***", 1)
		}
	}
	return s
}

func (c *checker) checkInstallDir(dir string) {
	switch {
	case dir == "":
		c.add("installDir", "required: the folder the roles are installed in on every host, e.g. /opt/doris")
	case !path.IsAbs(dir):
		c.add("installDir", "%q must be an absolute path, e.g. /opt/doris", dir)
	case path.Clean(dir) != dir:
		c.add("installDir", "%q is not a clean path: write %s", dir, path.Clean(dir))
	case dir == "/":
		c.add("installDir", "/ is refused: use a folder of its own such as /opt/doris")
	}
}

func (c *checker) checkHosts(t *Topology) {
	f := &t.File
	t.byRef = map[string]*Host{}
	if len(f.Hosts) == 0 {
		c.add("hosts", "required: at least one host (address, and optionally name and sshPort)")
		return
	}
	seenAddr := map[string]int{}
	for i := range f.Hosts {
		h := &f.Hosts[i]
		field := fmt.Sprintf("hosts[%d]", i)
		ip := net.ParseIP(h.Address)
		switch {
		case h.Address == "":
			c.add(field+".address", "required: the host's IP address (or DNS name)")
		case ip == nil && (!hostName.MatchString(h.Address) || dottedDigits.MatchString(h.Address)):
			c.add(field+".address", "%q is neither an IP address nor a host name", h.Address)
		case ip != nil && (ip.IsLoopback() || ip.IsUnspecified()):
			c.add(field+".address", "%s is not an address other hosts reach: give the host's own address", h.Address)
		}
		if ip != nil && ip.String() != h.Address {
			c.add(field+".address", "write %q as %s", h.Address, ip)
		}
		if j, dup := seenAddr[h.Address]; dup && h.Address != "" {
			c.add(field+".address", "%s is hosts[%d] already", h.Address, j)
		}
		seenAddr[h.Address] = i
		if h.Name != "" {
			if !shortName.MatchString(h.Name) {
				c.add(field+".name", "%q: up to 64 letters, digits, '.', '_' or '-'", h.Name)
			}
		}
		if h.SSHPort != 0 && (h.SSHPort < 1 || h.SSHPort > 65535) {
			c.add(field+".sshPort", "%d is not a port (1-65535)", h.SSHPort)
		} else if h.SSHPort != 0 && h.SSHPort != f.SSH.Port {
			c.add(field+".sshPort", "%d differs from ssh.port %d: one deploy reaches every host on one SSH port (installAgent takes one); set ssh.port, or deploy these hosts with another file and cluster scale-out",
				h.SSHPort, f.SSH.Port)
		}
		if h.PriorityNetworks != "" {
			for _, n := range strings.Split(h.PriorityNetworks, ";") {
				if _, _, err := net.ParseCIDR(strings.TrimSpace(n)); err != nil {
					c.add(field+".priorityNetworks", "%q is not a CIDR like 10.0.0.0/24 (several: separated by ';')", n)
				}
			}
		} else if ip == nil && h.Address != "" && hostName.MatchString(h.Address) && !dottedDigits.MatchString(h.Address) {
			c.add(field+".priorityNetworks", "required when address %q is a name: the CIDR holding the address Doris should use on this host (e.g. 10.0.0.0/24), since priority_networks cannot be derived from a name", h.Address)
		}
	}
	for i := range f.Hosts {
		h := &f.Hosts[i]
		if h.Address != "" {
			t.byRef[h.Address] = h
		}
	}
	for i := range f.Hosts {
		h := &f.Hosts[i]
		if h.Name == "" {
			continue
		}
		if other, ok := t.byRef[h.Name]; ok && other != h {
			c.add(fmt.Sprintf("hosts[%d].name", i), "%q names another host already (a name or address of %s)", h.Name, other.Address)
			continue
		}
		t.byRef[h.Name] = h
	}
	for ref := range f.SSH.HostKeys {
		if _, ok := t.byRef[ref]; !ok {
			c.add("ssh.hostKeys."+ref, "%q is not a host of hosts (names or addresses)", ref)
		}
	}
	if f.SSH.StrictHostKeys {
		pinned := map[*Host]bool{}
		for ref := range f.SSH.HostKeys {
			pinned[t.byRef[ref]] = true
		}
		for i := range f.Hosts {
			if !pinned[&f.Hosts[i]] {
				c.add(fmt.Sprintf("hosts[%d]", i), "ssh.strictHostKeys wants this host's key in ssh.hostKeys (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host)")
			}
		}
	}
}

// hostOf resolves a placement's host reference; "" when unknown.
func (t *Topology) hostOf(ref string) string {
	if h, ok := t.byRef[ref]; ok {
		return h.Address
	}
	return ""
}

func (c *checker) ref(t *Topology, field, ref string) string {
	if ref == "" {
		c.add(field, "required: a host of hosts (its name or address)")
		return ""
	}
	addr := t.hostOf(ref)
	if addr == "" && len(t.byRef) > 0 {
		c.add(field, "%q is not a host of hosts; known: %s", ref, strings.Join(refs(t), ", "))
	}
	return addr
}

func refs(t *Topology) []string {
	var out []string
	for _, h := range t.Hosts {
		if h.Name != "" {
			out = append(out, h.Name)
		} else {
			out = append(out, h.Address)
		}
	}
	return out
}

func (c *checker) checkPlacement(t *Topology) {
	f := &t.File
	used := map[string]bool{}
	seen := map[string]int{}
	masters := 0
	followers := 0
	for i := range f.FE {
		fe := &f.FE[i]
		field := fmt.Sprintf("fe[%d]", i)
		addr := c.ref(t, field+".host", fe.Host)
		if addr != "" {
			if j, dup := seen[addr]; dup {
				c.add(field+".host", "%s has an FE already (fe[%d]): one FE a host", fe.Host, j)
			}
			seen[addr] = i
			used[addr] = true
		}
		switch strings.ToUpper(fe.Type) {
		case "", "FOLLOWER":
			fe.Type = "FOLLOWER"
			followers++
		case "OBSERVER":
			fe.Type = "OBSERVER"
		default:
			c.add(field+".type", "%q: FOLLOWER or OBSERVER", fe.Type)
		}
		if fe.Master {
			masters++
			if fe.Type == "OBSERVER" {
				c.add(field+".master", "an OBSERVER cannot be the master: mark a FOLLOWER")
			} else if masters > 1 {
				c.add(field+".master", "a second master: mark one FOLLOWER master (default: the first)")
			}
		}
	}
	if len(f.FE) > 0 && followers == 0 {
		c.add("fe", "no FOLLOWER: a cluster needs a FOLLOWER to be its master (observers only replicate)")
	}
	for _, r := range []struct {
		name  string
		nodes []Node
	}{{"be", f.BE}, {"broker", f.Broker}} {
		seen := map[string]int{}
		for i, n := range r.nodes {
			field := fmt.Sprintf("%s[%d].host", r.name, i)
			addr := c.ref(t, field, n.Host)
			if addr == "" {
				continue
			}
			if j, dup := seen[addr]; dup {
				c.add(field, "%s has a %s already (%s[%d]): one a host", n.Host, strings.ToUpper(r.name), r.name, j)
			}
			seen[addr] = i
			used[addr] = true
		}
	}
	if len(f.FE)+len(f.BE)+len(f.Broker) == 0 {
		c.add("fe", "no role placed: list the FEs (fe), BEs (be) and brokers (broker) by host")
		return
	}
	for i, h := range f.Hosts {
		if h.Address != "" && !used[h.Address] {
			c.add(fmt.Sprintf("hosts[%d]", i), "%s runs no role: place an FE, BE or broker on it, or remove it", h.Address)
		}
	}
}

func (c *checker) checkConfig(field string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch {
		case !confKey.MatchString(k):
			c.add(field+"."+k, "not a conf key (letters, digits, '_' and '.')")
		case strings.ContainsAny(v, "\r\n"):
			c.add(field+"."+k, "a conf value is one line")
		case k == "priority_networks":
			for _, n := range strings.Split(v, ";") {
				if _, _, err := net.ParseCIDR(strings.TrimSpace(n)); err != nil {
					c.add(field+"."+k, "%q is not a CIDR like 10.0.0.0/24 (several: separated by ';')", strings.TrimSpace(n))
				}
			}
		}
	}
}
