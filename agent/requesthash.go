package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// A request's hash binds its requestId to the work it asks for: a re-sent
// request is answered from the record only when its hash matches the
// recorded one. It covers the fields that say what runs, where and on
// what (argv, env, dir, stdin, url, checksums, dest, path, data, mode, the
// task whose log gets the output). It leaves out limits a re-send may
// change without changing the work: timeoutSeconds and maxBytes. Defaults
// are applied first, so a field left out and its default hash alike.

// canon writes a canonical encoding into a SHA-256: the kind, then every
// field as its name and value, each prefixed with its length, in a fixed
// order. Lengths make the encoding unambiguous whatever the bytes are.
type canon struct{ h hash.Hash }

func newCanon(kind string) *canon {
	c := &canon{h: sha256.New()}
	c.bytes("kind", []byte(kind))
	return c
}

func (c *canon) put(b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	c.h.Write(n[:])
	c.h.Write(b)
}

func (c *canon) bytes(name string, v []byte) {
	c.put([]byte(name))
	c.put(v)
}

func (c *canon) str(name, v string) { c.bytes(name, []byte(v)) }

func (c *canon) list(name string, vs []string) {
	c.str(name, strconv.Itoa(len(vs)))
	for _, v := range vs {
		c.put([]byte(v))
	}
}

func (c *canon) dict(name string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c.str(name, strconv.Itoa(len(keys)))
	for _, k := range keys {
		c.put([]byte(k))
		c.put([]byte(m[k]))
	}
}

func (c *canon) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

func execHash(req wire.Exec) string {
	nofile := req.NoFile
	if nofile == 0 {
		nofile = DefaultNoFile
	}
	c := newCanon("exec")
	c.str("taskId", req.TaskID)
	c.list("argv", req.Argv)
	c.dict("env", req.Env)
	c.str("dir", req.Dir)
	c.bytes("stdin", req.Stdin)
	c.str("noFile", strconv.FormatUint(nofile, 10))
	c.str("detach", strconv.FormatBool(req.Detach))
	return c.sum()
}

func downloadHash(req wire.Download) string {
	c := newCanon("download")
	c.str("taskId", req.TaskID)
	c.str("url", req.URL)
	c.str("sha256", strings.ToLower(strings.TrimSpace(req.SHA256)))
	c.str("dest", req.Dest)
	c.str("unpack", strconv.FormatBool(req.Unpack))
	// Last and only when given, so a request without it hashes as it did
	// before agents knew of it.
	if sum := strings.ToLower(strings.TrimSpace(req.SHA512)); sum != "" {
		c.str("sha512", sum)
	}
	return c.sum()
}

func writeHash(req wire.WriteFile, mode os.FileMode) string {
	data := sha256.Sum256(req.Data)
	c := newCanon("write")
	c.str("path", req.Path)
	c.bytes("data", data[:])
	c.str("mode", strconv.FormatUint(uint64(mode.Perm()), 8))
	return c.sum()
}
