// Package mysqlsim is a small MySQL-protocol server for unit tests of the
// manager's SQL to Doris FEs: it checks mysql_native_password logins
// against the accounts it keeps, changes them with SET PASSWORD as Doris
// does, answers canned result sets, and records who ran what. The real
// FE imitation (test/dorissim) runs as a process; this one runs inside a
// test.
package mysqlsim

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Result is a canned answer to a query: columns and rows of strings.
type Result struct {
	Columns []string
	Rows    [][]string
}

// Server is one listening FE.
type Server struct {
	ln net.Listener

	mu        sync.Mutex
	passwords map[string]string // user -> password
	results   map[string]Result // query (exact text) -> answer
	failures  map[string]string // statement prefix -> error message
	logins    []string          // "user:ok" / "user:denied", in order
	queries   []string          // "user: query", in order
	conns     map[net.Conn]bool
	closed    bool
}

// Start listens on 127.0.0.1 and serves until the test ends. accounts are
// the users and their passwords ("" for none).
func Start(t testing.TB, accounts map[string]string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, passwords: map[string]string{}, results: map[string]Result{}, failures: map[string]string{},
		conns: map[net.Conn]bool{}}
	for u, p := range accounts {
		s.passwords[u] = p
	}
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the server's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// SetResult makes the server answer query with r.
func (s *Server) SetResult(query string, r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[query] = r
}

// SetError makes statements starting with prefix fail with ERROR 1105 and
// msg, where "%s" stands for the statement (Doris quotes it in syntax
// errors); an empty msg removes the failure.
func (s *Server) SetError(prefix, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg == "" {
		delete(s.failures, prefix)
		return
	}
	s.failures[prefix] = msg
}

// SetPassword changes an account's password behind the client's back.
func (s *Server) SetPassword(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[user] = password
}

// Password is an account's current password.
func (s *Server) Password(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.passwords[user]
}

// Logins lists every login attempt as "user:ok" or "user:denied".
func (s *Server) Logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logins...)
}

// Queries lists every statement run, as "user: statement".
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// Close stops listening and drops every connection.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			_ = s.session(&conn{c: c, r: bufio.NewReader(c)})
		}()
	}
}

// Capabilities the server announces: protocol 4.1, secure connection,
// plugin auth with length-encoded data, transactions; no database in the
// handshake, no connect attributes, classic EOF packets.
const capabilities = 1 | 4 | 1<<9 | 1<<13 | 1<<15 | 1<<19 | 1<<21

const (
	comQuit  = 0x01
	comQuery = 0x03
	comPing  = 0x0e
)

var reSetPassword = regexp.MustCompile(`(?is)^SET\s+PASSWORD(?:\s+FOR\s+'([^']+)'(?:@'[^']*')?)?\s*=\s*PASSWORD\('([^']*)'\)$`)

func (s *Server) session(c *conn) error {
	salt := make([]byte, 20)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	for i := range salt { // the scramble is sent as a string: no NUL
		salt[i] = salt[i]%94 + 33
	}
	hs := []byte{10}
	hs = append(hs, "5.7.99\x00"...)
	hs = append(hs, 1, 0, 0, 0)
	hs = append(hs, salt[:8]...)
	hs = append(hs, 0)
	hs = binary.LittleEndian.AppendUint16(hs, capabilities&0xffff)
	hs = append(hs, 33)
	hs = binary.LittleEndian.AppendUint16(hs, 2)
	hs = binary.LittleEndian.AppendUint16(hs, capabilities>>16)
	hs = append(hs, 21)
	hs = append(hs, make([]byte, 10)...)
	hs = append(hs, salt[8:]...)
	hs = append(hs, 0)
	hs = append(hs, "mysql_native_password\x00"...)
	if err := c.write(hs); err != nil {
		return err
	}
	resp, err := c.read()
	if err != nil {
		return err
	}
	user, auth, err := parseHandshakeResponse(resp)
	if err != nil {
		return err
	}
	s.mu.Lock()
	pw, known := s.passwords[user]
	s.mu.Unlock()
	ok := known && checkNative(auth, pw, salt)
	s.mu.Lock()
	s.logins = append(s.logins, user+map[bool]string{true: ":ok", false: ":denied"}[ok])
	s.mu.Unlock()
	if !ok {
		using := "YES"
		if len(auth) == 0 {
			using = "NO"
		}
		host, _, _ := net.SplitHostPort(c.c.RemoteAddr().String())
		return c.writeErr(1045, "28000", fmt.Sprintf("Access denied for user '%s'@'%s' (using password: %s)", user, host, using))
	}
	if err := c.writeOK(); err != nil {
		return err
	}
	for {
		c.seq = 0
		p, err := c.read()
		if err != nil {
			return err
		}
		if len(p) == 0 {
			return io.ErrUnexpectedEOF
		}
		switch p[0] {
		case comQuit:
			return nil
		case comPing:
			err = c.writeOK()
		case comQuery:
			err = s.query(c, user, string(p[1:]))
		default:
			err = c.writeErr(1047, "08S01", "Unknown command")
		}
		if err != nil {
			return err
		}
	}
}

