package pidfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// isManager reads /proc/<pid>/cmdline: the program is dorismanager (any
// path) and its command is serve.
func isManager(pid int) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0})
	return len(args) >= 2 && filepath.Base(string(args[0])) == "dorismanager" && string(args[1]) == "serve"
}
