package process

import (
	"strings"
	"testing"
)

// installDir: absolute, clean, of safe characters, and neither in nor
// above a system folder, nor a folder everything shares.
func TestCheckInstallDir(t *testing.T) {
	cases := []struct {
		dir  string
		says string // "" accepted
	}{
		{"/opt/doris", ""},
		{"/opt/doris/cluster-1", ""},
		{"/data/doris", ""},
		{"/data", ""},
		{"/home/doris/install", ""},
		{"/srv/doris", ""},
		{"/var/lib/doris", ""},
		{"/usr/local/doris", ""},
		{"/usr/local/doris/2.0", ""},
		{"/root/doris", ""},
		{"/mnt/disk1/doris", ""},

		{"", "is required"},
		{"opt/doris", "must be an absolute path"},
		{"./doris", "must be an absolute path"},
		{"/opt/../etc", "not clean"},
		{"/opt/doris/..", "not clean"},
		{"/opt/doris/", "not clean"},
		{"/opt//doris", "not clean"},
		{"/opt/$(id)", "may only contain"},
		{"/opt/doris dir", "may only contain"},
		{"/", "root directory"},
		{"/etc", `"/etc" is a folder of the operating system`},
		{"/etc/doris", "inside /etc, a folder of the operating system"},
		{"/usr", "is a folder of the operating system"},
		{"/usr/share/doris", "inside /usr"},
		{"/usr/local", "inside /usr"},
		{"/usr/local/bin", "inside /usr"},
		{"/usr/local/lib/doris", "inside /usr"},
		{"/bin", "operating system"},
		{"/sbin", "operating system"},
		{"/lib", "operating system"},
		{"/lib64/doris", "inside /lib64"},
		{"/libx32", "operating system"},
		{"/boot/doris", "inside /boot"},
		{"/proc", "operating system"},
		{"/sys/fs/doris", "inside /sys"},
		{"/dev/shm/doris", "inside /dev"},
		{"/run/doris", "inside /run"},
		{"/var/run/doris", "inside /var/run"},
		{"/var/lib/dpkg", "operating system"},
		{"/var/lib/dpkg/info", "inside /var/lib/dpkg"},
		{"/var/lib/rpm", "operating system"},
		{"/var/lib", "holds /var/lib/"},
		{"/var", "holds /var/"},
		{"/var/cache", "holds /var/cache/"},
		{"/tmp/doris", "emptied at reboot"},
		{"/var/tmp/doris", "emptied at reboot"},
		{"/opt", "shared by everything on the host: use a folder of its own below it, such as /opt/doris"},
		{"/home", "such as /home/doris"},
		{"/root", "shared"},
		{"/srv", "shared"},
		{"/mnt", "shared"},
	}
	for _, c := range cases {
		err := checkInstallDir("installDir", c.dir)
		switch {
		case c.says == "" && err != nil:
			t.Errorf("%q: refused: %v", c.dir, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says) || KindOf(err) != KindInvalid):
			t.Errorf("%q: %v; want a refusal saying %q", c.dir, err, c.says)
		case c.says != "" && c.dir != "" && !strings.Contains(err.Error(), "installDir"):
			t.Errorf("%q: %v; want the field named", c.dir, err)
		}
	}
}
