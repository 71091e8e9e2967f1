package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fuzzParts are the path components fuzzed names and link targets are made
// of: few enough that entries meet (links through links, files under
// links, "..", duplicates).
var fuzzParts = []string{"a", "b", "l", "m", "..", ".", "", "d1"}

// fuzzEntries turns bytes into archive entries, four or five bytes each.
func fuzzEntries(data []byte) []entry {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	path := func() string {
		b := next()
		parts := make([]string, 1+int(b&3))
		for i := range parts {
			parts[i] = fuzzParts[next()%byte(len(fuzzParts))]
		}
		p := strings.Join(parts, "/")
		if b&0x80 != 0 {
			p = "/" + p
		}
		return p
	}
	types := []byte{tar.TypeReg, tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar}
	var es []entry
	for len(data) > 0 && len(es) < 64 {
		op := next()
		e := entry{typ: types[op&7], name: path(), mode: int64(next())<<4 | 0o7}
		switch e.typ {
		case tar.TypeReg:
			e.body = "x"
			e.zeros = int64(next()) << (op >> 5) // up to 32 KiB: past the cap
		case tar.TypeSymlink, tar.TypeLink:
			e.link = path()
		}
		es = append(es, e)
	}
	return es
}

// FuzzUnpack: whatever the archive, after Extract nothing outside the
// destination has changed, no link inside it leads outside, and the caps
// hold. kind picks what data is: a raw archive (0), the same gzip'd (1),
// or entries built from it (2: plain tar, 3: gzip, 4: xz).
func FuzzUnpack(f *testing.F) {
	seeds := [][]entry{
		with(deepDirs(8),
			entry{name: deep(8) + "/up", link: ups(8), typ: sym},
			entry{name: "esc", link: deep(8) + "/up/" + ups(8), typ: sym},
			entry{name: "esc/pwned", body: "x", typ: reg}),
		{{name: "esc", link: "p/q/../..", typ: sym}, {name: "p/", typ: dir}, {name: "p/q", link: "..", typ: sym}},
		{{name: "f", body: "x", typ: reg}, {name: "s", link: "f", typ: sym}, {name: "h", link: "s", typ: hard}},
		{{name: "d", link: ".", typ: sym}, {name: "d/x", body: "x", typ: reg}},
		{{name: "pkg/lib/a.so.1", body: "so", typ: reg, mode: 0o4755}, {name: "pkg/lib/a.so", link: "a.so.1", typ: sym},
			{name: "pkg/lib64", link: "lib", typ: sym}, {name: "pkg/b", link: "pkg/lib/a.so.1", typ: hard}},
		manyZeroFiles(40, 200),
	}
	for _, s := range seeds {
		f.Add(byte(0), build(f, s, ""))
	}
	f.Add(byte(1), build(f, seeds[0], ""))
	f.Add(byte(2), []byte{3, 1, 0, 0, 7, 3, 1, 1, 2, 4, 4, 4, 4, 0, 1, 0, 1, 2, 9})
	f.Add(byte(3), []byte{0, 0, 1, 0, 255, 0, 2, 0, 0x40})
	f.Add(byte(4), []byte{4, 1, 2, 4, 3, 2, 3, 4, 4, 4})

	lim := Limits{MaxBytes: 4096, MaxEntries: 32}
	// One sandbox per fuzzing process, its destination emptied each run:
	// the snapshot of the outside is taken once.
	sb := newSandbox(f)
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		var archive []byte
		switch kind % 5 {
		case 0:
			archive = data
		case 1:
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			archive = b.Bytes()
		default:
			var err error
			comp := [...]string{"", "gz", "xz"}[kind%5-2]
			var b bytes.Buffer
			if err = writeTar(&b, fuzzEntries(data), comp); err != nil {
				t.Skip(err) // the writer refuses some headers
			}
			archive = b.Bytes()
		}
		sb.reset(t)
		err := Extract(context.Background(), bytes.NewReader(archive), sb.dest, lim)
		sb.check(t, err == nil)
		if err != nil {
			return
		}
		var n, size int64
		seen := map[uint64]bool{}
		werr := filepath.WalkDir(sb.dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == sb.dest {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s keeps set-id or sticky bits: %v", p, fi.Mode())
			}
			if d.IsDir() {
				return nil
			}
			n++
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && !seen[st.Ino] {
				seen[st.Ino] = true
				size += fi.Size()
			}
			return nil
		})
		if werr != nil {
			t.Fatal(werr)
		}
		if n > lim.MaxEntries || size > lim.MaxBytes {
			t.Fatalf("caps not honoured: %d entries (limit %d), %d bytes (limit %d)", n, lim.MaxEntries, size, lim.MaxBytes)
		}
	})
}
