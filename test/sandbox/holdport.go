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
		// Only this thread joins the host's namespace, and it goes back
		// before it is unlocked; if it cannot, it stays locked and ends
		// with the goroutine.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open this thread's network namespace: %w", err)}
			return
		}
		defer own.Close()
		f, err := os.Open(filepath.Join("/run/netns", h.NS))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open the network namespace of %s: %w", h.Name, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter the network namespace of %s: %w", h.Name, err)}
			return
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			err = fmt.Errorf("listen on port %d of %s: %w", port, h.Name, err)
		}
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
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
