//go:build !linux

package pidfile

// isManager cannot tell a manager from another program here: a recorded
// pid is never taken for a running manager.
func isManager(int) bool { return false }
