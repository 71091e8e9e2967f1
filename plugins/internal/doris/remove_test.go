package doris_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
	"github.com/dorismanager/dorismanager/sdk"
)

func TestRemove(t *testing.T) {
	cases := []struct {
		name     string
		spec     doris.Spec
		conf     string // "" with noConf: no conf deployed
		noConf   bool
		facts    sdk.Facts
		purge    bool
		running  bool
		wantRm   []string
		wantFail string
	}{
		{name: "home only", spec: doris.FE, conf: "meta_dir = /data/doris/meta\n", wantRm: []string{"/opt/doris/fe"}},
		{name: "FE purge", spec: doris.FE, conf: "meta_dir = /data/doris/meta\n", purge: true, wantRm: []string{"/opt/doris/fe", "/data/doris/meta"}},
		{name: "FE purge, meta inside home", spec: doris.FE, conf: "# default meta_dir\n", purge: true, wantRm: []string{"/opt/doris/fe"}},
		{name: "BE purge", spec: doris.BE, conf: "storage_root_path = /data1/be,medium:SSD;/data2/be;${DORIS_HOME}/storage\n", purge: true,
			wantRm: []string{"/opt/doris/be", "/data1/be", "/data2/be"}},
		{name: "broker purge", spec: doris.Broker, purge: true, wantRm: []string{"/opt/doris/apache_hdfs_broker"}},
		{name: "conf gone: facts", spec: doris.BE, noConf: true, purge: true, facts: sdk.Facts{"storageRootPath": "/data1/be;/data2/be"},
			wantRm: []string{"/opt/doris/be", "/data1/be", "/data2/be"}},
		{name: "shallow data dir", spec: doris.FE, conf: "meta_dir = /data\n", purge: true, wantFail: `refusing to purge data dir "/data"`},
		{name: "data dir holds the install dir", spec: doris.BE, conf: "storage_root_path = /opt/doris\n", purge: true,
			wantFail: "it holds the install dir /opt/doris"},
		{name: "data dir is an ancestor", spec: doris.BE, conf: "storage_root_path = /data/x;/opt\n", purge: true, wantFail: `"/opt"`},
		{name: "root", spec: doris.FE, conf: "meta_dir = /\n", purge: true, wantFail: `refusing to purge data dir "/"`},
		{name: "relative fact", spec: doris.FE, noConf: true, purge: true, facts: sdk.Facts{"metaDir": "meta"}, wantFail: "not an absolute path"},
		{name: "running", spec: doris.FE, running: true, wantFail: "still runs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := doristest.New()
			if !tc.noConf {
				h.Install(tc.spec, tc.conf)
			}
			if tc.running {
				h.SetRunning(tc.spec, 4321)
			}
			var removed []string
			h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
				removed = append(removed, cmd.Argv[3:]...)
				return sdk.ExecResult{}, nil
			}, "rm", "-rf", "--")
			h.ExecOK("", "bash", "-c", doris.CacheCleanScript)
			h.ExecOK("", "bash", "-c", doris.PreviousHomesScript)
			req := sdk.Request{Node: sdk.Node{Host: "10.0.0.1", Role: tc.spec.Role, InstallDir: "/opt/doris", Facts: tc.facts}, Purge: tc.purge}
			res, err := (&doris.Base{Spec: tc.spec}).Remove(context.Background(), h, req)
			if tc.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantFail) {
					t.Fatalf("got %v, want %q", err, tc.wantFail)
				}
				if len(removed) != 0 {
					t.Fatalf("removed %v although refused", removed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(removed, " ") != strings.Join(tc.wantRm, " ") {
				t.Fatalf("removed %v, want %v", removed, tc.wantRm)
			}
			if res.Facts[sdk.FactRunning] != "false" {
				t.Errorf("facts %v", res.Facts)
			}
		})
	}
}

