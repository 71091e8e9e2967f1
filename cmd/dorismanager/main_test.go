package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/auth"
	"github.com/dorismanager/dorismanager/core/store"
)

func TestTokenCreate(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run([]string{"token", "create", "--user", "alice", "--data-dir", dir}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	st, err := store.Open("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByTokenHash(context.Background(), auth.HashToken(tok))
	if err != nil || u.Name != "alice" {
		t.Fatalf("token owner: %+v %v", u, err)
	}
}

func TestBadCommands(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"token"}, {"token", "create"}, {"serve", "--parallel", "0"},
		{"serve", "--log-level", "loud"}, {"serve", "extra"}, {"serve", "--agent-retries", "-1"},
		{"serve", "--agent-keepalive", "500ms"}, {"serve", "--agent-connect-timeout", "0s"}, {"serve", "--agent-retry-backoff", "0s"},
		{"serve", "--http-read-timeout", "0s"}, {"serve", "--http-write-timeout", "-1s"}, {"serve", "--http-max-conns", "0"},
		{"serve", "--auth-max-failures", "-1"}} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}
