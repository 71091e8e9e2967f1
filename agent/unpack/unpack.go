// Package unpack extracts tar archives (.tar.gz, .tgz, .tar.xz, plain .tar)
// safely: every entry must stay inside the target directory.
package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"
)

// UnsafeError reports an archive entry that was refused.
type UnsafeError struct {
	Entry  string
	Reason string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("unsafe archive entry %q: %s", e.Entry, e.Reason)
}

// Open returns a tar reader over r, detecting gzip and xz compression from
// the first bytes.
func Open(r io.Reader) (*tar.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return tar.NewReader(zr), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return tar.NewReader(xr), nil
	default:
		return tar.NewReader(br), nil
	}
}

// cleanName validates an entry name and returns it as a clean relative path.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", &UnsafeError{name, "empty name"}
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return "", &UnsafeError{name, "absolute path"}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", &UnsafeError{name, "path contains .."}
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// inside reports whether the slash path p (relative to the root) stays
// inside the root after lexical cleaning.
func inside(p string) bool {
	c := path.Clean(p)
	return c != ".." && !strings.HasPrefix(c, "../") && !path.IsAbs(c)
}

// Extract unpacks the archive read from r into dir, which must exist and
// should be empty. It refuses absolute names, "..", links that point outside
// dir, device files, and writing through a symbolic link.
func Extract(r io.Reader, dir string) error {
	tr, err := Open(r)
	if err != nil {
		return err
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := noLinkInPath(dir, name); err != nil {
			return err
		}
		mode := os.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg, tar.TypeRegA:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscallNoFollow, mode)
			if err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		case tar.TypeSymlink:
			ln := hdr.Linkname
			if ln == "" || path.IsAbs(ln) {
				return &UnsafeError{hdr.Name, "symbolic link to absolute path " + ln}
			}
			if !inside(path.Join(path.Dir(name), ln)) {
				return &UnsafeError{hdr.Name, "symbolic link escapes the target: " + ln}
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(ln, target); err != nil {
				return err
			}
		case tar.TypeLink:
			ln, err := cleanName(hdr.Linkname)
			if err != nil || ln == "" {
				return &UnsafeError{hdr.Name, "hard link escapes the target: " + hdr.Linkname}
			}
			if err := noLinkInPath(dir, ln); err != nil {
				return err
			}
			src := filepath.Join(dir, filepath.FromSlash(ln))
			fi, err := os.Lstat(src)
			if err != nil || !fi.Mode().IsRegular() {
				return &UnsafeError{hdr.Name, "hard link to a missing or non-regular entry " + hdr.Linkname}
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Link(src, target); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
			continue
		default:
			return &UnsafeError{hdr.Name, fmt.Sprintf("entry type %q (devices, fifos and the like) is not allowed", hdr.Typeflag)}
		}
	}
}

// noLinkInPath refuses a name whose parent directories (already extracted)
// include a symbolic link, so no write can be redirected outside dir.
func noLinkInPath(dir, name string) error {
	parts := strings.Split(name, "/")
	cur := dir
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return &UnsafeError{name, "path goes through a symbolic link"}
		}
	}
	return nil
}
