package sandbox

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/dorismanager/dorismanager/test/testhosts"
)

// HoldPort listens on port (all addresses) inside host h's network
// namespace, as some other program on that host would, and keeps the port
// taken until the listener is closed. Connections are accepted and dropped.
func HoldPort(h *testhosts.Host, port int) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread joins the host's namespace and is never given back:
		// a goroutine that ends while locked takes its thread with it.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", h.NS))
		if err != nil {
			ch <- result{err: fmt.Errorf("open the network namespace of %s: %w", h.Name, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter the network namespace of %s: %w", h.Name, err)}
			return
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			err = fmt.Errorf("listen on port %d of %s: %w", port, h.Name, err)
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return r.ln, nil
}
