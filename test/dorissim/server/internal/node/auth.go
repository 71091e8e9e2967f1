package node

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// Accounts of the FE's MySQL protocol, as Doris keeps them: a new cluster
// has root and admin with empty passwords; SET PASSWORD stores the
// mysql_native_password hash ("*" + hex SHA1(SHA1(password))) in the meta,
// which the master replicates to every FE, so a password set through any
// FE works on all of them and survives restarts.

// builtinUsers are the accounts every Doris cluster has.
var builtinUsers = map[string]bool{"root": true, "admin": true}

var (
	// SET PASSWORD [FOR 'user'[@'host']] = PASSWORD('x') | '*HASH'
	reSetPassword = regexp.MustCompile(`(?is)^SET\s+PASSWORD(?:\s+FOR\s+['"\x60]?([^'"\x60@\s]+)['"\x60]?(?:\s*@\s*['"\x60]?([^'"\x60\s]*)['"\x60]?)?)?\s*=\s*(.+)$`)
	rePasswordFn  = regexp.MustCompile(`(?is)^PASSWORD\s*\(\s*(?:'([^']*)'|"([^"]*)")\s*\)$`)
	rePasswordHex = regexp.MustCompile(`^['"](\*[0-9A-Fa-f]{40})['"]$`)
)

// passwordHash is the stored hash of user's password ("" for an empty
// one); known is false for a user the cluster does not have.
func (f *fe) passwordHash(user string) (hash string, known bool) {
	if !builtinUsers[user] {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.meta.Passwords[user], true
}

// setPassword runs SET PASSWORD on the master: the hash goes into the meta
// (saved, then pushed to the other FEs at once, as Doris replicates its
// journal), never the password itself, nor the statement into the log.
func (f *fe) setPassword(q string, s *session) (*result, error) {
	m := reSetPassword.FindStringSubmatch(q)
	user := m[1]
	if user == "" {
		user = s.user
	}
	host := m[2]
	if host == "" {
		host = "%"
	}
	if !builtinUsers[user] {
		return nil, ddlErrorf("user '%s'@'%s' does not exist", user, host)
	}
	value := strings.TrimSpace(m[3])
	var hash string
	switch {
	case rePasswordFn.MatchString(value):
		pm := rePasswordFn.FindStringSubmatch(value)
		if pw := pm[1] + pm[2]; pw != "" {
			hash = mysql.EncodePasswordHex(mysql.NativePasswordHash([]byte(pw)))
		}
	case rePasswordHex.MatchString(value):
		hash = strings.ToUpper(rePasswordHex.FindStringSubmatch(value)[1])
	case value == "''" || value == `""`:
	default:
		return nil, ddlErrorf("Password hash should be a 41-digit hexadecimal number")
	}
	f.mu.Lock()
	if hash == "" {
		delete(f.meta.Passwords, user)
	} else {
		if f.meta.Passwords == nil {
			f.meta.Passwords = map[string]string{}
		}
		f.meta.Passwords[user] = hash
	}
	f.meta.JournalID++
	err := f.meta.save(f.metaDir)
	snap := f.meta.clone()
	self := f.meta.SelfName
	f.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("write meta: %w", err)
	}
	f.log.Infof("password of '%s'@'%s' changed", user, host)
	f.pushMeta(snap, self)
	return &result{}, nil
}

// pushMeta sends the master's meta to every joined FE now, instead of at
// the next heartbeat; an FE that does not answer gets it then.
func (f *fe) pushMeta(snap *Meta, self string) {
	var wg sync.WaitGroup
	for _, x := range snap.Frontends {
		if x.Name == self || !x.Joined {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp peerResp
			addr := net.JoinHostPort(x.Host, fmt.Sprint(x.EditLogPort))
			_ = call(addr, 2*time.Second, peerReq{Op: "heartbeat", ClusterID: snap.ClusterID, Meta: snap}, &resp)
		}()
	}
	wg.Wait()
}

