package pluginhost

import (
	"os/exec"
	"syscall"
)

// bindToParent makes the kernel kill the plugin if the manager dies without
// stopping it, so a crashed manager leaves no plugin process behind.
func bindToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
