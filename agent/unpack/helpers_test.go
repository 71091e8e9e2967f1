package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// entry is one archive entry for tests. A regular entry's data is body, or
// zeros entries long (generated on the fly, never held in memory).
type entry struct {
	name, link, body string
	typ              byte
	mode             int64
	zeros            int64
}

// writeTar writes entries as a tar stream to w, compressed as comp says
// ("gz", "xz" or "" for none).
func writeTar(w io.Writer, entries []entry, comp string) error {
	var cw io.WriteCloser
	switch comp {
	case "gz":
		cw, _ = gzip.NewWriterLevel(w, gzip.BestCompression)
	case "xz":
		// A small dictionary keeps the writer (and the reader, which
		// takes the size the stream declares) fast to set up.
		var err error
		if cw, err = (xz.WriterConfig{DictCap: 64 << 10, BufSize: 64 << 10}).NewWriter(w); err != nil {
			return err
		}
	default:
		cw = nopCloser{w}
	}
	tw := tar.NewWriter(cw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Format: tar.FormatGNU}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body)) + e.zeros
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.typ != tar.TypeReg {
			continue
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, zeroReader{}, e.zeros); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return cw.Close()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// build returns the archive in memory.
func build(t testing.TB, entries []entry, comp string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeTar(&b, entries, comp); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stream returns the archive as a reader that compresses on the fly, as
// far as it is read: a bomb costs only what the unpacker consumes. The
// returned counter tells how many compressed bytes were read.
func stream(t testing.TB, entries []entry, comp string) (io.Reader, *int64) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, entries, comp)) }()
	t.Cleanup(func() { pr.CloseWithError(io.ErrClosedPipe) })
	cr := &countReader{r: pr}
	return cr, &cr.n
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sandbox is a destination eight levels deep in a temp dir, with sentinel
// files at every level above it, so an escape of up to eight ".." lands
// somewhere the test watches.
type sandbox struct {
	base, dest string
	before     map[string]string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	base := t.TempDir()
	dir := base
	for i := 1; i <= 8; i++ {
		dir = filepath.Join(dir, "l"+string(rune('0'+i)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "sentinel"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &sandbox{base: base, dest: filepath.Join(dir, "dest")}
	if err := os.Mkdir(s.dest, 0o755); err != nil {
		t.Fatal(err)
	}
	s.before = s.outside(t)
	return s
}

// reset empties dest for another run.
func (s *sandbox) reset(t testing.TB) {
	t.Helper()
	if err := os.RemoveAll(s.dest); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.dest, 0o755); err != nil {
		t.Fatal(err)
	}
}

// outside describes everything under base but outside dest.
func (s *sandbox) outside(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.dest {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		m[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// check fails t if anything outside dest changed, or if any symbolic link
// in dest leads outside it (when linksToo).
func (s *sandbox) check(t testing.TB, linksToo bool) {
	t.Helper()
	after := s.outside(t)
	for p, d := range after {
		if s.before[p] != d {
			t.Fatalf("outside the destination: %s is now %q (was %q)", p, d, s.before[p])
		}
	}
	for p := range s.before {
		if _, ok := after[p]; !ok {
			t.Fatalf("outside the destination: %s is gone", p)
		}
	}
	if !linksToo {
		return
	}
	err := filepath.WalkDir(s.dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if where, ok := leadsInside(s.dest, p); !ok {
				t.Errorf("link %s leads outside the destination, to %s", p, where)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// leadsInside resolves p (in dest) as the kernel would, taking
// missing components lexically, and reports whether every step stayed in
// dest. It is written apart from the package's resolver on purpose.
func leadsInside(dest, p string) (string, bool) {
	rel, err := filepath.Rel(dest, p)
	if err != nil {
		return p, false
	}
	cur := dest
	todo := strings.Split(rel, "/")
	missing := false
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
		default:
			cur = filepath.Join(cur, c)
			if !missing {
				fi, err := os.Lstat(cur)
				if err != nil || (!fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0) {
					missing = true
				} else if fi.Mode()&fs.ModeSymlink != 0 {
					if hops++; hops > 40 {
						return cur, true // a loop leads nowhere
					}
					l, _ := os.Readlink(cur)
					if filepath.IsAbs(l) {
						cur = "/"
					} else {
						cur = filepath.Dir(cur)
					}
					todo = append(strings.Split(l, "/"), todo...)
					continue
				}
			}
		}
		if cur != dest && !strings.HasPrefix(cur, dest+"/") {
			return cur, false
		}
	}
	return cur, true
}