// authConn is a client connection during the MySQL handshake: it keeps the
// scramble the server sent (mysql_native_password checks the client's
// answer against it and the stored hash; go-mysql keeps it private), and
// shows the client's address without its port, as Doris names
// 'user'@'host' in "Access denied".
type authConn struct {
	net.Conn
	mu     sync.Mutex
	salt   []byte
	authed bool
}

func (c *authConn) RemoteAddr() net.Addr {
	a := c.Conn.RemoteAddr()
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return hostAddr{network: a.Network(), host: h}
	}
	return a
}

type hostAddr struct{ network, host string }

func (h hostAddr) Network() string { return h.network }
func (h hostAddr) String() string  { return h.host }

// Write notes the scramble of the server's packets until the login is
// done: the initial handshake (protocol 10) and an auth switch request
// (0xFE, plugin name, scramble). Each packet is written whole.
func (c *authConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.authed && len(p) > 4 {
		switch body := p[4:]; body[0] {
		case 10:
			if salt := handshakeSalt(body); salt != nil {
				c.salt = salt
			}
		case 0xFE:
			if i := strings.IndexByte(string(body[1:]), 0); i >= 0 && len(body) >= 1+i+1+20 {
				c.salt = append([]byte(nil), body[1+i+1:1+i+1+20]...)
			}
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// handshakeSalt reads the 20-byte scramble of a protocol 10 handshake:
// 8 bytes after the server version and connection id, 12 more after the
// capability, charset, status, auth data length and reserved bytes.
func handshakeSalt(body []byte) []byte {
	end := strings.IndexByte(string(body[1:]), 0)
	if end < 0 {
		return nil
	}
	part1 := 1 + end + 1 + 4
	part2 := part1 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
	if len(body) < part2+12 {
		return nil
	}
	salt := append([]byte(nil), body[part1:part1+8]...)
	return append(salt, body[part2:part2+12]...)
}

func (c *authConn) scramble() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.salt
}

func (c *authConn) loggedIn() {
	c.mu.Lock()
	c.authed = true
	c.mu.Unlock()
}

// feAuth checks logins against the FE's accounts.
type feAuth struct {
	f    *fe
	conn *authConn
}

// GetCredential answers every user as known, so that an unknown one is
// refused with "Access denied" (as Doris does) rather than a missing-user
// error; Authenticate decides.
func (a feAuth) GetCredential(string) (server.Credential, bool, error) {
	return server.Credential{Passwords: []string{"-"}, AuthPluginName: mysql.AUTH_NATIVE_PASSWORD}, true, nil
}

func (a feAuth) OnAuthSuccess(*server.Conn) error {
	a.conn.loggedIn()
	return nil
}

func (a feAuth) OnAuthFailure(*server.Conn, error) {}

// authProvider verifies mysql_native_password answers against the stored
// hashes: ErrAccessDeniedNoPassword and ErrAccessDenied become ERROR 1045
// (28000) "Access denied for user 'u'@'host' (using password: NO|YES)".
type authProvider struct{ f *fe }

func (authProvider) Validate(plugin string) bool { return plugin == mysql.AUTH_NATIVE_PASSWORD }

func (p authProvider) Authenticate(c *server.Conn, plugin string, data []byte) error {
	if plugin != mysql.AUTH_NATIVE_PASSWORD {
		return fmt.Errorf("authentication plugin %s is not supported", plugin)
	}
	empty := len(data) == 0 || (len(data) == 1 && data[0] == 0)
	hash, known := p.f.passwordHash(c.GetUser())
	switch {
	case empty && known && hash == "":
		return nil
	case empty:
		return server.ErrAccessDeniedNoPassword
	case !known || hash == "":
		return server.ErrAccessDenied
	}
	ac, ok := c.Conn.Conn.(*authConn)
	if !ok {
		return server.ErrAccessDenied
	}
	stored, err := mysql.DecodePasswordHex(hash)
	if err != nil || !mysql.CompareNativePassword(data, stored, ac.scramble()) {
		return server.ErrAccessDenied
	}
	return nil
}