// On a real file system: removing a role takes the previous version its
// upgrade kept with it; the package cache and the upgrade staging area go
// with the last role in installDir, and other files in it stay.
func TestRemoveCleansInstallDir(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, text string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const marker = ".doris-manager-package"
	write("fe/"+marker, "http://mirror/doris-2.1.8.tar.gz\n")
	write("fe/.doris-manager-previous", filepath.Join(dir, "fe.prev-2.1.7")+"\n")
	write("fe.prev-2.1.7/"+marker, "http://mirror/doris-2.1.7.tar.gz\n")
	write("fe.prev-2.1.6/"+marker, "http://mirror/doris-2.1.6.tar.gz\n") // an upgrade before
	write("fe.prev-mine/notes.txt", "the operator's copy, not the manager's\n")
	write("be/"+marker, "http://mirror/doris-2.1.8.tar.gz\n")
	write(".packages/0123/apache-doris-2.1.8-bin-x64/fe/bin/start_fe.sh", "")
	write(".upgrade/failed-fe-2.1.8/"+marker, "")
	write("notes.txt", "the operator's\n")
	h := doristest.NewLocalHost(t)
	remove := func(s doris.Spec) sdk.Result {
		t.Helper()
		req := sdk.Request{Node: sdk.Node{Host: "127.0.0.1", Role: s.Role, InstallDir: dir}}
		res, err := (&doris.Base{Spec: s}).Remove(context.Background(), h, req)
		if err != nil {
			t.Fatalf("remove %s: %v", s.Role, err)
		}
		return res
	}
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(dir, rel))
		return err == nil
	}

	res := remove(doris.FE)
	for _, gone := range []string{"fe", "fe.prev-2.1.7", "fe.prev-2.1.6"} {
		if exists(gone) {
			t.Errorf("%s is still there after removing the FE", gone)
		}
	}
	if !exists(".packages") || !exists(".upgrade") {
		t.Fatalf("the package cache went while the BE is still installed (%s)", res.Summary)
	}
	if !strings.Contains(res.Summary, filepath.Join(dir, "fe.prev-2.1.6")+", "+filepath.Join(dir, "fe.prev-2.1.7")) {
		t.Errorf("summary %q does not name the earlier versions", res.Summary)
	}
	if !exists("fe.prev-mine") {
		t.Error("a folder without the manager's marker was removed")
	}

	res = remove(doris.BE)
	for _, gone := range []string{"be", ".packages", ".upgrade"} {
		if exists(gone) {
			t.Errorf("%s is still there after removing the last role", gone)
		}
	}
	if !exists("notes.txt") {
		t.Error("a file the manager did not put there was removed")
	}
	if !strings.Contains(res.Summary, "package cache went too") {
		t.Errorf("summary %q does not say the cache went", res.Summary)
	}
	// Removing again is fine and says nothing about a cache.
	if res := remove(doris.BE); strings.Contains(res.Summary, "cache") {
		t.Errorf("second removal: %q", res.Summary)
	}
}

// A listed earlier version that is not a <home>.prev-<version> sibling
// inside installDir is refused, and nothing is removed.
func TestRemoveRefusesAForeignPreviousVersion(t *testing.T) {
	for _, prev := range []string{"/", "/opt/doris", "/opt/doris/be.prev-1", "/opt/doris/fe.prev-1/../../etc", "/opt/other/fe.prev-1", "/opt/doris/fe-old", "relative"} {
		t.Run(prev, func(t *testing.T) {
			h := doristest.New()
			h.Install(doris.FE, "")
			h.ExecOK(prev+"\n", "bash", "-c", doris.PreviousHomesScript)
			var removed []string
			h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
				removed = append(removed, cmd.Argv[3:]...)
				return sdk.ExecResult{}, nil
			}, "rm", "-rf", "--")
			req := sdk.Request{Node: sdk.Node{Host: "10.0.0.1", Role: doris.RoleFE, InstallDir: "/opt/doris"}}
			_, err := (&doris.Base{Spec: doris.FE}).Remove(context.Background(), h, req)
			if err == nil || !strings.Contains(err.Error(), "remove it by hand") || len(removed) != 0 {
				t.Fatalf("got %v, removed %v", err, removed)
			}
		})
	}
}
