package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/sandbox"
)

func TestWizardSQLite(t *testing.T) {
	s := start(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := s.Client()
	plan := s.StandardPlan()
	pid, timings, err := c.Walk(ctx, s, plan, func(step string, task *sandbox.Task) {
		if task != nil {
			t.Logf("%s: task %d %s on %s: %s", step, task.ID, task.TaskType, task.Host, task.Status)
		}
	})
	if err != nil {
		t.Fatalf("wizard (process %d): %v", pid, err)
	}
	t.Logf("timings: %v", timings)
}
