package roleexec

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An FE port that closes connections at once makes the driver log the
// broken read; the message must arrive in the manager's logger (here JSON),
// not on the driver's default stderr logger.
func TestDriverMessagesReachTheLogger(t *testing.T) {
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
			c.Close()
		}
	}()
	var out lockedBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "dorismanager", Output: &out, JSONFormat: true})
	db, err := openMySQL("root", "", ln.Addr().String(), DriverLogger(log.Named("mysql")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping of a port that hangs up succeeded")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("the driver logged nothing into the manager's logger")
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		if m["@module"] != "dorismanager.mysql" || m["@level"] != "warn" || m["@message"] == "" {
			t.Errorf("driver message %v: want module dorismanager.mysql, level warn and a message", m)
		}
	}
}
