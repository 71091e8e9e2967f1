package sandbox

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// StallServer serves the sandbox's package like the package server does,
// but holds downloads midway while held: it sends the headers and the first
// half of the body, then waits until Release (or until the client goes
// away). A test can then act (kill an agent, kill the manager) while a
// download is provably in flight, without guessing with sleeps.
type StallServer struct {
	URL string // the package's URL on this server

	srv     *http.Server
	ln      net.Listener
	path    string
	stalled chan string // client IPs, one per download that is now held

	mu        sync.Mutex
	holding   bool
	only      map[string]bool // when set, only these client IPs are held
	release   chan struct{}
	requests  map[string]int // downloads begun, per client IP
	completed map[string]int // whole bodies sent, per client IP
}

// StartStallServer serves s.PackagePath on the hosts' bridge. Downloads
// from the given client IPs (every client when none is given) are held
// from the start.
func (s *Sandbox) StartStallServer(hold ...string) (*StallServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.Hosts.BridgeAddr, "0"))
	if err != nil {
		return nil, fmt.Errorf("stall server: %w", err)
	}
	ss := &StallServer{ln: ln, path: s.PackagePath, stalled: make(chan string, 64), holding: true,
		only: ipSet(hold), release: make(chan struct{}), requests: map[string]int{}, completed: map[string]int{}}
	name := filepath.Base(s.PackagePath)
	ss.URL = fmt.Sprintf("http://%s/stall/%s", ln.Addr().String(), name)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stall/"+name, ss.serve)
	ss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ss.srv.Serve(ln) }()
	return ss, nil
}

func (ss *StallServer) serve(w http.ResponseWriter, r *http.Request) {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	b, err := os.ReadFile(ss.path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ss.mu.Lock()
	ss.requests[ip]++
	held, release := ss.holding && (ss.only == nil || ss.only[ip]), ss.release
	ss.mu.Unlock()

	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	half := len(b) / 2
	if _, err := w.Write(b[:half]); err != nil {
		return
	}
	if held {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case ss.stalled <- ip:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done(): // the client went away
			return
		}
	}
	if _, err := w.Write(b[half:]); err != nil {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	ss.mu.Lock()
	ss.completed[ip]++
	ss.mu.Unlock()
}

// Stalled delivers the client IP of each download as it is held.
func (ss *StallServer) Stalled() <-chan string { return ss.stalled }

// Release lets every held download finish and stops holding new ones.
func (ss *StallServer) Release() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.holding {
		ss.holding = false
		close(ss.release)
	}
}

// Hold makes new downloads from the given client IPs (every client when
// none is given) stall again after a Release.
func (ss *StallServer) Hold(ips ...string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.only = ipSet(ips)
	if !ss.holding {
		ss.holding = true
		ss.release = make(chan struct{})
	}
}

func ipSet(ips []string) map[string]bool {
	if len(ips) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, ip := range ips {
		m[ip] = true
	}
	return m
}

// Requests is how many downloads a client began.
func (ss *StallServer) Requests(ip string) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.requests[ip]
}

// Completed is how many whole packages a client received.
func (ss *StallServer) Completed(ip string) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.completed[ip]
}

// Close stops the server, releasing anything held.
func (ss *StallServer) Close() {
	ss.Release()
	_ = ss.srv.Close()
}
