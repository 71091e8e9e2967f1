package dorissim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

func TestPackLayouts(t *testing.T) {
	stand := filepath.Join(t.TempDir(), "sim")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	feFiles := []string{"bin/start_fe.sh", "bin/stop_fe.sh", "conf/fe.conf", "lib/dorissim", "lib/doris-fe.jar", "doris-meta/", "log/"}
	beFiles := []string{"bin/start_be.sh", "bin/stop_be.sh", "conf/be.conf", "lib/doris_be", "storage/", "log/"}
	brFiles := []string{"bin/start_broker.sh", "bin/stop_broker.sh", "conf/apache_hdfs_broker.conf", "lib/dorissim"}
	tests := []struct {
		layout dorissim.Layout
		role   dorissim.Role
		top    string
		homes  map[string][]string
	}{
		{layout: dorissim.Layout015, top: "PALO-0.15.1-rc03-binary", homes: map[string][]string{
			"fe": feFiles, "be": beFiles, "apache_hdfs_broker": brFiles}},
		{layout: dorissim.Layout12, top: "apache-doris-1.2.7.1-bin-x64", homes: map[string][]string{
			"fe": feFiles, "be": beFiles, "extensions/apache_hdfs_broker": brFiles}},
		{layout: dorissim.Layout2x, top: "apache-doris-2.0.3-bin-x64", homes: map[string][]string{
			"fe": feFiles, "be": beFiles, "extensions/apache_hdfs_broker": brFiles}},
		{layout: dorissim.Layout2x, role: dorissim.RoleFE, top: "apache-doris-fe-2.0.3-bin-x86_64", homes: map[string][]string{"": feFiles}},
		{layout: dorissim.Layout12, role: dorissim.RoleBE, top: "apache-doris-be-1.2.7.1-bin-x86_64", homes: map[string][]string{"": beFiles}},
		{layout: dorissim.Layout12, role: dorissim.RoleBroker, top: "apache-doris-dependencies-1.2.7.1-bin-x86_64",
			homes: map[string][]string{"apache_hdfs_broker": brFiles}},
	}
	for _, tc := range tests {
		for _, format := range []dorissim.Format{dorissim.TarGz, dorissim.TarXz} {
			t.Run(string(tc.layout)+"/"+string(tc.role)+"/"+string(format), func(t *testing.T) {
				dir := t.TempDir()
				out := filepath.Join(dir, "pkg."+string(format))
				top, err := dorissim.Pack(dorissim.PackOptions{Layout: tc.layout, Role: tc.role, Format: format, Out: out, SimBinary: stand})
				if err != nil {
					t.Fatal(err)
				}
				if top != tc.top {
					t.Fatalf("top dir %q, want %q", top, tc.top)
				}
				extract(t, out, dir)
				for home, files := range tc.homes {
					for _, f := range files {
						p := filepath.Join(dir, tc.top, home, f)
						st, err := os.Stat(p)
						if err != nil {
							t.Fatalf("missing %s", p)
						}
						if strings.HasSuffix(f, "/") != st.IsDir() {
							t.Fatalf("%s: dir=%v", p, st.IsDir())
						}
						if (strings.HasSuffix(f, ".sh") || strings.HasPrefix(f, "lib/doris")) && !strings.HasSuffix(f, ".jar") &&
							st.Mode()&0o111 == 0 {
							t.Fatalf("%s is not executable", p)
						}
					}
				}
			})
		}
	}
}

func TestPackRejectsUnknown(t *testing.T) {
	for _, o := range []dorissim.PackOptions{
		{Layout: "3.9", Out: "x", SimBinary: "y"},
		{Format: "zip", Out: "x", SimBinary: "y"},
		{Role: "cn", Out: "x", SimBinary: "y"},
		{},
	} {
		if _, err := dorissim.Pack(o); err == nil {
			t.Errorf("%+v: want error", o)
		}
	}
}

func TestDefaultConfPorts(t *testing.T) {
	r := newRelease(t, dorissim.Layout2x)
	for role, want := range map[dorissim.Role][]string{
		dorissim.RoleFE:     {"http_port = 8030", "rpc_port = 9020", "query_port = 9030", "edit_log_port = 9010", "# meta_dir = ${DORIS_HOME}/doris-meta"},
		dorissim.RoleBE:     {"be_port = 9060", "webserver_port = 8040", "heartbeat_service_port = 9050", "brpc_port = 8060", "# storage_root_path = ${DORIS_HOME}/storage"},
		dorissim.RoleBroker: {"broker_ipc_port = 8000"},
	} {
		name := map[dorissim.Role]string{dorissim.RoleFE: "fe.conf", dorissim.RoleBE: "be.conf", dorissim.RoleBroker: "apache_hdfs_broker.conf"}[role]
		b, err := os.ReadFile(filepath.Join(r.dirs[role], "conf", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
}
