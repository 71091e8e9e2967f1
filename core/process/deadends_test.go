package process

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// skipTask fails a task and skips it, as an operator would.
func (f *fixture) skipTask(id int64) {
	f.t.Helper()
	f.setStatus(id, store.StatusFailure)
	if err := f.e.Skip(context.Background(), 1, id); err != nil {
		f.t.Fatal(err)
	}
}

// Unskip is a small state machine: only a skipped task of the current step
// of the caller's unfinished process, and it then runs again.
func TestUnskip(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid, err := f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
		if err != nil {
			t.Fatal(err)
		}
		ts := f.tasks(pid, 0)
		a, b := ts[0], ts[1]
		f.setStatus(a.ID, store.StatusSuccess)
		f.skipTask(b.ID)
		if v, _ := f.e.Current(ctx, 1); v.ProcessStep != 1 {
			t.Fatalf("processStep with the other task skipped: %d, want 1", v.ProcessStep)
		}
		for _, c := range []struct {
			name   string
			user   int64
			task   int64
			kind   Kind
			reason string
		}{
			{"unknown task", 1, 999, KindNotFound, "999"},
			{"another user's process", 2, b.ID, KindForbidden, "another user"},
			{"not skipped", 1, a.ID, KindConflict, "is not skipped"},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := f.e.Unskip(ctx, c.user, c.task)
				wantKind(t, err, c.kind)
				if !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("%q does not say %q", err, c.reason)
				}
				if got, _ := f.st.GetTask(ctx, b.ID); !got.Skip || got.Status != store.StatusFailure {
					t.Fatalf("a refused unskip changed the task: %+v", got)
				}
			})
		}
		// Retry and skip send a skipped task to unskip.
		err = f.e.Retry(ctx, 1, b.ID)
		wantKind(t, err, KindConflict)
		if !strings.Contains(err.Error(), "unskip") {
			t.Fatalf("retry of a skipped task does not point to unskip: %v", err)
		}
		f.notes = 0
		if err := f.e.Unskip(ctx, 1, b.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := f.st.GetTask(ctx, b.ID)
		if got.Skip || got.Status != store.StatusSubmitted || got.Attempt != b.Attempt+1 || got.Finish || got.Input != b.Input {
			t.Fatalf("unskipped task: %+v; want it SUBMITTED to run again", got)
		}
		if f.notes != 1 {
			t.Fatalf("unskip must wake the runner once, got %d", f.notes)
		}
		if log, _ := f.st.TaskLog(ctx, b.ID); !strings.Contains(string(log), "unskipped: attempt 1") {
			t.Fatalf("task log: %q", log)
		}
		if v, _ := f.e.Current(ctx, 1); v.ProcessStep != 0 {
			t.Fatalf("processStep with the task waiting again: %d, want 0", v.ProcessStep)
		}
		wantKind(t, f.e.Unskip(ctx, 1, b.ID), KindConflict) // not skipped any more
		// Once the process has moved past the step, the skip stays.
		f.skipTask(b.ID)
		if err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}); err != nil {
			t.Fatal(err)
		}
		err = f.e.Unskip(ctx, 1, b.ID)
		wantKind(t, err, KindConflict)
		if !strings.Contains(err.Error(), "INSTALL_AGENT") || !strings.Contains(err.Error(), "INSTALL_SERVICE") {
			t.Fatalf("unskip after the step: %q; want it to name both steps", err)
		}
		// And never on a complete process.
		if err := f.e.Complete(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		wantKind(t, f.e.Unskip(ctx, 1, b.ID), KindConflict)
	})
}

