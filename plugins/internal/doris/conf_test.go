package doris

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConfValidation(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		text    string
		wantErr []string // substrings of the error, in order
		ports   map[string]int
	}{
		{name: "defaults", spec: FE, text: "# comment\n\nmeta_dir = ${DORIS_HOME}/doris-meta\n",
			ports: map[string]int{"http_port": 8030, "rpc_port": 9020, "query_port": 9030, "edit_log_port": 9010}},
		{name: "shell style values", spec: FE, text: "JAVA_OPTS=\"-Xmx8192m -XX:+UseMembar -Xloggc:$DORIS_HOME/log/fe.gc.log\"\nLOG_DIR = ${DORIS_HOME}/log\nhttp_port = 18030\n",
			ports: map[string]int{"http_port": 18030, "rpc_port": 9020, "query_port": 9030, "edit_log_port": 9010}},
		{name: "optional port disabled", spec: BE, text: "arrow_flight_sql_port = -1\nbrpc_port=18060\n",
			ports: map[string]int{"be_port": 9060, "webserver_port": 8040, "heartbeat_service_port": 9050, "brpc_port": 18060}},
		{name: "not key value", spec: FE, text: "http_port = 8030\nthis is not a setting\n", wantErr: []string{"line 2: expected key = value"}},
		{name: "bad key", spec: FE, text: "my key = 1\n", wantErr: []string{"line 1:", "not a valid key"}},
		{name: "unterminated var", spec: FE, text: "meta_dir = ${DORIS_HOME/meta\n", wantErr: []string{"line 1: meta_dir has an unterminated ${...}"}},
		{name: "unbalanced quote", spec: FE, text: "JAVA_OPTS=\"-Xmx1g\n", wantErr: []string{"line 1: JAVA_OPTS has an unbalanced quote"}},
		{name: "port not number", spec: BE, text: "be_port = 90x0\n", wantErr: []string{`line 1: be_port = "90x0" is not a port number`}},
		{name: "port out of range", spec: FE, text: "query_port = 70000\n", wantErr: []string{"line 1: query_port = 70000 is out of range"}},
		{name: "known port disabled refused", spec: FE, text: "http_port = -1\n", wantErr: []string{"line 1: http_port = -1 is out of range"}},
		{name: "duplicate port key", spec: FE, text: "http_port = 8030\n\nhttp_port = 8031\n", wantErr: []string{"line 3: http_port is already set on line 1"}},
		{name: "two keys one port", spec: BE, text: "be_port = 9050\n", wantErr: []string{"be_port, heartbeat_service_port all use port 9050"}},
		{name: "several problems sorted", spec: FE, text: "rpc_port = abc\nbroken\nhttp_port=0\n", wantErr: []string{"line 1:", "line 2:", "line 3:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ports, err := Validate("fe.conf", tc.text, tc.spec)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !reflect.DeepEqual(ports, tc.ports) {
					t.Fatalf("ports = %v, want %v", ports, tc.ports)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error with %q, got none (ports %v)", tc.wantErr, ports)
			}
			msg := err.Error()
			at := 0
			for _, w := range tc.wantErr {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", msg, w)
				}
				at += i + len(w)
			}
		})
	}
}

func TestConfGetVarsExpand(t *testing.T) {
	c, err := ParseConf("be.conf", "LOG_DIR = ${DORIS_HOME}/logs\nPID_DIR=\"${LOG_DIR}/pid\"\nsys_log_level = INFO\nsys_log_level = WARNING\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("sys_log_level"); v != "WARNING" {
		t.Errorf("last line should win, got %q", v)
	}
	vars := c.Vars(BE, "/opt/doris/be")
	if vars["PID_DIR"] != "/opt/doris/be/logs/pid" {
		t.Errorf("PID_DIR = %q", vars["PID_DIR"])
	}
	if _, err := Expand("${NOPE}/x", vars); err == nil || !strings.Contains(err.Error(), "${NOPE} is not defined") {
		t.Errorf("unknown var error = %v", err)
	}
	bv := (&Conf{}).Vars(Broker, "/opt/doris/apache_hdfs_broker")
	if bv["BROKER_HOME"] != "/opt/doris/apache_hdfs_broker" {
		t.Errorf("broker vars %v", bv)
	}
}

func TestParseStorageRoots(t *testing.T) {
	vars := map[string]string{"DORIS_HOME": "/opt/be"}
	tests := []struct {
		in      string
		want    []StorageRoot
		wantErr string
	}{
		{in: "${DORIS_HOME}/storage", want: []StorageRoot{{Path: "/opt/be/storage"}}},
		{in: "/data1,SSD;/data2,medium:hdd ; /data3,capacity:50;/data4,10", want: []StorageRoot{
			{"/data1", "SSD"}, {"/data2", "HDD"}, {"/data3", ""}, {"/data4", ""}}},
		{in: "/data1,medium:SSD,capacity:100;", want: []StorageRoot{{"/data1", "SSD"}}},
		{in: "data1", wantErr: "must be absolute"},
		{in: "/d1,FLASH", wantErr: `"FLASH" is not SSD, HDD`},
		{in: "${X}/d", wantErr: "${X} is not defined"},
		{in: " ; ", wantErr: "names no directory"},
	}
	for _, tc := range tests {
		got, err := ParseStorageRoots(tc.in, vars)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestChooseRoleHome(t *testing.T) {
	const u = "/opt/doris/.packages/abc"
	tests := []struct {
		name  string
		spec  Spec
		found []string
		want  string
		err   string
	}{
		{name: "0.15 fe", spec: FE, found: []string{u + "/PALO-0.15.0-release/fe/bin/start_fe.sh"}, want: u + "/PALO-0.15.0-release/fe"},
		{name: "0.15 broker", spec: Broker, found: []string{u + "/PALO-0.15.0-release/apache_hdfs_broker/bin/start_broker.sh"}, want: u + "/PALO-0.15.0-release/apache_hdfs_broker"},
		{name: "1.2 be", spec: BE, found: []string{u + "/apache-doris-1.2.7-bin-x64/be/bin/start_be.sh", ""}, want: u + "/apache-doris-1.2.7-bin-x64/be"},
		{name: "2.x broker in extensions", spec: Broker, found: []string{u + "/apache-doris-2.0.3-bin-x64/extensions/apache_hdfs_broker/bin/start_broker.sh"}, want: u + "/apache-doris-2.0.3-bin-x64/extensions/apache_hdfs_broker"},
		{name: "per-role package", spec: FE, found: []string{u + "/apache-doris-fe-2.0.3-bin-x64/bin/start_fe.sh"}, want: u + "/apache-doris-fe-2.0.3-bin-x64"},
		{name: "shallowest wins", spec: FE, found: []string{u + "/x/fe/test/fe/bin/start_fe.sh", u + "/x/fe/bin/start_fe.sh"}, want: u + "/x/fe"},
		{name: "role-named folder wins a tie", spec: FE, found: []string{u + "/x/other/bin/start_fe.sh", u + "/x/fe/bin/start_fe.sh"}, want: u + "/x/fe"},
		{name: "ambiguous", spec: BE, found: []string{u + "/a/be/bin/start_be.sh", u + "/b/be/bin/start_be.sh"}, err: "several BE folders"},
		{name: "missing", spec: Broker, found: []string{""}, err: "the package has no BROKER folder: no bin/start_broker.sh"},
		{name: "wrong script ignored", spec: BE, found: []string{u + "/x/be/bin/start_be.sh.bak"}, err: "no BE folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseRoleHome(tc.spec, u, tc.found)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
