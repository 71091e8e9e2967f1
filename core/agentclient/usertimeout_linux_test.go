package agentclient

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Connections to agents carry TCP_USER_TIMEOUT = keepalive idle + probes,
// so data written to a host that went silent fails as fast as an idle
// connection to it does.
func TestConnectionsBoundUnacknowledgedData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, c := range []struct {
		keepAlive time.Duration
		want      int // ms
	}{
		{DefaultKeepAlive, 30000},
		{3 * time.Second, 6000},
	} {
		cl := New("http://"+ln.Addr().String(), WithKeepAlive(c.keepAlive))
		conn, err := cl.hc.Transport.(*http.Transport).DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		if err := raw.Control(func(fd uintptr) {
			got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		}); err != nil || gerr != nil {
			t.Fatal(err, gerr)
		}
		conn.Close()
		if got != c.want {
			t.Errorf("keepalive %v: TCP_USER_TIMEOUT %d ms, want %d", c.keepAlive, got, c.want)
		}
	}
}
