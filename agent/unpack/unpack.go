// Package unpack extracts tar archives (.tar.gz, .tgz, .tar.xz, plain .tar)
// into a directory so that nothing lands, or points, outside it.
//
// Every file operation goes through an os.Root opened on the target, so no
// entry can resolve outside it whatever links earlier entries made. On top
// of that the archive is held to a policy: no absolute names or "..", no
// writes through a symbolic link, symbolic links only to places inside
// (checked by resolving them through the links that exist), hard links only
// to earlier regular entries, no devices, fifos or sockets, and caps on the
// bytes and entries unpacked.
//
// os.Root (openat with O_NOFOLLOW, one component at a time) is used rather
// than openat2's RESOLVE_BENEATH: it works on the older kernels Doris hosts
// still run (openat2 came with Linux 5.6; CentOS 7 and RHEL 8 lack it).
package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
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

// LimitError reports the entry at which an archive went over a cap.
type LimitError struct {
	Entry string
	What  string // "bytes" or "entries"
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("archive entry %q: unpacked %s would exceed the limit of %d", e.Entry, e.What, e.Limit)
}

// Defaults for Limits left zero.
const (
	// DefaultMaxEntries is far above a Doris release (a few thousand
	// entries) and far below what fills a file system's inodes.
	DefaultMaxEntries = 1_000_000
	// ExpansionRatio times the archive size limit is the default cap on
	// unpacked bytes: releases (jars, binaries) compress about 2-3x.
	ExpansionRatio = 4
	// DefaultMaxBytes is ExpansionRatio times the agent's default download
	// limit of 8 GiB, for callers that know no archive limit.
	DefaultMaxBytes = ExpansionRatio * (8 << 30)
)

// Limits cap what one archive may unpack to. Zero fields take the defaults.
type Limits struct {
	MaxBytes   int64 // sum of the sizes of all entries
	MaxEntries int64 // headers of any kind
}

// LimitsFor returns the default limits for an archive of at most
// archiveLimit bytes: ExpansionRatio times that in unpacked bytes.
func LimitsFor(archiveLimit int64) Limits {
	l := Limits{MaxEntries: DefaultMaxEntries}
	switch {
	case archiveLimit > math.MaxInt64/ExpansionRatio:
		l.MaxBytes = math.MaxInt64
	case archiveLimit > 0:
		l.MaxBytes = archiveLimit * ExpansionRatio
	}
	return l.withDefaults()
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
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
		// The decoder's dictionary is the size the stream declares
		// (8 MiB for xz -6, 64 MiB for -9): it cannot be smaller, since
		// matches may reach back that far.
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return tar.NewReader(xr), nil
	default:
		return tar.NewReader(br), nil
	}
}

// Extract unpacks the archive read from r into dir, which must exist and be
// empty (the caller unpacks into a fresh temp dir and removes it on error,
// so a refused archive leaves nothing half-unpacked). It stops between
// entries when ctx ends.
func Extract(ctx context.Context, r io.Reader, dir string, lim Limits) error {
	tr, err := Open(r)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open unpack target: %w", err)
	}
	defer root.Close()
	x := &extractor{root: root, lim: lim.withDefaults(), buf: make([]byte, 32<<10)}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// A link checked when it was made can escape later, through links or
	// directories that later entries put on its path: check them all again
	// now that the tree is complete.
	for _, l := range x.links {
		if err := resolveInside(root, l); err != nil {
			target, _ := root.Readlink(l)
			return &UnsafeError{l, fmt.Sprintf("symbolic link to %q %v (through links made by later entries)", target, err)}
		}
	}
	return nil
}

type extractor struct {
	root    *os.Root
	lim     Limits
	entries int64
	bytes   int64
	links   []string // symbolic links made, for the final check
	buf     []byte   // one copy buffer for every file
}

func (x *extractor) entry(hdr *tar.Header, tr io.Reader) error {
	x.entries++
	if x.entries > x.lim.MaxEntries {
		return &LimitError{hdr.Name, "entries", x.lim.MaxEntries}
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil
	}
	if err := x.parents(name); err != nil {
		return err
	}
	// Only the permission bits are kept: setuid, setgid and sticky bits
	// are dropped, so a package cannot plant a set-id program through an
	// agent that may run as root.
	mode := os.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, mode)
	case tar.TypeReg:
		// Only regular files carry data (the reader skips none for
		// links, directories and devices): sizes are checked before a
		// byte is written.
		if hdr.Size < 0 || hdr.Size > x.lim.MaxBytes-x.bytes {
			return &LimitError{hdr.Name, "bytes", x.lim.MaxBytes}
		}
		x.bytes += hdr.Size
		return x.file(name, mode, hdr.Size, tr)
	case tar.TypeSymlink:
		return x.symlink(name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(name, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return &UnsafeError{hdr.Name, "device files are not allowed"}
	case tar.TypeFifo:
		return &UnsafeError{hdr.Name, "fifos are not allowed"}
	default:
		return &UnsafeError{hdr.Name, fmt.Sprintf("entry type %q is not allowed (only files, directories and links)", hdr.Typeflag)}
	}
}

