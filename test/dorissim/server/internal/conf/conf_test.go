package conf

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env := map[string]string{"DORIS_HOME": "/opt/doris", "USER": "doris"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, text, key, want string
		wantErr               bool
	}{
		{name: "plain", text: "http_port = 8030", key: "http_port", want: "8030"},
		{name: "no spaces", text: "http_port=8031", key: "http_port", want: "8031"},
		{name: "comment ignored", text: "# http_port = 1\nhttp_port = 2", key: "http_port", want: "2"},
		{name: "braced var", text: "meta_dir = ${DORIS_HOME}/doris-meta", key: "meta_dir", want: "/opt/doris/doris-meta"},
		{name: "bare var", text: "LOG_DIR = $DORIS_HOME/log", key: "LOG_DIR", want: "/opt/doris/log"},
		{name: "earlier key", text: "LOG_DIR = /x\naudit = $LOG_DIR/a", key: "audit", want: "/x/a"},
		{name: "quotes dropped", text: `JAVA_OPTS="-Xmx1g -Dx=y"`, key: "JAVA_OPTS", want: "-Xmx1g -Dx=y"},
		{name: "later wins", text: "a = 1\na = 2", key: "a", want: "2"},
		{name: "value with equals", text: "k = a=b", key: "k", want: "a=b"},
		{name: "not key value", text: "http_port 8030", wantErr: true},
		{name: "empty key", text: " = 3", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tc.text), lookup)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error for %q", tc.text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Get(tc.key); got != tc.want {
				t.Fatalf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestPort(t *testing.T) {
	c, err := Parse(strings.NewReader("a = 9030\nb = 0\nc = x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Port("a", 1); err != nil || p != 9030 {
		t.Fatalf("a: %d %v", p, err)
	}
	if p, err := c.Port("missing", 8030); err != nil || p != 8030 {
		t.Fatalf("default: %d %v", p, err)
	}
	for _, k := range []string{"b", "c"} {
		if _, err := c.Port(k, 1); err == nil {
			t.Fatalf("%s: want error", k)
		}
	}
}

func TestStorageRoots(t *testing.T) {
	tests := []struct {
		in      string
		want    []StorageRoot
		wantErr bool
	}{
		{in: "/data1", want: []StorageRoot{{"/data1", "HDD"}}},
		{in: "/data1,SSD;/data2", want: []StorageRoot{{"/data1", "SSD"}, {"/data2", "HDD"}}},
		{in: "/d1,medium:ssd;/d2,medium:HDD,capacity:50;", want: []StorageRoot{{"/d1", "SSD"}, {"/d2", "HDD"}}},
		{in: "/d1.SSD;/d2,10", want: []StorageRoot{{"/d1.SSD", "SSD"}, {"/d2", "HDD"}}},
		{in: "/d1,medium:tape", wantErr: true},
		{in: ",SSD", wantErr: true},
		{in: "/d1,colour:red", wantErr: true},
	}
	for _, tc := range tests {
		got, err := StorageRoots(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%q: want error", tc.in)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestChooseHost(t *testing.T) {
	// In the order the host lists them: loopback, then eth0, then eth1.
	addrs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.1.2.3"), net.ParseIP("192.168.7.9")}
	tests := []struct {
		pn     string
		legacy bool
		want   string
		err    bool
	}{
		{pn: "", want: "10.1.2.3"},
		{pn: "", legacy: true, want: "10.1.2.3"},
		{pn: "192.168.0.0/16", want: "192.168.7.9"},
		{pn: "172.16.0.0/12;192.168.7.9", want: "192.168.7.9"},
		// The host's order decides, not the order of the networks.
		{pn: "192.168.0.0/16;10.0.0.0/8", want: "10.1.2.3"},
		{pn: "192.168.0.0/16;10.0.0.0/8", legacy: true, want: "10.1.2.3"},
		// Since 2.0 a loopback address may be named; before, it never
		// matches, and the fallback is the loopback address anyway.
		{pn: "127.0.0.1/32", want: "127.0.0.1"},
		{pn: "127.0.0.1/32", legacy: true, want: "127.0.0.1"},
		// Nothing matches: 2.0 and later refuse to start, earlier releases
		// announce the loopback address.
		{pn: "172.16.0.0/12", err: true},
		{pn: "172.16.0.0/12", legacy: true, want: "127.0.0.1"},
		{pn: "not-a-cidr", err: true},
		{pn: "not-a-cidr", legacy: true, err: true},
	}
	for _, tc := range tests {
		got, err := ChooseHost(tc.pn, addrs, tc.legacy)
		if tc.err != (err != nil) || got != tc.want {
			t.Errorf("%q legacy=%v: got %q %v, want %q err=%v", tc.pn, tc.legacy, got, err, tc.want, tc.err)
		}
	}
	if got, err := ChooseHost("172.16.0.0/12", addrs, false); !errors.Is(err, ErrNoPriorityMatch) {
		t.Errorf("no match: %q %v, want ErrNoPriorityMatch", got, err)
	}
	if got, _ := ChooseHost("", []net.IP{net.ParseIP("127.0.0.1")}, false); got != "127.0.0.1" {
		t.Errorf("loopback only: got %q", got)
	}
}
