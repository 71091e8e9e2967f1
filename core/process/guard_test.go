package process

import (
	"context"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// A guard (core/ops: an operation runs on the cluster) refuses every step
// that would start work there, and the refusal writes nothing.
func TestGuardRefusesSteps(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	pid, err := f.e.InstallAgent(ctx, 1, agentReq(t, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	f.finishStep(pid, 0, store.StatusSuccess)
	busy := &Error{Kind: KindConflict, Msg: "cluster 1 is busy with operation 9 (UPGRADE)"}
	f.e.guard = func(_ context.Context, clusterID int64) error {
		if clusterID == 1 {
			return busy
		}
		return nil
	}
	before := f.count(&store.Task{})
	other := agentReq(t, "h9")
	other.ClusterID = 2
	if _, err := f.e.InstallAgent(ctx, 2, other); err != nil {
		t.Fatalf("another cluster is not guarded: %v", err)
	}
	if err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}); err != busy {
		t.Fatalf("installService on a busy cluster: %v", err)
	}
	r := agentReq(t, "h1")
	r.ProcessID = pid
	if _, err := f.e.InstallAgent(ctx, 1, r); err != busy {
		t.Fatalf("installAgent again on a busy cluster: %v", err)
	}
	if after := f.count(&store.Task{}); after != before+1 {
		t.Fatalf("tasks %d -> %d: only the other cluster's one may be new", before, after)
	}
}