// cleanName validates an entry name and returns it as a clean relative
// slash path ("." for the top itself).
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", &UnsafeError{name, "empty name"}
	case strings.HasPrefix(name, "/"):
		return "", &UnsafeError{name, "absolute path"}
	case strings.ContainsRune(name, 0):
		return "", &UnsafeError{name, "NUL byte in name"}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", &UnsafeError{name, "path contains .."}
		}
	}
	return path.Clean(name), nil
}

// parents makes sure name's parent directories are real directories (no
// write goes through a symbolic link, even one pointing inside) and
// creates the missing ones.
func (x *extractor) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	if err := x.noLinkIn(name, dir); err != nil {
		return err
	}
	if err := x.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create parents of %s: %w", name, err)
	}
	return nil
}

// noLinkIn refuses entry when the existing part of p (a clean relative
// path) contains a symbolic link or a non-directory.
func (x *extractor) noLinkIn(entry, p string) error {
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		fi, err := x.root.Lstat(p[:i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("entry %s: %w", entry, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return &UnsafeError{entry, "path goes through the symbolic link " + p[:i]}
		}
		if !fi.IsDir() {
			return &UnsafeError{entry, p[:i] + " is not a directory"}
		}
	}
	return nil
}

func (x *extractor) dir(name string, mode os.FileMode) error {
	err := x.root.Mkdir(name, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := x.root.Lstat(name)
		if lerr != nil || !fi.IsDir() {
			return &UnsafeError{name, "directory entry where an earlier entry is not a directory"}
		}
	} else if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	// Chmod follows a link, but name is a directory this unpack owns (its
	// parents were just checked), and only its owner could swap it.
	// Owner rwx stays so later entries can go inside.
	if err := x.root.Chmod(name, mode|0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	return nil
}

// fileOnly hides *os.File's ReadFrom, whose fallback for a non-file source
// allocates a fresh 32 KiB buffer per file; CopyBuffer then uses ours.
type fileOnly struct{ io.Writer }

func (x *extractor) file(name string, mode os.FileMode, size int64, tr io.Reader) error {
	// O_EXCL never follows a link: an existing name is an error.
	f, err := x.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	n, err := io.CopyBuffer(fileOnly{f}, io.LimitReader(tr, size), x.buf)
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (x *extractor) symlink(name, target string) error {
	switch {
	case target == "":
		return &UnsafeError{name, "symbolic link with an empty target"}
	case path.IsAbs(target):
		return &UnsafeError{name, "symbolic link to an absolute path " + target}
	case strings.ContainsRune(target, 0):
		return &UnsafeError{name, "NUL byte in link target"}
	}
	// Lexically first: a link that leaves and re-enters the target
	// depends on the target's own name, and a missing directory on its way
	// could later be made a link.
	if !inside(path.Join(path.Dir(name), target)) {
		return &UnsafeError{name, fmt.Sprintf("symbolic link to %q %v", target, errEscapes)}
	}
	// Then through the links that exist now. Not path.Join: cleaning
	// "l/.." to "." is exactly the mistake that lets a link chain out.
	if err := resolveInside(x.root, path.Dir(name)+"/"+target); err != nil {
		return &UnsafeError{name, fmt.Sprintf("symbolic link to %q %v", target, err)}
	}
	if err := x.root.Symlink(target, name); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	x.links = append(x.links, name)
	return nil
}

func (x *extractor) hardlink(name, linkname string) error {
	old, err := cleanName(linkname)
	if err != nil || old == "." {
		return &UnsafeError{name, "hard link to " + linkname + " outside the target"}
	}
	if err := x.noLinkIn(name, path.Dir(old)); err != nil {
		return err
	}
	fi, err := x.root.Lstat(old)
	if err != nil || !fi.Mode().IsRegular() {
		return &UnsafeError{name, "hard link to " + linkname + ", which is not an earlier regular file"}
	}
	// Root.Link links old itself, never what a link there points to.
	if err := x.root.Link(old, name); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// inside reports whether the slash path p (relative to the root) stays
// inside the root after lexical cleaning.
func inside(p string) bool {
	c := path.Clean(p)
	return c != ".." && !strings.HasPrefix(c, "../") && !path.IsAbs(c)
}
