// Package netguard keeps an HTTP server facing the network within bounds:
// timeouts for slow clients, a cap on open connections, and a per-client
// block after repeated failed authentication. The manager and the agent
// both use it; it depends on nothing but the standard library.
package netguard

import (
	"net/http"
	"time"
)

// Limits bound what one client can hold of a server.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers; a fresh
	// connection that sends nothing is closed after it.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body; a
	// handler that works or streams for longer after reading the body is
	// not cut off.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to the client, not the response: a
	// long streamed answer is fine as long as the client keeps reading.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request line and headers.
	MaxHeaderBytes int
	// MaxConns caps the connections open at once; more wait in the
	// kernel's accept queue until one closes.
	MaxConns int
}

// Or returns l with every zero field taken from d.
func (l Limits) Or(d Limits) Limits {
	pick := func(v, dv time.Duration) time.Duration {
		if v == 0 {
			return dv
		}
		return v
	}
	l.ReadHeaderTimeout = pick(l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	l.ReadTimeout = pick(l.ReadTimeout, d.ReadTimeout)
	l.WriteTimeout = pick(l.WriteTimeout, d.WriteTimeout)
	l.IdleTimeout = pick(l.IdleTimeout, d.IdleTimeout)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxConns == 0 {
		l.MaxConns = d.MaxConns
	}
	return l
}

// Server returns an http.Server for h with l's timeouts. Serve it on a
// listener wrapped by l.Listener.
//
// http.Server's own WriteTimeout is left off: it would bound the whole
// response from the moment the headers were read and so cut a long
// streamed answer. Each write gets WriteTimeout instead (see Handler).
func (l Limits) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           l.Handler(h),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Handler gives every write and flush of h's responses WriteTimeout from
// its start. (ReadTimeout needs no help here: the server lifts the read
// deadline once the body has been read, so a handler that works or streams
// for longer keeps its request context.)
func (l Limits) Handler(h http.Handler) http.Handler {
	if l.WriteTimeout <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: l.WriteTimeout}
		dw.extend()
		// The server flushes what is still buffered after the handler
		// returns, then clears the write deadline.
		defer dw.extend()
		h.ServeHTTP(dw, r)
	})
}

// deadlineWriter gives every write its own deadline.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Flush() {
	w.extend()
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
