package pluginhost

import (
	"os"
	"os/exec"
	"syscall"
)

// bindToParent makes the kernel kill the plugin if the manager dies without
// stopping it, so a crashed manager leaves no plugin process behind.
func bindToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// ownedByMe reports whether this process's user owns the file.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
