package doris

import (
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
)

func TestDirs(t *testing.T) {
	for _, c := range []struct {
		installDir, home  string
		wantDir, wantHome string
		bad               bool
	}{
		{installDir: "/opt/doris", wantDir: "/opt/doris", wantHome: "/opt/doris/be"},
		{installDir: "/opt/doris/", home: "/opt/doris/be/", wantDir: "/opt/doris", wantHome: "/opt/doris/be"},
		{installDir: "/opt/doris", home: "/opt/doris/be_2", wantDir: "/opt/doris", wantHome: "/opt/doris/be_2"},
		{installDir: "/opt/doris", home: "/opt/other/be", bad: true},
		{installDir: "/opt/doris", home: "/opt/doris/be/x", bad: true},
		{installDir: "/opt/doris", home: "/opt/doris", bad: true},
		{installDir: "opt/doris", bad: true},
		{installDir: "", home: "/opt/doris/be", bad: true},
	} {
		req := sdk.Request{Node: sdk.Node{Role: RoleBE, InstallDir: c.installDir, Home: c.home}}
		dir, home, err := BE.dirs(req)
		if c.bad {
			if err == nil {
				t.Errorf("installDir %q home %q: accepted as %s, %s", c.installDir, c.home, dir, home)
			}
			continue
		}
		if err != nil || dir != c.wantDir || home != c.wantHome {
			t.Errorf("installDir %q home %q: %q %q %v, want %q %q", c.installDir, c.home, dir, home, err, c.wantDir, c.wantHome)
		}
	}
}
