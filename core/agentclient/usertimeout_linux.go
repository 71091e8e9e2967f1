package agentclient

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeout bounds how long data written to an agent may stay
// unacknowledged (TCP_USER_TIMEOUT). Keepalive alone covers an idle
// connection only: a request written onto a pooled connection after the
// host went silent would otherwise wait out TCP's retransmissions, which
// take about fifteen minutes.
func userTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
		})
		if err != nil {
			return err
		}
		return serr
	}
}