// A step call whose every host and role was skipped before would create
// nothing: it is refused (409) saying so, and changes nothing.
func TestStepCallsThatCreateNothing(t *testing.T) {
	ctx := context.Background()
	// at drives a process to the step before `step` with every task of
	// that step skipped but one whose host and role the call leaves out.
	cases := []struct {
		name string
		at   int // the process's step when the call comes
		call func(f *fixture, pid int64) error
		want string
	}{
		{"installAgent again after its only task was skipped", StepInstallAgent, func(f *fixture, pid int64) error {
			r := agentReq(t, "h1", "h2")
			r.ProcessID = pid
			_, err := f.e.InstallAgent(ctx, 1, r)
			return err
		}, "would install no agent"},
		{"deployConfig naming only skipped installs", StepInstallService, func(f *fixture, pid int64) error {
			return f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
				{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a=1"}, {Hosts: []string{"h1", "h2"}, Role: "BE", Conf: "b=1"}}})
		}, "DEPLOY_CONFIG would create no task"},
		{"startService naming only skipped configs", StepDeployConfig, func(f *fixture, pid int64) error {
			return f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: pid, DorisStarts: []HostRole{{"h1", "FE"}, {"h2", "FE"}, {"h1", "BE"}, {"h2", "BE"}}})
		}, "START_SERVICE would create no task"},
		{"buildCluster naming only skipped starts", StepStartService, func(f *fixture, pid int64) error {
			return f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1", "h2"}, BEHosts: []string{"h1", "h2"}})
		}, "BUILD_CLUSTER would create no task"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "")
			var pid int64
			if c.at == StepInstallAgent {
				var err error
				if pid, err = f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2")); err != nil {
					t.Fatal(err)
				}
			} else {
				pid = toStep(t, f, c.at)
			}
			for _, tk := range f.tasks(pid, c.at) {
				f.skipTask(tk.ID)
			}
			before, _ := f.st.GetProcess(ctx, pid)
			tasks := f.count(&store.Task{})
			err := c.call(f, pid)
			wantKind(t, err, KindConflict)
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "skipped") {
				t.Fatalf("%q does not say %q and why (skipped)", err, c.want)
			}
			after, _ := f.st.GetProcess(ctx, pid)
			if after.Version != before.Version || string(after.Credentials) != string(before.Credentials) || f.count(&store.Task{}) != tasks {
				t.Fatal("a call that creates nothing changed the process")
			}
		})
	}
	// A re-sent installAgent still works when it does something: a new
	// host, or a failed task to run again.
	f := newFixture(t, "")
	pid, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1"))
	f.skipTask(f.tasks(pid, 0)[0].ID)
	r := agentReq(t, "h1", "h2")
	r.ProcessID = pid
	if _, err := f.e.InstallAgent(ctx, 1, r); err != nil {
		t.Fatalf("installAgent again with a new host: %v", err)
	}
	if n := len(f.tasks(pid, 0)); n != 2 {
		t.Fatalf("%d INSTALL_AGENT tasks, want the new host's too", n)
	}
}

// Back is a state machine over the steps: from START_SERVICE to
// DEPLOY_CONFIG (stopping what started), from BUILD_CLUSTER to
// START_SERVICE (stopping nothing: registered nodes stay), never from the
// earlier steps, never while a task of the step runs.
func TestBackFromEveryStep(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		at      int
		running bool
		kind    Kind // 0: allowed
		to      int
		stops   bool
	}{
		{"INSTALL_AGENT", StepInstallAgent, false, KindConflict, 0, false},
		{"INSTALL_SERVICE", StepInstallService, false, KindConflict, 0, false},
		{"DEPLOY_CONFIG", StepDeployConfig, false, KindConflict, 0, false},
		{"START_SERVICE", StepStartService, false, 0, StepDeployConfig, true},
		{"START_SERVICE with a task running", StepStartService, true, KindConflict, 0, false},
		{"BUILD_CLUSTER", StepBuildCluster, false, 0, StepStartService, false},
		{"BUILD_CLUSTER with a task running", StepBuildCluster, true, KindConflict, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "")
			var pid int64
			if c.at == StepInstallAgent {
				pid, _ = f.e.InstallAgent(ctx, 1, agentReq(t, "h1", "h2"))
			} else {
				pid = toStep(t, f, c.at)
			}
			ts := f.tasks(pid, c.at)
			f.finishStep(pid, c.at, store.StatusSuccess)
			f.setStatus(ts[len(ts)-1].ID, store.StatusFailure)
			if c.running {
				f.setStatus(ts[0].ID, store.StatusRunning)
			}
			err := f.e.Back(ctx, 1, pid)
			p, _ := f.st.GetProcess(ctx, pid)
			if c.kind != 0 {
				wantKind(t, err, c.kind)
				if p.Step != c.at || len(f.tasks(pid, c.at)) != len(ts) || len(f.stopper.calls) != 0 {
					t.Fatalf("a refused back changed something: step %d, %d tasks, stopper %d", p.Step, len(f.tasks(pid, c.at)), len(f.stopper.calls))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Step != c.to || p.ProcessType != StepTypes[c.to] || len(f.tasks(pid, c.at)) != 0 {
				t.Fatalf("after back: at %s with %d tasks of %s left", p.ProcessType, len(f.tasks(pid, c.at)), StepTypes[c.at])
			}
			if stopped := len(f.stopper.calls) > 0; stopped != c.stops {
				t.Fatalf("stopper called: %v, want %v", stopped, c.stops)
			}
			if len(f.tasks(pid, c.to)) == 0 {
				t.Fatalf("the tasks of %s are gone", StepTypes[c.to])
			}
		})
	}
}