func (s *Server) query(c *conn, user, q string) error {
	q = strings.TrimSpace(q)
	s.mu.Lock()
	s.queries = append(s.queries, user+": "+q)
	r, canned := s.results[q]
	var fail string
	for prefix, msg := range s.failures {
		if strings.HasPrefix(q, prefix) {
			fail = strings.ReplaceAll(msg, "%s", q)
		}
	}
	s.mu.Unlock()
	if fail != "" {
		return c.writeErr(1105, "HY000", fail)
	}
	if m := reSetPassword.FindStringSubmatch(q); m != nil {
		target := m[1]
		if target == "" {
			target = user
		}
		s.mu.Lock()
		_, known := s.passwords[target]
		if known {
			s.passwords[target] = m[2]
		}
		s.mu.Unlock()
		if !known {
			return c.writeErr(1105, "HY000", fmt.Sprintf("errCode = 2, detailMessage = user '%s'@'%%' does not exist", target))
		}
		return c.writeOK()
	}
	if !canned {
		return c.writeOK()
	}
	return c.writeResult(r)
}

// checkNative verifies a mysql_native_password answer: the client sends
// SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))); an empty password sends nothing.
func checkNative(auth []byte, password string, salt []byte) bool {
	if password == "" {
		return len(auth) == 0
	}
	if len(auth) != sha1.Size {
		return false
	}
	stage1 := sha1.Sum([]byte(password))
	stage2 := sha1.Sum(stage1[:])
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2[:])
	mix := h.Sum(nil)
	got := make([]byte, sha1.Size)
	for i := range got {
		got[i] = auth[i] ^ mix[i]
	}
	again := sha1.Sum(got)
	return subtle.ConstantTimeCompare(again[:], stage2[:]) == 1
}

// parseHandshakeResponse reads the user and auth data of a 4.1 handshake
// response: capabilities, max packet, charset, 23 filler bytes, the user
// (NUL-terminated), the auth data (length-encoded).
func parseHandshakeResponse(p []byte) (user string, auth []byte, err error) {
	if len(p) < 33 {
		return "", nil, fmt.Errorf("handshake response of %d bytes", len(p))
	}
	rest := p[32:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("handshake response without a user")
	}
	user, rest = string(rest[:i]), rest[i+1:]
	if len(rest) == 0 {
		return user, nil, nil
	}
	n := int(rest[0])
	if n >= 251 || len(rest) < 1+n {
		return "", nil, fmt.Errorf("handshake response with bad auth data")
	}
	return user, rest[1 : 1+n], nil
}

type conn struct {
	c   net.Conn
	r   *bufio.Reader
	seq byte
}

func (c *conn) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	c.seq = h[3] + 1
	p := make([]byte, n)
	_, err := io.ReadFull(c.r, p)
	return p, err
}

func (c *conn) write(p []byte) error {
	h := []byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), c.seq}
	c.seq++
	_, err := c.c.Write(append(h, p...))
	return err
}

func (c *conn) writeOK() error { return c.write([]byte{0, 0, 0, 2, 0, 0, 0}) }

func (c *conn) writeEOF() error { return c.write([]byte{0xfe, 0, 0, 2, 0}) }

func (c *conn) writeErr(code uint16, state, msg string) error {
	p := []byte{0xff}
	p = binary.LittleEndian.AppendUint16(p, code)
	p = append(p, '#')
	p = append(p, state...)
	return c.write(append(p, msg...))
}

func lenenc(b []byte, s string) []byte {
	if len(s) >= 251 {
		b = append(b, 0xfc)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	} else {
		b = append(b, byte(len(s)))
	}
	return append(b, s...)
}

// writeResult sends a text result set: column count, definitions, EOF,
// rows, EOF.
func (c *conn) writeResult(r Result) error {
	if err := c.write([]byte{byte(len(r.Columns))}); err != nil {
		return err
	}
	for _, col := range r.Columns {
		var d []byte
		for _, s := range []string{"def", "", "", "", col, col} {
			d = lenenc(d, s)
		}
		d = append(d, 0x0c, 33, 0, 0, 1, 0, 0, 0xfd, 0, 0, 0, 0, 0)
		if err := c.write(d); err != nil {
			return err
		}
	}
	if err := c.writeEOF(); err != nil {
		return err
	}
	for _, row := range r.Rows {
		var d []byte
		for _, v := range row {
			d = lenenc(d, v)
		}
		if err := c.write(d); err != nil {
			return err
		}
	}
	return c.writeEOF()
}
