package cli

import (
	"testing"
)

func TestNewPart(t *testing.T) {
	long := ""
	for i := 0; i < 600; i++ {
		long += "line of the task log\n"
	}
	cases := []struct {
		name, prev, cur, want string
	}{
		{"first read", "", "a\nb\n", "a\nb\n"},
		{"grown", "a\nb\n", "a\nb\nc\n", "c\n"},
		{"unchanged", "a\n", "a\n", ""},
		{"head cut away", "x\n" + long + "end\n", long + "end\nmore\n", "more\n"},
		{"started over", "old run\n", "new run\n", "new run\n"},
	}
	for _, c := range cases {
		if got := newPart(c.prev, c.cur); got != c.want {
			t.Errorf("%s: newPart = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine("dorismanager", "cluster", "deploy", "--server", "https://10.0.0.5:9601", "/tmp/my cluster's.yaml")
	want := `dorismanager cluster deploy --server https://10.0.0.5:9601 '/tmp/my cluster'\''s.yaml'`
	if got != want {
		t.Errorf("commandLine = %s\nwant %s", got, want)
	}
	if got := commandLine(""); got != "''" {
		t.Errorf("empty word: %s", got)
	}
}

func TestPorts(t *testing.T) {
	if got := ports(map[string]int{"query_port": 9030, "http_port": 8030, "port.edit_log_port": 9010}); got != "edit_log=9010 http=8030 query=9030" {
		t.Errorf("ports = %q", got)
	}
	if got := ports(nil); got != "-" {
		t.Errorf("no ports = %q", got)
	}
}

func TestPlainHTTPWarning(t *testing.T) {
	for server, warn := range map[string]bool{"http://127.0.0.1:9601": false, "http://localhost:9601": false, "http://[::1]:9601": false,
		"https://10.0.0.5:9601": false, "http://10.0.0.5:9601": true} {
		if got := plainHTTPWarning(server) != ""; got != warn {
			t.Errorf("%s: warning %v, want %v", server, got, warn)
		}
	}
}
