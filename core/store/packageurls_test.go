package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// RewritePackageURLs rewrites the package URLs of processes and of tasks'
// input, keeps every other field of the input, leaves rows the rewrite
// does not change alone, and changes nothing when the rewrite fails.
func TestRewritePackageURLs(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		urls := []string{"http://u:pw1@h/x.tgz", "http://h/y.tgz", "http://u@h/z.tgz"}
		var pids []int64
		for _, u := range urls {
			p := store.Process{ClusterID: 1, Status: store.ProcessSuccess, Finish: true, PackageURL: u}
			if err := s.CreateProcess(ctx, &p); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, p.ID)
		}
		inputs := []string{
			`{"clusterId":1,"host":"h1","packageUrl":"http://u:pw2@h/t.tgz","conf":"a<b & c@d","params":{"javaHome":"/opt/jdk"}}`,
			`{"clusterId":1,"conf":"mail=a@b","packageUrl":"http://h/y.tgz"}`,
			`{"clusterId":1,"conf":"mail=a@b"}`,
			`packageUrl x@y, no JSON`,
		}
		var tasks []store.Task
		for i, in := range inputs {
			tasks = append(tasks, store.Task{ProcessID: pids[0], Step: i, TaskType: "INSTALL_BE", Status: store.StatusSuccess, Input: in})
		}
		if err := s.CreateTasks(ctx, tasks); err != nil {
			t.Fatal(err)
		}
		state := func() (ps []string, ins []string) {
			for _, id := range pids {
				p, err := s.GetProcess(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p.PackageURL)
			}
			ts, err := s.TasksOfProcess(ctx, pids[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range ts {
				ins = append(ins, tk.Input)
			}
			return ps, ins
		}
		seal := func(u string) (string, error) { return strings.Replace(u, ":pw", ":SEALED", 1), nil }

		// A failing rewrite (here: of the task's URL) changes nothing.
		_, _, err := s.RewritePackageURLs(ctx, ":SEALED", func(u string) (string, error) {
			if strings.Contains(u, "pw2") {
				return "", errors.New("cannot seal")
			}
			return seal(u)
		})
		if err == nil || !strings.Contains(err.Error(), "cannot seal") {
			t.Fatalf("failing rewrite: %v", err)
		}
		if ps, ins := state(); !reflect.DeepEqual(ps, urls) || !reflect.DeepEqual(ins, inputs) {
			t.Fatalf("a failed rewrite changed rows: %q %q", ps, ins)
		}

		np, nt, err := s.RewritePackageURLs(ctx, ":SEALED", seal)
		if err != nil || np != 1 || nt != 1 {
			t.Fatalf("rewrite: %d processes, %d tasks, %v; want 1 and 1", np, nt, err)
		}
		ps, ins := state()
		if want := []string{"http://u:SEALED1@h/x.tgz", urls[1], urls[2]}; !reflect.DeepEqual(ps, want) {
			t.Fatalf("processes %q, want %q", ps, want)
		}
		if !reflect.DeepEqual(ins[1:], inputs[1:]) {
			t.Fatalf("inputs without a password changed: %q", ins[1:])
		}
		var got, want map[string]any
		if err := json.Unmarshal([]byte(ins[0]), &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(inputs[0]), &want)
		want["packageUrl"] = "http://u:SEALED2@h/t.tgz"
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %s, want %v", ins[0], want)
		}

		// Nothing left to rewrite: nothing is written, and the rows marked
		// done are not even read.
		var passed []string
		np, nt, err = s.RewritePackageURLs(ctx, ":SEALED", func(u string) (string, error) {
			if strings.Contains(u, "SEALED") {
				passed = append(passed, u)
			}
			return seal(u)
		})
		if err != nil || np != 0 || nt != 0 || len(passed) != 0 {
			t.Fatalf("second rewrite: %d processes, %d tasks, %v; passed %q", np, nt, err, passed)
		}
	})
}
