package doris

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
)

func mustConf(t *testing.T, text string) *Conf {
	t.Helper()
	c, err := ParseConf("x.conf", text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiffConf(t *testing.T) {
	old := mustConf(t, "# c\nhttp_port = 8030\nqe_slow_log_ms = 5000\nJAVA_OPTS = \"-Xmx1g\"\nsys_log_level = INFO\nsys_log_level = WARN\ngone = 1\n")
	new := mustConf(t, "http_port = 8030\nqe_slow_log_ms=100\nJAVA_OPTS = \"-Xmx2g\"\nsys_log_level = WARN\nnew_key = ${DORIS_HOME}/x\n# comment only\n")
	got := DiffConf(old, new)
	want := []sdk.Change{
		{Key: "JAVA_OPTS", Old: "-Xmx1g", New: "-Xmx2g"},
		{Key: "gone", Old: "1"},
		{Key: "new_key", New: "${DORIS_HOME}/x"},
		{Key: "qe_slow_log_ms", Old: "5000", New: "100"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diff\n got %+v\nwant %+v", got, want)
	}
	if d := DiffConf(old, old); len(d) != 0 {
		t.Fatalf("same conf: %+v", d)
	}
}

func TestImpact(t *testing.T) {
	mutable := map[string]LiveItem{"qe_slow_log_ms": {Mutable: true}, "disable_auto_compaction": {Mutable: true}, "http_port": {},
		"path_key": {Mutable: true}, "JAVA_OPTS": {Mutable: true}}
	vars := map[string]string{"DORIS_HOME": "/opt/doris/fe"}
	cases := []struct {
		name      string
		c         sdk.Change
		running   bool
		want, val string
	}{
		{"mutable", sdk.Change{Key: "qe_slow_log_ms", Old: "5000", New: "100"}, true, sdk.ImpactLive, "100"},
		{"added mutable", sdk.Change{Key: "disable_auto_compaction", New: "true"}, true, sdk.ImpactLive, "true"},
		{"immutable", sdk.Change{Key: "http_port", Old: "8030", New: "8031"}, true, sdk.ImpactRestart, ""},
		{"unknown to the process", sdk.Change{Key: "my_key", New: "1"}, true, sdk.ImpactRestart, ""},
		{"removed", sdk.Change{Key: "qe_slow_log_ms", Old: "5000"}, true, sdk.ImpactRestart, ""},
		{"not running", sdk.Change{Key: "qe_slow_log_ms", Old: "5000", New: "100"}, false, sdk.ImpactRestart, ""},
		{"script environment", sdk.Change{Key: "JAVA_OPTS", Old: "a", New: "b"}, true, sdk.ImpactRestart, ""},
		{"expanded", sdk.Change{Key: "path_key", New: "${DORIS_HOME}/x"}, true, sdk.ImpactLive, "/opt/doris/fe/x"},
		{"unknown variable", sdk.Change{Key: "path_key", New: "${NOPE}/x"}, true, sdk.ImpactRestart, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, v := Impact(tc.c, tc.running, mutable, vars)
			if got != tc.want || v != tc.val {
				t.Fatalf("got %s %q, want %s %q", got, v, tc.want, tc.val)
			}
		})
	}
}

func deployedOf(t *testing.T, s Spec, text string) Deployed {
	t.Helper()
	d, err := s.deployed(s.Home("/opt/doris"), text)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCheckChanges(t *testing.T) {
	cases := []struct {
		name      string
		s         Spec
		old, new  string
		wantAdded []string
		wantErr   string
	}{
		{name: "FE settings", s: FE, old: "qe_slow_log_ms = 1\n", new: "qe_slow_log_ms = 2\nhttp_port = 8031\n"},
		{name: "FE edit_log_port", s: FE, old: "", new: "edit_log_port = 9011\n", wantErr: "FE cannot change edit_log_port"},
		{name: "FE meta_dir", s: FE, old: "meta_dir = /data/meta\n", new: "meta_dir = /data/meta2\n", wantErr: "meta_dir"},
		{name: "BE heartbeat port", s: BE, old: "heartbeat_service_port = 9050\n", new: "heartbeat_service_port = 9051\n", wantErr: "heartbeat_service_port"},
		{name: "BE adds a root", s: BE, old: "storage_root_path = /d1/be\n", new: "storage_root_path = /d1/be;/d2/be,medium:SSD\n",
			wantAdded: []string{"/d2/be"}},
		{name: "BE drops a root", s: BE, old: "storage_root_path = /d1/be;/d2/be\n", new: "storage_root_path = /d2/be\n",
			wantErr: "cannot drop storage root /d1/be"},
		{name: "BE default root made explicit", s: BE, old: "", new: "storage_root_path = ${DORIS_HOME}/storage\n"},
		{name: "broker port", s: Broker, old: "", new: "broker_ipc_port = 8001\n", wantErr: "broker_ipc_port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, new := deployedOf(t, tc.s, tc.old), deployedOf(t, tc.s, tc.new)
			added, err := checkChanges(tc.s, old, new, DiffConf(old.Conf, new.Conf))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(added, tc.wantAdded) {
				t.Fatalf("added %v %v, want %v", added, err, tc.wantAdded)
			}
		})
	}
}

// The switch moves data that lives inside the home into the new home and
// keeps everything else of the old one beside it.
func TestSwitchScript(t *testing.T) {
	root := t.TempDir()
	home, prev, staged := filepath.Join(root, "fe"), filepath.Join(root, "fe.prev-2.1.7"), filepath.Join(root, ".upgrade", "fe-2.1.8")
	for p, body := range map[string]string{
		filepath.Join(home, "lib", "v"):                   "2.1.7",
		filepath.Join(home, "doris-meta", "image", "img"): "meta",
		filepath.Join(home, "conf", "fe.conf"):            "conf",
		filepath.Join(staged, "lib", "v"):                 "2.1.8",
		filepath.Join(staged, "conf", "fe.conf"):          "conf",
	} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	os.MkdirAll(filepath.Join(staged, "doris-meta"), 0o755) // the package's empty placeholder
	if out, code := runArgv(t, SwitchArgv(home, prev, staged, "doris-meta", "data/absent")); code != 0 {
		t.Fatalf("switch exit %d: %s", code, out)
	}
	for p, want := range map[string]string{
		filepath.Join(home, "lib", "v"):                   "2.1.8",
		filepath.Join(home, "doris-meta", "image", "img"): "meta",
		filepath.Join(prev, "lib", "v"):                   "2.1.7",
		filepath.Join(home, previousFile):                 prev + "\n",
	} {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", p, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(prev, "doris-meta")); !os.IsNotExist(err) {
		t.Errorf("meta left in the old home: %v", err)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Errorf("staged dir left: %v", err)
	}

	// A package that ships data where the node keeps its own: stop, touch nothing more.
	home2, staged2 := filepath.Join(root, "be"), filepath.Join(root, "be-new")
	os.MkdirAll(filepath.Join(home2, "storage", "data"), 0o755)
	os.MkdirAll(filepath.Join(staged2, "storage", "shipped"), 0o755)
	if _, code := runArgv(t, SwitchArgv(home2, home2+".prev", staged2, "storage")); code == 0 {
		t.Fatal("switch replaced a non-empty storage dir of the package")
	}
	if _, err := os.Stat(filepath.Join(home2+".prev", "storage", "data")); err != nil {
		t.Errorf("the node's storage moved or lost: %v", err)
	}
}

func TestRollbackText(t *testing.T) {
	u := upgrade{s: BE, host: "10.0.0.4", home: "/opt/doris/be", prev: "/opt/doris/be.prev-2.1.7", dataRel: []string{"storage"},
		oldV: "2.1.7", newV: "2.1.8", javaHome: "/opt/jdk", failedHome: "/opt/doris/.upgrade/failed-be-2.1.8"}
	want := `To roll BE back to 2.1.7, on 10.0.0.4:
  bash /opt/doris/be/bin/stop_be.sh   # if it runs
  mv /opt/doris/be/storage /opt/doris/be.prev-2.1.7/storage
  mv /opt/doris/be /opt/doris/.upgrade/failed-be-2.1.8
  mv /opt/doris/be.prev-2.1.7 /opt/doris/be
  JAVA_HOME=/opt/jdk bash /opt/doris/be/bin/start_be.sh --daemon
`
	if got := u.rollback(); !strings.HasPrefix(got, want) {
		t.Fatalf("rollback:\n%s\nwant prefix:\n%s", got, want)
	}
}
