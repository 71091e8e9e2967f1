package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/sandbox"
)

// BenchmarkDay2 builds the standard 7-node cluster once per iteration
// (outside the timer), then measures, as a client sees them (POST, then
// currentTasks every 200 ms until every task ended): a rolling restart of
// every node, an upgrade of every node to a second simulated version, and
// the latency of 1,000 status calls (p50/p99, answered from the cache
// while its background refresh runs). See BENCHMARKS.md, "Day-2 operations":
//
//	go test -run XXX -bench BenchmarkDay2 -benchtime 3x -v ./test/e2e
func BenchmarkDay2(b *testing.B) {
	var restart, upgrade, p50, p99 []float64
	for b.Loop() {
		b.StopTimer()
		s := startBench(b)
		c := s.Client()
		plan := s.StandardPlan()
		ctx := context.Background()
		if pid, _, err := c.Walk(ctx, s, plan, nil); err != nil {
			s.Close()
			b.Fatalf("wizard (process %d): %v", pid, err)
		}
		if _, err := c.WaitStatus(ctx, plan.ClusterID, "every node is UP", sandbox.AllUp); err != nil {
			s.Close()
			b.Fatal(err)
		}
		url, sum, err := s.PackVersion(ctx, upgradeVersion)
		if err != nil {
			s.Close()
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		_, _, err = c.RunOperation(ctx, plan.ClusterID, "restart", map[string]any{"rolling": true})
		restart = append(restart, time.Since(t0).Seconds())
		if err == nil {
			t0 = time.Now()
			_, _, err = c.RunOperation(ctx, plan.ClusterID, "upgrade", map[string]any{"packageUrl": url, "packageSha256": sum})
			upgrade = append(upgrade, time.Since(t0).Seconds())
		}
		var lat []float64
		for i := 0; err == nil && i < 1000; i++ {
			t0 = time.Now()
			_, err = c.Status(ctx, plan.ClusterID)
			lat = append(lat, time.Since(t0).Seconds()*1000)
		}
		b.StopTimer()
		s.Close()
		if err != nil {
			b.Fatal(err)
		}
		slices.Sort(lat)
		p50, p99 = append(p50, lat[len(lat)/2]), append(p99, lat[len(lat)*99/100])
		b.StartTimer()
	}
	b.ReportMetric(median(restart), "rolling-restart-s")
	b.ReportMetric(median(upgrade), "upgrade-s")
	b.ReportMetric(median(p50), "status-p50-ms")
	b.ReportMetric(median(p99), "status-p99-ms")
	b.Logf("rolling restart of 7 nodes: %s s; upgrade of every node: %s s; status p50: %s ms, p99: %s ms",
		secs(restart), secs(upgrade), fmt.Sprint(p50), fmt.Sprint(p99))
}
