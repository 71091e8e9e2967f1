package process

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/internal/redact"
	"golang.org/x/crypto/ssh"
)

// Limits on request values.
const (
	MaxConf       = 256 << 10 // one role's config file
	MaxHosts      = 1000      // hosts in one request
	maxSSHKey     = 64 << 10
	maxInstallDir = 1024
	maxPackageURL = 2048
)

var (
	safeDir     = regexp.MustCompile(`^/[A-Za-z0-9._+\-/]*$`)
	userRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]{0,31}$`)
	fingerprint = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}=?$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// checkHost accepts an IP address or an RFC 1123 host name.
func checkHost(field, h string) error {
	if h == "" {
		return invalid("%s: host is empty", field)
	}
	if ip := net.ParseIP(h); ip != nil {
		return nil
	}
	if len(h) > 253 {
		return invalid("%s: host name is longer than 253 characters", field)
	}
	for _, label := range strings.Split(h, ".") {
		ok := len(label) >= 1 && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for i := 0; ok && i < len(label); i++ {
			c := label[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
		}
		if !ok {
			return invalid("%s: %q is not an IP address or a host name (letters, digits, '-' and '.')", field, h)
		}
	}
	return nil
}

// checkHosts validates a non-empty list of distinct hosts.
func checkHosts(field string, hosts []string) error {
	if len(hosts) == 0 {
		return invalid("%s: list at least one host", field)
	}
	if len(hosts) > MaxHosts {
		return invalid("%s: at most %d hosts per request", field, MaxHosts)
	}
	seen := map[string]bool{}
	for i, h := range hosts {
		if err := checkHost(fmt.Sprintf("%s[%d]", field, i), h); err != nil {
			return err
		}
		if seen[h] {
			return invalid("%s: host %s is listed twice", field, h)
		}
		seen[h] = true
	}
	return nil
}

// IsFingerprint reports whether s is an SSH key fingerprint as
// ssh-keygen -l prints it (SHA256:..., 43 base64 characters).
func IsFingerprint(s string) bool { return fingerprint.MatchString(s) }

// CheckHost accepts an IP address or an RFC 1123 host name; the error
// names field.
func CheckHost(field, h string) error { return checkHost(field, h) }

func checkPort(field string, p int) error {
	if p < 1 || p > 65535 {
		return invalid("%s: port %d is out of range 1..65535", field, p)
	}
	return nil
}

// checkInstallDir wants an absolute, clean path of safe characters.
func checkInstallDir(field, d string) error {
	switch {
	case d == "":
		return invalid("%s is required", field)
	case len(d) > maxInstallDir:
		return invalid("%s is longer than %d characters", field, maxInstallDir)
	case !strings.HasPrefix(d, "/"):
		return invalid("%s %q must be an absolute path, such as /opt/doris", field, d)
	case filepath.Clean(d) != d:
		return invalid("%s %q is not clean: use %q", field, d, filepath.Clean(d))
	case d == "/":
		return invalid("%s must not be the root directory", field)
	case !safeDir.MatchString(d):
		return invalid("%s %q may only contain letters, digits and . _ + - /", field, d)
	}
	for _, part := range strings.Split(d, "/") {
		if part == ".." {
			return invalid("%s %q must not contain '..'", field, d)
		}
	}
	return checkNotSystemDir(field, d)
}

// systemTrees hold the operating system and its package databases. Role
// homes are created, replaced and removed under installDir, so it may be
// neither in one of them nor above one.
var systemTrees = []string{
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/sys", "/usr",
	"/var/cache/apt", "/var/cache/dnf", "/var/cache/yum", "/var/lib/apt", "/var/lib/dnf", "/var/lib/dpkg", "/var/lib/rpm",
	"/var/lib/yum", "/var/lock", "/var/run", "/var/spool", "/tmp", "/var/tmp",
}

// sharedDirs are shared by everything on a host: an installDir may lie
// below one, but not be one (its role folders would mix with others').
var sharedDirs = []string{"/home", "/mnt", "/media", "/opt", "/root", "/srv", "/var/opt"}

// usrLocalSystem are /usr/local's own folders; any other folder below
// /usr/local is the operator's.
var usrLocalSystem = map[string]bool{"bin": true, "etc": true, "games": true, "include": true, "lib": true, "lib32": true,
	"lib64": true, "libexec": true, "man": true, "sbin": true, "share": true, "src": true}

// checkNotSystemDir refuses a clean absolute installDir that is in or above
// a system folder, or that is a folder every program shares.
func checkNotSystemDir(field, d string) error {
	const use = "use a folder of its own, such as /opt/doris"
	for _, t := range systemTrees {
		if d != t && !strings.HasPrefix(d, t+"/") {
			continue
		}
		if rest, ok := strings.CutPrefix(d, "/usr/local/"); ok && !usrLocalSystem[strings.Split(rest, "/")[0]] {
			break // the operator's folder under /usr/local
		}
		why := "a folder of the operating system"
		if t == "/tmp" || t == "/var/tmp" {
			why = "emptied at reboot"
		}
		if d == t {
			return invalid("%s %q is %s: %s", field, d, why, use)
		}
		return invalid("%s %q is inside %s, %s: %s", field, d, t, why, use)
	}
	for _, t := range systemTrees {
		if strings.HasPrefix(t, d+"/") || d == "/" {
			return invalid("%s %q holds %s, a folder of the operating system: %s", field, d, t, use)
		}
	}
	for _, s := range sharedDirs {
		if d == s {
			return invalid("%s %q is shared by everything on the host: use a folder of its own below it, such as %s/doris", field, d, s)
		}
	}
	return nil
}

func checkPackageURL(field, s string) error {
	if s == "" {
		return invalid("%s is required", field)
	}
	if len(s) > maxPackageURL {
		return invalid("%s is longer than %d characters", field, maxPackageURL)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("%s %q must be an http:// or https:// URL", field, redact.String(s))
	}
	if secret.IsSealedURL(s) {
		return invalid("%s %q: its password begins with %q, which marks a password the manager sealed: send the URL with its own password", field, redact.String(s), secret.SealedPrefix)
	}
	return nil
}

func checkUser(field, u string) error {
	if u == "" {
		return invalid("%s is required", field)
	}
	if !userRe.MatchString(u) {
		return invalid("%s %q is not a valid Unix user name", field, u)
	}
	return nil
}

// checkSSHKey parses the private key; errors never contain the key.
func checkSSHKey(key, passphrase string) error {
	if strings.TrimSpace(key) == "" {
		return invalid("sshKey is required: a PEM private key")
	}
	if len(key) > maxSSHKey {
		return invalid("sshKey is larger than %d bytes", maxSSHKey)
	}
	_, err := ssh.ParsePrivateKey([]byte(key))
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return invalid("sshKey is encrypted: send its passphrase in \"passphrase\"")
		}
		if _, err := ssh.ParsePrivateKeyWithPassphrase([]byte(key), []byte(passphrase)); err != nil {
			return invalid("sshKey could not be decrypted with the given passphrase")
		}
		return nil
	}
	if err != nil {
		return invalid("sshKey is not a PEM private key that SSH can use (OpenSSH, PKCS#1, PKCS#8 or EC)")
	}
	return nil
}

// normFENodeType checks an FE node type; empty means FOLLOWER.
func normFENodeType(field, t string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(t))
	switch u {
	case "":
		return FEFollower, nil
	case FEFollower, FEObserver:
		return u, nil
	}
	return "", invalid("%s %q is unknown: use FOLLOWER or OBSERVER", field, t)
}

// MaxParams bounds InstallServiceRequest.Params.
const MaxParams = 32

var paramKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)

func checkParams(params map[string]string) error {
	if len(params) > MaxParams {
		return invalid("params: at most %d entries", MaxParams)
	}
	for k, v := range params {
		if !paramKey.MatchString(k) {
			return invalid("params: key %q must be a letter followed by at most 63 letters, digits, '_' or '.'", k)
		}
		if len(v) > 1024 || strings.ContainsAny(v, "\x00\n\r") {
			return invalid("params.%s: at most 1024 characters on one line", k)
		}
	}
	return nil
}

// Bounds of an admin password the manager sets on a cluster.
const (
	MinAdminPassword = 8
	MaxAdminPassword = 128
)

// CheckAdminPassword checks a password the manager is to set on a cluster
// (buildCluster's adminPassword): it goes into a SET PASSWORD statement,
// so it may hold no quote, backslash, space or control character. The
// error never contains the password.
func CheckAdminPassword(field, pw string) error {
	if len(pw) < MinAdminPassword || len(pw) > MaxAdminPassword {
		return invalid("%s must be %d to %d characters long", field, MinAdminPassword, MaxAdminPassword)
	}
	for _, c := range []byte(pw) {
		if c <= ' ' || c > '~' || c == '\'' || c == '"' || c == '`' || c == '\\' {
			return invalid("%s may hold printable ASCII characters other than spaces, quotes (' \" `) and backslashes", field)
		}
	}
	return nil
}
