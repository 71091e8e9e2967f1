package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
	"github.com/dorismanager/dorismanager/test/sandbox"
)

// TestPackageOncePerCluster installs FE, BE and broker on three hosts and
// counts what the package server sent: with the manager's package relay
// (the default) one GET and one package's worth of bytes, reported in the
// process; with --package-relay=off every host downloads it itself.
func TestPackageOncePerCluster(t *testing.T) {
	for _, c := range []struct {
		relay string
		gets  int64 // GETs of the package: one per host without the relay
	}{{"manager", 1}, {"off", 3}} {
		t.Run(c.relay, func(t *testing.T) {
			s := start(t, sandbox.Options{ManagerArgs: []string{"--package-relay", c.relay}})
			ctx, cancel := deadline.Context(context.Background(), 5*time.Minute)
			defer cancel()
			cl := s.Client()
			plan := s.StandardPlan()
			pid, timings, err := cl.Walk(ctx, s, plan, nil)
			if err != nil {
				t.Fatalf("wizard (process %d): %v", pid, err)
			}
			t.Logf("--package-relay=%s: step timings %v", c.relay, timings)
			fi, err := os.Stat(s.PackagePath)
			if err != nil {
				t.Fatal(err)
			}
			size := fi.Size()
			t.Logf("package %d bytes", size)
			got := s.Served(filepath.Base(s.PackagePath))
			if got.Gets != c.gets || got.Bytes != c.gets*size {
				t.Errorf("package server sent the package %d times, %d bytes; want %d times, %d bytes (package %d bytes)",
					got.Gets, got.Bytes, c.gets, c.gets*size, size)
			}
			var procs []sandbox.Process
			mustDecode(t, cl, fmt.Sprintf("/api/process?clusterId=%d", plan.ClusterID), &procs)
			var reported int64 = -1
			for _, p := range procs {
				if p.ID == pid {
					reported = p.PackageUpstreamBytes
				}
			}
			want := size
			if c.relay == "off" {
				want = 0
			}
			if reported != want {
				t.Errorf("process %d reports packageUpstreamBytes %d, want %d", pid, reported, want)
			}
			// Every host has its roles: the cluster is built and each
			// role's tree is on its host.
			checkAPI(ctx, t, cl, plan, pid)
			checkHosts(t, s, plan)
			if c.relay == "manager" {
				checkLogsSayViaManager(ctx, t, cl, pid)
			}
		})
	}
}

// checkLogsSayViaManager: each INSTALL_ task's log says the package came
// from the manager, so the count above is not met by some other path.
func checkLogsSayViaManager(ctx context.Context, t *testing.T, c *sandbox.Client, pid int64) {
	t.Helper()
	n := 0
	for id := int64(1); ; id++ {
		task, err := c.TaskInfo(ctx, id)
		if err != nil {
			break // past the last task
		}
		if task.ProcessID != pid || !strings.HasPrefix(task.TaskType, "INSTALL_") || task.TaskType == "INSTALL_AGENT" {
			continue
		}
		n++
		log, err := c.TaskLogText(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log, "via the manager") || !strings.Contains(log, "from the manager") && !strings.Contains(log, "using cached") {
			t.Errorf("task %d %s on %s: the log does not say the package came from the manager:\n%s", id, task.TaskType, task.Host, log)
		}
	}
	if n == 0 {
		t.Error("no INSTALL_ task found")
	}
}
