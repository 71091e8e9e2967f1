package e2e

import (
	"context"
	"testing"

	"github.com/dorismanager/dorismanager/test/sandbox"
)

// retryAll retries the given FAILURE tasks and wants the step to end with
// every task SUCCESS.
func retryAll(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64, ids []int64) []sandbox.Task {
	t.Helper()
	for _, id := range ids {
		if err := c.RetryTask(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return mustStep(ctx, t, c, pid)
}
