package doris

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// FindStartScriptArgv lists the role's start scripts under an unpacked
// package (bounded depth: every known layout has them within four levels).
func (s Spec) FindStartScriptArgv(dir string) []string {
	return []string{"find", dir, "-maxdepth", "5", "-type", "f", "-path", "*/bin/" + s.StartScript}
}

// ChooseRoleHome picks the role's folder from the start scripts found in
// an unpacked package (paths as printed by find). It knows the layouts
// 0.15 PALO-x/{fe,be,apache_hdfs_broker}, 1.2/2.x
// apache-doris-x/{fe,be,extensions/apache_hdfs_broker}, and per-role
// packages whose top folder is the role itself
// (apache-doris-fe-2.0.3-bin-x64/bin/start_fe.sh). The shallowest match
// wins; among equally deep ones, the folder named like the role.
func ChooseRoleHome(s Spec, unpacked string, found []string) (string, error) {
	var homes []string
	for _, f := range found {
		f = strings.TrimSpace(f)
		if f == "" || !strings.HasSuffix(f, "/bin/"+s.StartScript) {
			continue
		}
		homes = append(homes, path.Dir(path.Dir(path.Clean(f))))
	}
	if len(homes) == 0 {
		return "", fmt.Errorf("the package has no %s folder: no bin/%s in it (known layouts: PALO-<v>/%s, apache-doris-<v>/%s, or a %s-only package)",
			s.Role, s.StartScript, s.Dir, layoutHint(s), s.Role)
	}
	depth := func(p string) int { return strings.Count(strings.TrimPrefix(p, unpacked), "/") }
	sort.SliceStable(homes, func(i, j int) bool {
		di, dj := depth(homes[i]), depth(homes[j])
		if di != dj {
			return di < dj
		}
		ni, nj := path.Base(homes[i]) == s.Dir, path.Base(homes[j]) == s.Dir
		if ni != nj {
			return ni
		}
		return homes[i] < homes[j]
	})
	if len(homes) > 1 && depth(homes[0]) == depth(homes[1]) && (path.Base(homes[0]) == s.Dir) == (path.Base(homes[1]) == s.Dir) {
		return "", fmt.Errorf("the package has several %s folders (%s); use a package with one", s.Role, strings.Join(homes, ", "))
	}
	return homes[0], nil
}

func layoutHint(s Spec) string {
	if s.Role == Broker.Role {
		return "extensions/" + s.Dir
	}
	return s.Dir
}
