package process

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// buildCluster's adminPassword is checked before anything is written, and
// the refusal never repeats it.
func TestAdminPasswordValidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	pid := toStep(t, f, 3)
	f.finishStep(pid, 3, store.StatusSuccess)
	for _, c := range []struct{ name, pw, want string }{
		{"too short", "Ab1-xyz", "8 to 128 characters"},
		{"too long", strings.Repeat("a", MaxAdminPassword+1), "8 to 128 characters"},
		{"space", "abc defgh1", "other than spaces"},
		{"single quote", "abc'defgh1", "quotes"},
		{"double quote", `abc"defgh1`, "quotes"},
		{"backtick", "abc`defgh1", "quotes"},
		{"backslash", `abc\defgh1`, "backslashes"},
		{"newline", "abcdefgh1\n", "printable ASCII"},
		{"not ASCII", "abcdéfgh1", "printable ASCII"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1", "h2"}, BEHosts: []string{"h1"}, AdminPassword: c.pw})
			wantKind(t, err, KindInvalid)
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "adminPassword") || strings.Contains(err.Error(), c.pw) {
				t.Fatalf("message %q: want it to name adminPassword and %q, without the password", err, c.want)
			}
			if len(f.tasks(pid, 4)) != 0 {
				t.Fatal("a refused request wrote tasks")
			}
			if _, err := f.st.GetAdminAccount(ctx, 1); err == nil {
				t.Fatal("a refused request recorded a password")
			}
		})
	}
}

// A given adminPassword is kept sealed, pending, for SECURE_CLUSTER to set.
func TestAdminPasswordKeptSealedPending(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		pid := toStep(t, f, 3)
		f.finishStep(pid, 3, store.StatusSuccess)
		const pw = "Given-Pw_0123"
		if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: pid, FEHosts: []string{"h1", "h2"}, BEHosts: []string{"h1", "h2"}, AdminPassword: pw}); err != nil {
			t.Fatal(err)
		}
		ts := f.tasks(pid, 4)
		last := ts[len(ts)-1]
		if last.TaskType != TaskSecureCluster || last.Host != "" || strings.Contains(last.Input, pw) {
			t.Fatalf("last task %+v: want SECURE_CLUSTER without the password in its input", last)
		}
		a, err := f.st.GetAdminAccount(ctx, 1)
		if err != nil || string(a.Pending) != "sealed:"+pw || a.PendingGenerated || a.Password != nil {
			t.Fatalf("account %+v %v: want the password sealed, pending, not generated", a, err)
		}
	})
}

// SECURE_CLUSTER needs an FE; a step that adds nothing gets it only when
// an adminPassword asks for it.
func TestSecureClusterOnlyWithFEs(t *testing.T) {
	ctx := context.Background()
	// No FE in the cluster at all: no task, and adminPassword is refused.
	f := newFixtureWith(t, staticCatalogue{"EXPORTER": exporter})
	w := f.start(t, "h1")
	w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "EXPORTER"}}}))
	w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1"}, Role: "EXPORTER", Conf: "x=1"}}}))
	w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h1", "EXPORTER"}}}))
	err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{}, BEHosts: []string{}, AdminPassword: "Abcdefgh1"})
	wantKind(t, err, KindInvalid)
	if !strings.Contains(err.Error(), "no FE") {
		t.Fatalf("message %v", err)
	}
	if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{}, BEHosts: []string{}}); err != nil {
		t.Fatal(err)
	}
	if ts := f.tasks(w.pid, 4); len(ts) != 0 {
		t.Fatalf("tasks without an FE: %v", types(ts))
	}

	// A cluster with an FE from an earlier process: a later process that
	// adds nothing gets SECURE_CLUSTER only with an adminPassword.
	for _, pw := range []string{"", "Abcdefgh1"} {
		f := newFixtureWith(t, withRoles(exporter))
		w := f.start(t, "h1")
		w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}))
		w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h1"}, Role: "FE", Conf: "a=1"}}}))
		w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h1", "FE"}}}))
		if got := types(w.step(4, f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{"h1"}, BEHosts: []string{}}))); !reflect.DeepEqual(got, []string{"ADD_FE@h1", "SECURE_CLUSTER@"}) {
			t.Fatalf("first build: %v", got)
		}
		if err := f.e.Complete(ctx, 1, w.pid); err != nil {
			t.Fatal(err)
		}
		w = f.start(t, "h2")
		w.step(1, f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: w.pid, InstallInfos: []InstallInfo{{Host: "h2", Role: "EXPORTER"}}}))
		w.step(2, f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: w.pid, DeployConfigs: []DeployConfig{{Hosts: []string{"h2"}, Role: "EXPORTER", Conf: "x=1"}}}))
		w.step(3, f.e.StartService(ctx, 1, StartServiceRequest{ProcessID: w.pid, DorisStarts: []HostRole{{"h2", "EXPORTER"}}}))
		if err := f.e.BuildCluster(ctx, 1, BuildClusterRequest{ProcessID: w.pid, FEHosts: []string{}, BEHosts: []string{}, AdminPassword: pw}); err != nil {
			t.Fatal(err)
		}
		want := []string(nil)
		if pw != "" {
			want = []string{"SECURE_CLUSTER@"}
		}
		if got := types(f.tasks(w.pid, 4)); !reflect.DeepEqual(got, want) {
			t.Fatalf("adminPassword %q: tasks %v, want %v", pw, got, want)
		}
	}
}
