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
