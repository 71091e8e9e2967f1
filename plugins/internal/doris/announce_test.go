package doris

import (
	"reflect"
	"testing"
)

func TestParseFEAnnouncement(t *testing.T) {
	const info = "2024-05-01 10:00:01,123 INFO (main|1) [FrontendOptions.initAddrUseIp():99] "
	for _, tc := range []struct {
		name, log string
		want      []string
	}{
		{"2.x line", info + "local address: /10.0.0.5.\n", []string{"10.0.0.5"}},
		{"with a host name", info + "local address: fe1/10.0.0.5.\n", []string{"10.0.0.5"}},
		{"IPv6", info + "local address: /fe80:0:0:0:0:0:0:1.\n", []string{"fe80:0:0:0:0:0:0:1"}},
		{"the newest of several starts", info + "local address: /10.0.0.9.\nother\n" + info + "local address: /10.0.0.5.\nmore\n", []string{"10.0.0.5"}},
		{"FQDN mode", info + "Use FQDN init local addr, FQDN: fe1.example, IP: 10.0.0.5\n", []string{"fe1.example", "10.0.0.5"}},
		{"no line", info + "Doris FE starting\n", nil},
		{"not an address", info + "local address: null.\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ParseFEAnnouncement(tc.log)
			if !reflect.DeepEqual(a.Addrs, tc.want) || a.Found() != (tc.want != nil) {
				t.Fatalf("got %+v, want %v", a, tc.want)
			}
		})
	}
}

func TestAnnouncementMatches(t *testing.T) {
	a := Announcement{Line: "x", Addrs: []string{"10.0.0.5"}}
	for addrs, want := range map[string]bool{"10.0.0.5": true, "10.0.0.6": false} {
		if got := a.Matches([]string{"fe1", addrs}); got != want {
			t.Errorf("%s: %v, want %v", addrs, got, want)
		}
	}
	if !(Announcement{Addrs: []string{"FE1.example"}}).Matches([]string{"fe1.example"}) {
		t.Error("a name matches whatever its case")
	}
	if !(Announcement{Addrs: []string{"::1"}}).Matches([]string{"0:0:0:0:0:0:0:1"}) {
		t.Error("an IPv6 address matches in any of its forms")
	}
}
