package doris_test

import (
	"context"
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
