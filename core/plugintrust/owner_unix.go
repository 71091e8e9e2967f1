//go:build unix

package plugintrust

import (
	"fmt"
	"os"
	"syscall"
)

// fileOwner is the uid owning a file.
func fileOwner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// chownLikeDataDir gives path the data dir's owner and group when root
// writes into a data dir of another user (the manager's), so the manager
// can read and later remove what was written.
func chownLikeDataDir(path, dataDir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give %s the data dir's owner: %w", path, err)
	}
	return nil
}
