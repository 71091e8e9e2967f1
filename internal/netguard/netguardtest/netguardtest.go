// Package netguardtest checks a running HTTP server against a flood of idle
// connections: they must be closed by the server's timeouts, the process's
// open file descriptors must stay bounded by its connection cap meanwhile
// and come back to where they started afterwards.
package netguardtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// OpenFDs counts the process's open file descriptors.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(ents)
}

// slack allows for descriptors the runtime or a server's own background
// work opens and closes meanwhile.
const slack = 32

// IdleFlood opens n connections to addr (the server runs in this process
// and serves at most maxConns at once). Every second connection first sends
// request (a whole HTTP/1.1 request that keeps the connection alive) and
// reads the answer; then all of them stay silent. It fails unless the
// server closes every connection (by its read-header or idle timeout), the
// open descriptors never exceed the start by more than n (the test's own
// ends) + maxConns, and they return to about the start once the test closed
// its ends. It waits at most a generous deadline for each of these.
func IdleFlood(t testing.TB, addr string, n, maxConns int, request string) {
	t.Helper()
	base := OpenFDs(t)
	var peak atomic.Int64
	peak.Store(int64(base))
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if c := int64(OpenFDs(t)); c > peak.Load() {
				peak.Store(c)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const deadline = 60 * time.Second
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, deadline)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		// At once: the server's read-header timeout runs from the accept
		// (keep it at a second or more, so a busy machine still makes it).
		if i%2 == 1 {
			if _, err := io.WriteString(c, request); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetDeadline(time.Now().Add(deadline))
			br := bufio.NewReader(c)
			if i%2 == 1 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("answer on connection %d: %w", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			// Now idle: the next read ends when the server closes.
			_, err := br.ReadByte()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				errs <- errors.New("the server left an idle connection open")
			} else if err == nil {
				errs <- errors.New("the server sent data on an idle connection")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	if max := base + n + maxConns + slack; int(peak.Load()) > max {
		t.Errorf("open files peaked at %d, more than %d (start %d + %d own ends + cap %d + %d)", peak.Load(), max, base, n, maxConns, slack)
	}
	for _, c := range conns {
		c.Close()
	}
	end := time.Now().Add(deadline)
	for {
		got := OpenFDs(t)
		if got <= base+slack/4 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("open files: %d after the flood, %d before", got, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
