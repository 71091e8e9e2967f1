package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/dorismanager/dorismanager/test/sandbox"
)

// faultGet GETs path, wants code 0 and decodes the data into v.
func faultGet(t *testing.T, c *sandbox.Client, path string, v any) {
	t.Helper()
	r, err := c.OK(context.Background(), http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, r.Data)
	}
}

// waitSuccess waits for the current step of process pid to end and wants
// every task SUCCESS.
func waitSuccess(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64) []sandbox.Task {
	t.Helper()
	ts, err := c.WaitStep(ctx, pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := sandbox.Failed(ts); len(f) > 0 {
		t.Fatalf("failed:%s", sandbox.Describe(f))
	}
	return ts
}
