package unpack

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
)

// maxLinkHops bounds the links followed while resolving one path, as the
// kernel's own limit (40) does.
const maxLinkHops = 40

var (
	errEscapes = errors.New("leads outside the target")
	errAbsLink = errors.New("leads through a symbolic link to an absolute path")
	errLoop    = errors.New("has too many levels of symbolic links")
)

// resolveInside follows the slash path p (relative to the root) through
// the symbolic links that exist in the root now, the way the kernel would,
// and fails if it ever goes above the root. Missing components are taken
// lexically: they may be created later, and ".." after them must still
// stay inside. Where the kernel would stop (a file used as a directory),
// the rest is taken lexically too.
func resolveInside(root *os.Root, p string) error {
	var done []string             // real directories (and then lexical names) walked so far
	todo := strings.Split(p, "/") // components still to walk
	hops, lexical := 0, false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return errEscapes
			}
			done = done[:len(done)-1]
			continue
		}
		if lexical {
			done = append(done, c)
			continue
		}
		cur := path.Join(path.Join(done...), c)
		fi, err := root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			lexical = true
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			hops++
			if hops > maxLinkHops {
				return errLoop
			}
			target, err := root.Readlink(cur)
			if err != nil {
				return err
			}
			if path.IsAbs(target) {
				return errAbsLink
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		case !fi.IsDir():
			lexical = true
		}
		done = append(done, c)
	}
	return nil
}
