package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// Hardware reports CPU, memory and the disks holding the root, the data dir,
// the install dir and every block-device mount.
func Hardware(dataDir, installDir string) wire.Hardware {
	h := wire.Hardware{Disks: []wire.Disk{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if h.CPU == "" {
					h.CPU = strings.TrimSpace(v)
				}
			case "processor":
				h.Cores++
			}
		}
	}
	if h.Cores == 0 {
		h.Cores = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				h.TotalMemoryBytes = kb * 1024
			}
		}
	}
	h.TotalMemory = FormatBytes(h.TotalMemoryBytes)
	if len(h.CPU) > wire.MaxText {
		h.CPU = strings.ToValidUTF8(h.CPU[:wire.MaxText], "")
	}

	mounts := readMounts()
	want := map[string]bool{"/": true}
	for _, p := range []string{dataDir, installDir} {
		if p != "" {
			want[mountOf(mounts, p)] = true
		}
	}
	for mp, src := range mounts {
		if strings.HasPrefix(src, "/dev/") && !strings.HasPrefix(mp, "/proc") && !strings.HasPrefix(mp, "/sys") &&
			!strings.HasPrefix(mp, "/dev") && !strings.HasPrefix(mp, "/etc/") {
			want[mp] = true
		}
	}
	for _, mp := range pickMounts(want, mountOf(mounts, dataDir), mountOf(mounts, installDir)) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(mp, &st); err != nil {
			continue
		}
		h.Disks = append(h.Disks, wire.Disk{Mount: mp, TotalBytes: int64(st.Blocks) * st.Bsize, FreeBytes: int64(st.Bavail) * st.Bsize})
	}
	return h
}

// pickMounts chooses the mounts to report, in name order: at most
// wire.MaxDisks (what the manager accepts), "/" and the given ones first,
// none longer than wire.MaxPath.
func pickMounts(want map[string]bool, first ...string) []string {
	var head, rest []string
	for mp := range want {
		switch {
		case len(mp) > wire.MaxPath:
		case mp == "/" || slices.Contains(first, mp):
			head = append(head, mp)
		default:
			rest = append(rest, mp)
		}
	}
	sort.Strings(head)
	sort.Strings(rest)
	mps := append(head, rest...)
	mps = mps[:min(len(mps), wire.MaxDisks)]
	sort.Strings(mps)
	return mps
}

// FormatBytes renders a size as the API shows memory: "15.5 GiB".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// readMounts maps mount points to their sources from /proc/self/mountinfo.
func readMounts() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 2 {
			continue
		}
		m[unescape(a[4])] = b[1]
	}
	return m
}

func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// mountOf returns the longest mount point containing p.
func mountOf(mounts map[string]string, p string) string {
	p = filepath.Clean(p)
	best := "/"
	for mp := range mounts {
		if (p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}
