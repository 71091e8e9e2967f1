//go:build !linux

package pluginhost

import (
	"os"
	"os/exec"
)

func bindToParent(*exec.Cmd) {}

// ownedByMe: no owners to compare here.
func ownedByMe(os.FileInfo) bool { return true }
