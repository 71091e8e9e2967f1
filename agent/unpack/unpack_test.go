package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

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
				err := Extract(context.Background(), bytes.NewReader(build(t, c.entries, comp)), target, Limits{})
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
