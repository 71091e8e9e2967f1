// Package conf reads Doris configuration files the way the Doris processes do:
// "key = value" lines, '#' comments, values may reference ${VAR} or $VAR from the
// process environment (DORIS_HOME among them), surrounding quotes are dropped.
package conf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// Conf holds the keys of one file in file order; later keys win.
type Conf struct {
	values map[string]string
}

// Parse reads r. lookup resolves variables; nil means os.LookupEnv.
func Parse(r io.Reader, lookup func(string) (string, bool)) (*Conf, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	c := &Conf{values: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key = value", line, text)
		}
		key = strings.TrimSpace(key)
		if key == "" {
			return nil, fmt.Errorf("line %d: empty key", line)
		}
		value = unquote(strings.TrimSpace(value))
		// Earlier keys of the same file are visible to later ones, as in the
		// scripts that export upper-case keys while reading.
		c.values[key] = Expand(value, func(name string) (string, bool) {
			if v, ok := c.values[name]; ok {
				return v, true
			}
			return lookup(name)
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read conf: %w", err)
	}
	return c, nil
}

// ParseFile parses the file at path.
func ParseFile(path string, lookup func(string) (string, bool)) (*Conf, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Parse(f, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// Expand replaces ${NAME} and $NAME; unknown names expand to "".
func Expand(s string, lookup func(string) (string, bool)) string {
	return os.Expand(s, func(name string) string {
		v, _ := lookup(name)
		return v
	})
}

// Get returns the value of key and whether it was set.
func (c *Conf) Get(key string) (string, bool) {
	v, ok := c.values[key]
	return v, ok
}

// Merge sets every key of o over c, as a later file read after c does
// (be_custom.conf after be.conf).
func (c *Conf) Merge(o *Conf) {
	for k, v := range o.values {
		c.values[k] = v
	}
}

// String returns the value of key or def.
func (c *Conf) String(key, def string) string {
	if v, ok := c.values[key]; ok && v != "" {
		return v
	}
	return def
}

// Port returns key as a TCP port, def when unset.
func (c *Conf) Port(key string, def int) (int, error) {
	v, ok := c.values[key]
	if !ok || v == "" {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s = %q is not a port number", key, v)
	}
	return p, nil
}

// StorageRoot is one entry of storage_root_path.
type StorageRoot struct {
	Path   string
	Medium string // HDD or SSD
}

// StorageRoots splits storage_root_path: entries separated by ';', each a path
// with optional ',' properties: a bare medium ("SSD"), "medium:SSD" or
// "capacity:50". A ".SSD"/".HDD" path extension also sets the medium.
func StorageRoots(v string) ([]StorageRoot, error) {
	var out []StorageRoot
	for _, entry := range strings.Split(v, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ",")
		root := StorageRoot{Path: strings.TrimSpace(parts[0]), Medium: "HDD"}
		if root.Path == "" {
			return nil, fmt.Errorf("storage_root_path entry %q has no path", entry)
		}
		switch {
		case strings.HasSuffix(strings.ToUpper(root.Path), ".SSD"):
			root.Medium = "SSD"
		case strings.HasSuffix(strings.ToUpper(root.Path), ".HDD"):
			root.Medium = "HDD"
		}
		for _, p := range parts[1:] {
			p = strings.TrimSpace(p)
			k, val, hasColon := strings.Cut(p, ":")
			if !hasColon {
				// Legacy forms: a bare medium or a bare capacity in GB.
				k, val = "medium", p
				if _, err := strconv.Atoi(p); err == nil {
					k = "capacity"
				}
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "medium":
				m := strings.ToUpper(strings.TrimSpace(val))
				if m != "SSD" && m != "HDD" {
					return nil, fmt.Errorf("storage_root_path entry %q: unknown medium %q", entry, val)
				}
				root.Medium = m
			case "capacity":
				if _, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64); err != nil {
					return nil, fmt.Errorf("storage_root_path entry %q: bad capacity %q", entry, val)
				}
			default:
				return nil, fmt.Errorf("storage_root_path entry %q: unknown property %q", entry, k)
			}
		}
		out = append(out, root)
	}
	return out, nil
}

// ErrNoPriorityMatch is returned when priority_networks matches no local address.
var ErrNoPriorityMatch = fmt.Errorf("ip address range configured for priority_networks does not include the current IP address")

// ChooseHost picks the address a node announces, as Doris's FrontendOptions
// and BackendOptions do: it walks the host's addresses in their order (addrs,
// interface by interface) and takes the first IPv4 address inside any of
// priority_networks (CIDRs or plain IPs, ';'-separated); without
// priority_networks the first non-loopback IPv4 address, else the loopback
// address. Releases differ when nothing matches and for loopback addresses:
// legacy ones (Doris before 2.0) never match a loopback address and fall
// back to it when nothing matches, so the node starts and announces
// 127.0.0.1; later ones may match it and refuse to start when nothing
// matches (ErrNoPriorityMatch).
func ChooseHost(priorityNetworks string, addrs []net.IP, legacy bool) (string, error) {
	var nets []*net.IPNet
	for _, p := range strings.Split(priorityNetworks, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			p += "/32"
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return "", fmt.Errorf("priority_networks: %q is not a CIDR: %w", p, err)
		}
		nets = append(nets, n)
	}
	loopback := ""
	for _, a := range addrs {
		if a.To4() == nil {
			continue
		}
		if a.IsLoopback() {
			loopback = a.String()
			if len(nets) == 0 || legacy {
				continue
			}
		}
		if len(nets) == 0 {
			return a.String(), nil
		}
		for _, n := range nets {
			if n.Contains(a) {
				return a.String(), nil
			}
		}
	}
	if len(nets) > 0 && !legacy {
		return "", ErrNoPriorityMatch
	}
	if loopback == "" {
		loopback = "127.0.0.1"
	}
	return loopback, nil
}

// LocalAddrs lists the IP addresses of this host's interfaces.
func LocalAddrs() ([]net.IP, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out, nil
}
