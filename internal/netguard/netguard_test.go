package netguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs h behind l on 127.0.0.1 and returns its URL.
func serve(t *testing.T, l Limits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Server(h)
	go srv.Serve(l.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// A handler that works past ReadTimeout after reading its body keeps its
// request context (the server's watch for a closed connection would
// otherwise hit the read deadline and cancel it).
func TestReadTimeoutEndsWithTheBody(t *testing.T) {
	for _, body := range []string{"", `{"x":1}`} {
		t.Run(fmt.Sprintf("body %q", body), func(t *testing.T) {
			url := serve(t, Limits{ReadHeaderTimeout: time.Second, ReadTimeout: 100 * time.Millisecond},
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.ReadAll(r.Body)
					select {
					case <-r.Context().Done():
						http.Error(w, "request context canceled", http.StatusInternalServerError)
					case <-time.After(400 * time.Millisecond):
						_, _ = io.WriteString(w, "done")
					}
				}))
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "done" {
				t.Fatalf("HTTP %d %q: want done", resp.StatusCode, b)
			}
		})
	}
}

// A client that sends headers but never its body is still cut off.
func TestReadTimeoutBoundsTheBody(t *testing.T) {
	url := serve(t, Limits{ReadHeaderTimeout: time.Second, ReadTimeout: 200 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, "read it all")
		}))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, _ := io.ReadAll(c)
	if strings.Contains(string(got), "read it all") {
		t.Fatalf("a body that never came was read: %q", got)
	}
}

// A streamed answer longer than WriteTimeout goes through as long as each
// write does.
func TestWriteTimeoutIsPerWrite(t *testing.T) {
	url := serve(t, Limits{ReadHeaderTimeout: time.Second, WriteTimeout: 150 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := range 5 {
				fmt.Fprintf(w, "line %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintln(w, "end")
		}))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 6 || lines[5] != "end" {
		t.Fatalf("got %q (%v): the stream was cut", lines, sc.Err())
	}
}

// The last write deadline of a response does not outlive it: on a
// kept-alive connection the server's own answer to a bad next request
// still gets through after that deadline passed.
func TestWriteDeadlineClearedBetweenRequests(t *testing.T) {
	url := serve(t, Limits{ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 100 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	time.Sleep(300 * time.Millisecond)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a bad request on a kept-alive connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP %d, want 400", resp.StatusCode)
	}
}

func TestListenerCapsOpenConnections(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Limits{MaxConns: 2}.Listener(raw)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("closing a connection did not let the waiting one in")
	}
	second.Close()
	ln.Close()
	for range accepted {
	}
}
