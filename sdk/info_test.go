package sdk

import (
	"strings"
	"testing"
)

func TestInfoValidate(t *testing.T) {
	ok := Info{Name: "doris-role-x", Role: "EXPORTER", Version: "1.2.0", APIMajor: APIMajor, Home: "exporter",
		PidFile: "run/x.pid", Params: []Param{{Name: "listenPort", Type: ParamInt, Default: "9100"}},
		Order: Order{After: []string{"FE"}}}
	tests := []struct {
		name string
		edit func(*Info)
		want string // "" = valid
	}{
		{"valid", func(*Info) {}, ""},
		{"lower-case role", func(i *Info) { i.Role = "fe" }, "role name"},
		{"role too long", func(i *Info) { i.Role = strings.Repeat("A", RoleNameMaxLen+1) }, "role name"},
		{"role with dash", func(i *Info) { i.Role = "MY-ROLE" }, "role name"},
		{"leading v", func(i *Info) { i.Version = "v1.2.0" }, "version"},
		{"other api major", func(i *Info) { i.APIMajor = APIMajor + 1 }, "apiMajor"},
		{"empty name", func(i *Info) { i.Name = "" }, "name"},
		{"home with slash", func(i *Info) { i.Home = "a/b" }, "home"},
		{"home upper", func(i *Info) { i.Home = "Exporter" }, "home"},
		{"absolute pid file", func(i *Info) { i.PidFile = "/run/x.pid" }, "pidFile"},
		{"pid file escapes", func(i *Info) { i.PidFile = "../x.pid" }, "pidFile"},
		{"unclean pid file", func(i *Info) { i.PidFile = "run//x.pid" }, "pidFile"},
		{"bad param type", func(i *Info) { i.Params[0].Type = "float" }, "type"},
		{"bad param default", func(i *Info) { i.Params[0].Default = "many" }, "default"},
		{"bad param name", func(i *Info) { i.Params[0].Name = "1x" }, "param name"},
		{"duplicate param", func(i *Info) { i.Params = append(i.Params, i.Params[0]) }, "twice"},
		{"after itself", func(i *Info) { i.Order.After = []string{"EXPORTER"} }, "itself"},
		{"after bad name", func(i *Info) { i.Order.After = []string{"be"} }, "order.after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := ok
			i.Params = append([]Param(nil), ok.Params...)
			tt.edit(&i)
			err := i.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParamParse(t *testing.T) {
	tests := []struct {
		typ, in, want string
		bad           bool
	}{
		{ParamInt, " 42 ", "42", false},
		{ParamInt, "4.2", "", true},
		{ParamBool, "TRUE", "true", false},
		{ParamBool, "yes", "", true},
		{ParamDuration, "90s", "1m30s", false},
		{ParamDuration, "-1s", "", true},
		{ParamDuration, "600", "600s", false},
		{ParamDuration, "-600", "", true},
		{ParamString, " kept ", " kept ", false},
	}
	for _, tt := range tests {
		got, err := Param{Name: "p", Type: tt.typ}.Parse(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("Parse(%s, %q) = %q, %v; want %q, bad=%v", tt.typ, tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestHomeDirAndHas(t *testing.T) {
	i := Info{Role: "BROKER", Capabilities: []string{CapMembership}}
	if got := i.HomeDir(); got != "broker" {
		t.Errorf("HomeDir() = %q, want broker", got)
	}
	i.Home = "apache_hdfs_broker"
	if got := i.HomeDir(); got != "apache_hdfs_broker" {
		t.Errorf("HomeDir() = %q", got)
	}
	if !i.Has(CapMembership) || i.Has(CapUpgrade) {
		t.Errorf("Has: membership %v, upgrade %v", i.Has(CapMembership), i.Has(CapUpgrade))
	}
}

func TestFacts(t *testing.T) {
	f := Facts{"port.http_port": "8030", "port.bad": "x", "port.high": "70000", "port.": "1", "other": "1"}
	f.SetBool(FactRunning, true)
	if v, known := f.Bool(FactRunning); !v || !known {
		t.Errorf("running = %v, %v", v, known)
	}
	f[FactHealthy] = "maybe"
	if _, known := f.Bool(FactHealthy); known {
		t.Error("a non-boolean value reads as known")
	}
	if _, known := f.Bool(FactAlive); known {
		t.Error("a missing fact reads as known")
	}
	ports := f.Ports()
	if len(ports) != 1 || ports["http_port"] != 8030 {
		t.Errorf("Ports() = %v, want only http_port 8030", ports)
	}
	if PortFact("query_port") != "port.query_port" {
		t.Errorf("PortFact = %q", PortFact("query_port"))
	}
}
