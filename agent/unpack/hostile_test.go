package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	reg  = tar.TypeReg
	dir  = tar.TypeDir
	sym  = tar.TypeSymlink
	hard = tar.TypeLink
)

// deep returns "d1/d2/.../dn".
func deep(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "d" + strconv.Itoa(i+1)
	}
	return strings.Join(parts, "/")
}

func ups(n int) string { return strings.TrimSuffix(strings.Repeat("../", n), "/") }

// deepDirs returns directory entries for d1 ... d1/.../dn.
func deepDirs(n int) []entry {
	var es []entry
	for i := 1; i <= n; i++ {
		es = append(es, entry{name: deep(i) + "/", typ: dir})
	}
	return es
}

func with(a []entry, b ...entry) []entry { return append(append([]entry{}, a...), b...) }

// manyZeroFiles returns n files of size zero bytes each.
func manyZeroFiles(n int, size int64) []entry {
	es := make([]entry, n)
	for i := range es {
		es[i] = entry{name: "bomb/f" + strconv.Itoa(i), typ: reg, zeros: size}
	}
	return es
}

// TestHostileArchives is the regression corpus: each archive must be
// refused with an error naming the entry (and the limit), or neutralised,
// and nothing may be written outside the destination.
func TestHostileArchives(t *testing.T) {
	small := Limits{MaxBytes: 1 << 20, MaxEntries: 100}
	cases := []struct {
		name    string
		entries []entry
		lim     Limits
		comps   []string // default: "", "gz"
		// want: "unsafe" or "limit" (typed errors) or "error" (any);
		// "" = must succeed.
		want     string
		entry    string // the entry the error must name
		inMsg    string // more text the message must hold
		maxRead  int64  // compressed bytes the unpacker may read (bombs)
		modes    map[string]fs.FileMode
		contents map[string]string
	}{
		{
			name: "two-step link chain",
			entries: with(deepDirs(8),
				entry{name: deep(8) + "/up", link: ups(8), typ: sym},
				entry{name: "esc", link: deep(8) + "/up/" + ups(8), typ: sym},
				entry{name: "esc/pwned", body: "x", typ: reg}),
			want: "unsafe", entry: "esc", inMsg: "leads outside the target",
		},
		{
			name: "three-step link chain",
			entries: with(deepDirs(3),
				entry{name: deep(3) + "/top", link: ups(3), typ: sym},
				entry{name: "x/", typ: dir},
				entry{name: "x/y/", typ: dir},
				entry{name: "x/y/mid", link: "../../" + deep(3) + "/top/" + deep(1), typ: sym},
				entry{name: "z/", typ: dir},
				entry{name: "z/esc", link: "../x/y/mid/../..", typ: sym},
				entry{name: "z/esc/l1/pwned", body: "x", typ: reg}),
			want: "unsafe", entry: "z/esc", inMsg: "leads outside the target",
		},
		{
			name: "link made escaping by later entries",
			entries: []entry{
				{name: "esc", link: "p/q/../..", typ: sym}, // p missing yet: lexically inside
				{name: "p/", typ: dir},
				{name: "p/q", link: "..", typ: sym}, // p/.. is the top: inside
			},
			want: "unsafe", entry: "esc", inMsg: "later entries",
		},
		{
			name: "four-link chain",
			entries: with(deepDirs(8),
				entry{name: deep(8) + "/v1", link: ups(8), typ: sym},             // the top
				entry{name: deep(8) + "/v2", link: "v1/" + deep(8), typ: sym},    // deep(8), via v1
				entry{name: deep(8) + "/v3", link: "v2/v1/" + deep(8), typ: sym}, // deep(8), via v2 and v1
				entry{name: deep(8) + "/v4", link: "v3/v2/v1", typ: sym},         // the top, via all
				entry{name: "esc", link: deep(8) + "/v4/" + ups(9), typ: sym}),   // lexically the top
			want: "unsafe", entry: "esc", inMsg: "leads outside",
		},
		{
			name:    "write through an inside link",
			entries: []entry{{name: "d", link: ".", typ: sym}, {name: "d/x", body: "x", typ: reg}},
			want:    "unsafe", entry: "d/x", inMsg: "symbolic link d",
		},
		{
			name:    "directory over a link",
			entries: []entry{{name: "sub/", typ: dir}, {name: "l", link: "sub", typ: sym}, {name: "l/", typ: dir}},
			want:    "unsafe", entry: "l",
		},
		{
			name:    "link loop",
			entries: []entry{{name: "a", link: "b", typ: sym}, {name: "b", link: "a", typ: sym}},
			want:    "unsafe", entry: "a", inMsg: "too many levels",
		},
		{name: "symlink lexically out", entries: []entry{{name: "pkg/l", link: "../../l7", typ: sym}}, want: "unsafe", entry: "pkg/l"},
		{name: "symlink out and back in", entries: []entry{{name: "l", link: "../dest/x", typ: sym}}, want: "unsafe", entry: "l"},
		{name: "symlink absolute", entries: []entry{{name: "l", link: "/etc/passwd", typ: sym}}, want: "unsafe", entry: "l", inMsg: "absolute"},
		{name: "symlink empty", entries: []entry{{name: "l", typ: sym}}, want: "unsafe", entry: "l"},
		{name: "dot dot", entries: []entry{{name: "../evil", body: "x", typ: reg}}, want: "unsafe", entry: "../evil", inMsg: ".."},
		{name: "dot dot inside", entries: []entry{{name: "a/../../evil", body: "x", typ: reg}}, want: "unsafe", entry: "a/../../evil"},
		{name: "dot dot dir", entries: []entry{{name: "a/../", typ: dir}}, want: "unsafe", entry: "a/../"},
		{name: "absolute", entries: []entry{{name: "/tmp/evil", body: "x", typ: reg}}, want: "unsafe", entry: "/tmp/evil", inMsg: "absolute"},
		{name: "hard link outside", entries: []entry{{name: "h", link: "../sentinel", typ: hard}}, want: "unsafe", entry: "h"},
		{name: "hard link absolute", entries: []entry{{name: "h", link: "/etc/passwd", typ: hard}}, want: "unsafe", entry: "h"},
		{name: "hard link to missing", entries: []entry{{name: "h", link: "nothing", typ: hard}}, want: "unsafe", entry: "h"},
		{name: "hard link to a directory", entries: []entry{{name: "d/", typ: dir}, {name: "h", link: "d", typ: hard}}, want: "unsafe", entry: "h"},
		{name: "hard link to the top", entries: []entry{{name: "h", link: ".", typ: hard}}, want: "unsafe", entry: "h"},
		{
			name:    "hard link to a symlink",
			entries: []entry{{name: "f", body: "x", typ: reg}, {name: "s", link: "f", typ: sym}, {name: "h", link: "s", typ: hard}},
			want:    "unsafe", entry: "h", inMsg: "not an earlier regular file",
		},
		{
			name: "hard link through a symlinked dir",
			entries: []entry{{name: "sub/f", body: "x", typ: reg}, {name: "d", link: "sub", typ: sym},
				{name: "h", link: "d/f", typ: hard}},
			want: "unsafe", entry: "h", inMsg: "symbolic link d",
		},
		{name: "char device", entries: []entry{{name: "dev", typ: tar.TypeChar}}, want: "unsafe", entry: "dev", inMsg: "device"},
		{name: "block device", entries: []entry{{name: "dev", typ: tar.TypeBlock}}, want: "unsafe", entry: "dev", inMsg: "device"},
		{name: "fifo", entries: []entry{{name: "p", typ: tar.TypeFifo}}, want: "unsafe", entry: "p", inMsg: "fifo"},
		{name: "contiguous file type", entries: []entry{{name: "c", typ: tar.TypeCont}}, want: "unsafe", entry: "c"},
		{name: "duplicate file", entries: []entry{{name: "f", body: "1", typ: reg}, {name: "f", body: "2", typ: reg}}, want: "error", entry: "f"},
		{
			name:    "file over a link",
			entries: []entry{{name: "f", body: "1", typ: reg}, {name: "l", link: "f", typ: sym}, {name: "l", body: "2", typ: reg}},
			want:    "error", entry: "l", contents: nil,
		},
		{
			name: "set-id and sticky bits",
			entries: []entry{
				{name: "bin/", typ: dir, mode: 0o1777},
				{name: "bin/su", body: "#!/bin/sh\n", typ: reg, mode: 0o4755},
				{name: "bin/sg", body: "#!/bin/sh\n", typ: reg, mode: 0o2755},
				{name: "share/", typ: dir, mode: 0o2775},
			},
			modes: map[string]fs.FileMode{"bin": fs.ModeDir | 0o777, "bin/su": 0o755, "bin/sg": 0o755, "share": fs.ModeDir | 0o775},
		},
		{
			name: "release-style relative links work",
			entries: []entry{
				{name: "pkg/lib/libx.so.1", body: "so", typ: reg},
				{name: "pkg/lib/libx.so", link: "libx.so.1", typ: sym},
				{name: "pkg/lib64", link: "lib", typ: sym},
				{name: "pkg/be/lib/libx.so", link: "../../lib64/libx.so", typ: sym},
				{name: "pkg/bin/java", link: "../jdk/bin/java", typ: sym}, // dangling, inside
				{name: "pkg/lib/copy.so", link: "pkg/lib/libx.so.1", typ: hard},
			},
			contents: map[string]string{"pkg/be/lib/libx.so": "so", "pkg/lib/copy.so": "so"},
		},
		{
			name:    "single huge entry (gzip bomb header)",
			entries: []entry{{name: "bomb/huge", typ: reg, zeros: 1 << 40}},
			lim:     small, comps: []string{"gz", "xz"},
			want: "limit", entry: "bomb/huge", inMsg: "1048576", maxRead: 64 << 10,
		},
		{
			name:    "gzip bomb",
			entries: manyZeroFiles(64, 256<<10), // 16 MiB of zeros
			lim:     small, comps: []string{"gz"},
			want: "limit", entry: "bomb/f4", inMsg: "bytes would exceed the limit of 1048576", maxRead: 64 << 10,
		},
		{
			name:    "xz bomb",
			entries: manyZeroFiles(64, 256<<10),
			lim:     small, comps: []string{"xz"},
			want: "limit", entry: "bomb/f4", inMsg: "bytes would exceed the limit of 1048576", maxRead: 64 << 10,
		},
		{
			name:    "too many entries",
			entries: manyZeroFiles(101, 0),
			lim:     small,
			want:    "limit", entry: "bomb/f100", inMsg: "entries would exceed the limit of 100",
		},
		{
			name:    "entries at the limit",
			entries: manyZeroFiles(100, 0),
			lim:     small,
		},
	}
	for _, c := range cases {
		comps := c.comps
		if comps == nil {
			comps = []string{"", "gz"}
		}
		for _, comp := range comps {
			t.Run(c.name+"/"+comp, func(t *testing.T) {
				sb := newSandbox(t)
				r, read := stream(t, c.entries, comp)
				err := Extract(context.Background(), r, sb.dest, c.lim)
				sb.check(t, err == nil)
				if c.maxRead > 0 && *read > c.maxRead {
					t.Errorf("read %d compressed bytes, want at most %d", *read, c.maxRead)
				}
				if c.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					for p, m := range c.modes {
						fi, err := os.Lstat(filepath.Join(sb.dest, p))
						if err != nil || fi.Mode() != m {
							t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, m)
						}
					}
					for p, want := range c.contents {
						b, err := os.ReadFile(filepath.Join(sb.dest, p))
						if err != nil || string(b) != want {
							t.Errorf("%s: %q (%v), want %q", p, b, err, want)
						}
					}
					return
				}
				if err == nil {
					t.Fatal("accepted")
				}
				var ue *UnsafeError
				var le *LimitError
				switch {
				case c.want == "unsafe" && !errors.As(err, &ue):
					t.Fatalf("want an UnsafeError, got %v", err)
				case c.want == "limit" && !errors.As(err, &le):
					t.Fatalf("want a LimitError, got %v", err)
				}
				if !strings.Contains(err.Error(), strconv.Quote(c.entry)) && !strings.Contains(err.Error(), " "+c.entry+":") {
					t.Errorf("error does not name the entry %q: %v", c.entry, err)
				}
				if !strings.Contains(err.Error(), c.inMsg) {
					t.Errorf("error does not say %q: %v", c.inMsg, err)
				}
			})
		}
	}
}

// A cancelled context stops the unpack between entries.
func TestExtractStopsOnCancel(t *testing.T) {
	sb := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Extract(ctx, strings.NewReader(string(build(t, manyZeroFiles(3, 1), "gz"))), sb.dest, Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestLimitsFor(t *testing.T) {
	cases := []struct {
		archive int64
		want    Limits
	}{
		{50 << 20, Limits{MaxBytes: 200 << 20, MaxEntries: DefaultMaxEntries}},
		{0, Limits{MaxBytes: DefaultMaxBytes, MaxEntries: DefaultMaxEntries}},
		{1 << 62, Limits{MaxBytes: math.MaxInt64, MaxEntries: DefaultMaxEntries}},
	}
	for _, c := range cases {
		if got := LimitsFor(c.archive); got != c.want {
			t.Errorf("LimitsFor(%d) = %+v, want %+v", c.archive, got, c.want)
		}
	}
}
