package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ulikunitz/xz"
)

type entry struct {
	name, link, body string
	typ              byte
}

func build(t *testing.T, entries []entry, compress string) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	var out bytes.Buffer
	switch compress {
	case "gz":
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		zw.Close()
	case "xz":
		xw, err := xz.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		xw.Write(raw.Bytes())
		xw.Close()
	default:
		return raw.Bytes()
	}
	return out.Bytes()
}

func TestExtract(t *testing.T) {
	good := []entry{
		{name: "pkg/", typ: tar.TypeDir},
		{name: "pkg/bin/start.sh", body: "#!/bin/sh\n", typ: tar.TypeReg},
		{name: "pkg/lib/a.jar", body: "jar", typ: tar.TypeReg},
		{name: "pkg/lib/current.jar", link: "a.jar", typ: tar.TypeSymlink},
		{name: "pkg/lib/up.jar", link: "../bin/start.sh", typ: tar.TypeSymlink},
		{name: "pkg/lib/b.jar", link: "pkg/lib/a.jar", typ: tar.TypeLink},
	}
	cases := []struct {
		name    string
		entries []entry
		unsafe  bool
	}{
		{"good", good, false},
		{"absolute path", []entry{{name: "/etc/passwd", body: "x", typ: tar.TypeReg}}, true},
		{"dot dot", []entry{{name: "pkg/../../evil", body: "x", typ: tar.TypeReg}}, true},
		{"leading dot dot", []entry{{name: "../evil", body: "x", typ: tar.TypeReg}}, true},
		{"symlink escaping", []entry{{name: "pkg/l", link: "../../etc", typ: tar.TypeSymlink}}, true},
		{"symlink absolute", []entry{{name: "l", link: "/etc/passwd", typ: tar.TypeSymlink}}, true},
		{"write through symlink", []entry{{name: "d", link: ".", typ: tar.TypeSymlink}, {name: "d/x", body: "x", typ: tar.TypeReg}}, true},
		{"hardlink escaping", []entry{{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}}, true},
		{"hardlink absolute", []entry{{name: "h", link: "/etc/passwd", typ: tar.TypeLink}}, true},
		{"char device", []entry{{name: "dev", typ: tar.TypeChar}}, true},
		{"block device", []entry{{name: "dev", typ: tar.TypeBlock}}, true},
		{"fifo", []entry{{name: "fifo", typ: tar.TypeFifo}}, true},
	}
	for _, c := range cases {
		for _, comp := range []string{"gz", "xz", ""} {
			t.Run(c.name+"/"+comp, func(t *testing.T) {
				dir := t.TempDir()
				target := filepath.Join(dir, "target")
				os.Mkdir(target, 0o755)
				err := Extract(bytes.NewReader(build(t, c.entries, comp)), target)
				var ue *UnsafeError
				if c.unsafe {
					if !errors.As(err, &ue) {
						t.Fatalf("want UnsafeError, got %v", err)
					}
					// Nothing may appear outside the target.
					ents, _ := os.ReadDir(dir)
					if len(ents) != 1 {
						t.Fatalf("entries outside target: %v", ents)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(target, "pkg/lib/current.jar"))
				if err != nil || string(b) != "jar" {
					t.Fatalf("symlink content %q %v", b, err)
				}
				if b, _ := os.ReadFile(filepath.Join(target, "pkg/lib/b.jar")); string(b) != "jar" {
					t.Fatalf("hardlink content %q", b)
				}
			})
		}
	}
}
