//go:build !linux

package agentclient

import (
	"syscall"
	"time"
)

// userTimeout is Linux's TCP_USER_TIMEOUT; elsewhere keepalive alone
// watches the connection.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error { return nil }