// From BUILD_CLUSTER back to START_SERVICE and on to DEPLOY_CONFIG for a
// config fix, then the steps again: waiting tasks are canceled, nothing is
// stopped by the first back, and the started nodes by the second.
func TestBackFromBuildClusterForAConfigFix(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid := toStep(t, f, StepBuildCluster)
		build := f.tasks(pid, StepBuildCluster)
		// ADD_FE of the master joined, the next failed, the rest wait.
		f.setStatus(build[0].ID, store.StatusSuccess)
		f.setStatus(build[1].ID, store.StatusFailure)
		if err := f.e.Back(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		if len(f.stopper.calls) != 0 {
			t.Fatal("back from BUILD_CLUSTER stopped nodes")
		}
		if v, _ := f.e.Current(ctx, 1); v.ProcessStep != StepBuildCluster {
			t.Fatalf("processStep after back: %d, want %d (START_SERVICE done)", v.ProcessStep, StepBuildCluster)
		}
		// buildCluster may be sent again at once...
		if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1", "h2"}, BEHosts: []string{"h1", "h2"}}); err != nil {
			t.Fatalf("buildCluster after back: %v", err)
		}
		for _, tk := range f.tasks(pid, StepBuildCluster) {
			if tk.Status != store.StatusSubmitted {
				t.Fatalf("BUILD_CLUSTER task after back and buildCluster: %+v", tk)
			}
		}
		// ...or the process goes on back to DEPLOY_CONFIG for a fix.
		f.finishStep(pid, StepBuildCluster, store.StatusFailure)
		if err := f.e.Back(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		if err := f.e.Back(ctx, 1, pid); err != nil {
			t.Fatal(err)
		}
		if len(f.stopper.calls) != 1 || len(f.stopper.calls[0]) != 4 {
			t.Fatalf("the second back must stop the 4 started nodes: %v", f.stopper.calls)
		}
		p, _ := f.st.GetProcess(ctx, pid)
		if p.Step != StepDeployConfig {
			t.Fatalf("at %s, want DEPLOY_CONFIG", p.ProcessType)
		}
		if err := f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
			{Hosts: []string{"h1", "h2"}, Role: "FE", Conf: "a=2"}, {Hosts: []string{"h1", "h2"}, Role: "BE", Conf: "b=2"}}}); err != nil {
			t.Fatalf("deployConfig with the fix: %v", err)
		}
	})
}

// Waiting BUILD_CLUSTER tasks are canceled by back, and a guard (an
// operation on the cluster) refuses back like a step.
func TestBackCancelsWaitingTasksAndIsGuarded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid := toStep(t, f, StepBuildCluster)
	busy := &Error{Kind: KindConflict, Msg: "cluster 1 is busy with operation 9 (RESTART)"}
	f.e.guard = func(context.Context, int64) error { return busy }
	if err := f.e.Back(ctx, 1, pid); !errors.Is(err, busy) {
		t.Fatalf("back on a busy cluster: %v", err)
	}
	f.e.guard = func(context.Context, int64) error { return nil }
	ids := map[int64]bool{}
	for _, tk := range f.tasks(pid, StepBuildCluster) {
		ids[tk.ID] = true
	}
	if err := f.e.Back(ctx, 1, pid); err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		if _, err := f.st.GetTask(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("BUILD_CLUSTER task %d outlived back: %v", id, err)
		}
	}
}

// Processes lists a cluster's processes, the newest first, with the
// processStep currentProcess would show.
func TestProcessesOfCluster(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		first, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1"))
		f.finishStep(first, 0, store.StatusSuccess)
		if err := f.e.Complete(ctx, 1, first); err != nil {
			t.Fatal(err)
		}
		second, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h1"))
		other := agentReq(t, "h9")
		other.ClusterID = 2
		if _, err := f.e.InstallAgent(ctx, 2, other); err != nil {
			t.Fatal(err)
		}
		vs, err := f.e.Processes(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 || vs[0].ID != second || vs[1].ID != first {
			t.Fatalf("processes of cluster 1: %+v; want %d then %d", vs, second, first)
		}
		if vs[0].Finish || vs[0].ProcessStep != 0 || !vs[1].Finish || vs[1].Status != StatusCanceled || vs[1].ProcessStep != 1 {
			t.Fatalf("views: %+v", vs)
		}
		for _, v := range vs {
			cur, _ := f.e.Process(ctx, v.ID)
			if cur.ProcessStep != v.ProcessStep {
				t.Fatalf("process %d: processStep %d in the list, %d alone", v.ID, v.ProcessStep, cur.ProcessStep)
			}
		}
		if vs, err := f.e.Processes(ctx, 3); err != nil || len(vs) != 0 {
			t.Fatalf("a cluster without processes: %v %v", vs, err)
		}
	})
}

// A role whose newest install was skipped is named, until a later
// process installs it.
func TestSkippedInstalls(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid := toStep(t, f, StepInstallService)
	ts := f.tasks(pid, StepInstallService)
	f.finishStep(pid, StepInstallService, store.StatusSuccess)
	f.skipTask(ts[3].ID) // BE on h2
	got, err := f.e.SkippedInstalls(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := store.RoleKey{ClusterID: 1, Host: ts[3].Host, Role: ts[3].TaskRole}
	if len(got) != 1 || !got[want] {
		t.Fatalf("skipped installs %v, want only %v", got, want)
	}
	// A later process installs it again: no longer skipped.
	if err := f.e.Complete(ctx, 1, pid); err != nil {
		t.Fatal(err)
	}
	next, _ := f.e.InstallAgent(ctx, 1, agentReq(t, "h2"))
	f.finishStep(next, 0, store.StatusSuccess)
	if err := f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: next, InstallInfos: []InstallInfo{{Host: "h2", Role: "BE"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.e.SkippedInstalls(ctx, 1); len(got) != 0 {
		t.Fatalf("after the install was done again: %v", got)
	}
}
