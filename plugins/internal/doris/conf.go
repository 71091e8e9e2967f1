package doris

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Entry is one "key = value" line of a conf file.
type Entry struct {
	Line  int
	Key   string
	Value string // trimmed, surrounding double quotes removed
}

// Conf is a parsed fe.conf, be.conf or apache_hdfs_broker.conf. Doris
// reads the lowercase keys as settings; the start scripts export the
// UPPERCASE ones (JAVA_OPTS, LOG_DIR, JAVA_HOME...) into the environment.
type Conf struct {
	Entries []Entry
}

// ConfError lists every problem found in a conf text, with line numbers.
type ConfError struct {
	File     string
	Problems []string
}

func (e *ConfError) Error() string {
	return fmt.Sprintf("%s is not valid: %s", e.File, strings.Join(e.Problems, "; "))
}

var (
	keyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)
	varRe = regexp.MustCompile(`\$\{([^}]*)\}`)
)

// ParseConf parses conf text as Doris does: "key = value" lines, '#'
// comments and blank lines. It refuses lines that are not key = value,
// malformed ${VAR} references and unbalanced quotes, naming the lines.
func ParseConf(file, text string) (*Conf, error) {
	c := &Conf{}
	var problems []string
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			problems = append(problems, fmt.Sprintf("line %d: expected key = value, got %q", n, clip(line)))
			continue
		}
		key := strings.TrimSpace(line[:eq])
		val := strings.TrimSpace(line[eq+1:])
		if !keyRe.MatchString(key) {
			problems = append(problems, fmt.Sprintf("line %d: %q is not a valid key", n, clip(key)))
			continue
		}
		if strings.Count(val, `"`)%2 != 0 {
			problems = append(problems, fmt.Sprintf("line %d: %s has an unbalanced quote", n, key))
			continue
		}
		if strings.Count(val, "${") != len(varRe.FindAllString(val, -1)) {
			problems = append(problems, fmt.Sprintf("line %d: %s has an unterminated ${...}", n, key))
			continue
		}
		for _, m := range varRe.FindAllStringSubmatch(val, -1) {
			if !keyRe.MatchString(m[1]) {
				problems = append(problems, fmt.Sprintf("line %d: %s refers to ${%s}, which is not a variable name", n, key, m[1]))
			}
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		c.Entries = append(c.Entries, Entry{Line: n, Key: key, Value: val})
	}
	if len(problems) > 0 {
		return c, &ConfError{File: file, Problems: problems}
	}
	return c, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Get returns the value of key; the last line wins, as in Doris.
func (c *Conf) Get(key string) (string, bool) {
	for i := len(c.Entries) - 1; i >= 0; i-- {
		if c.Entries[i].Key == key {
			return c.Entries[i].Value, true
		}
	}
	return "", false
}

// Vars returns the variables a ${VAR} in this conf may refer to: the role
// home under its variable name and every UPPERCASE key of the conf (which
// the start scripts export).
func (c *Conf) Vars(spec Spec, home string) map[string]string {
	vars := map[string]string{spec.HomeVar: home}
	if spec.HomeVar != "DORIS_HOME" {
		vars["DORIS_HOME"] = home
	}
	for _, e := range c.Entries {
		if strings.ToUpper(e.Key) == e.Key {
			if v, err := Expand(e.Value, vars); err == nil {
				vars[e.Key] = v
			}
		}
	}
	return vars
}

// Expand replaces ${VAR} references in v from vars; an unknown variable is
// an error naming it.
func Expand(v string, vars map[string]string) (string, error) {
	var missing []string
	out := varRe.ReplaceAllStringFunc(v, func(m string) string {
		name := m[2 : len(m)-1]
		if val, ok := vars[name]; ok {
			return val
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return out, fmt.Errorf("${%s} is not defined", strings.Join(missing, "}, ${"))
	}
	return out, nil
}

// Ports validates every port key of the conf (the role's known ports and
// any other "*_port" key) and returns the effective ports: the role's
// known ports with Doris's defaults filled in, plus other enabled *_port
// keys. It refuses values that are not numbers in 1..65535 (-1, meaning
// disabled, is accepted for keys the role does not need), a port key set
// twice, and two keys sharing one port.
func (c *Conf) Ports(file string, spec Spec) (map[string]int, error) {
	known := spec.DefaultPorts()
	seen := map[string]int{} // key -> line
	ports := map[string]int{}
	var problems []string
	for _, e := range c.Entries {
		_, isKnown := known[e.Key]
		if !isKnown && !strings.HasSuffix(e.Key, "_port") {
			continue
		}
		if prev, dup := seen[e.Key]; dup {
			problems = append(problems, fmt.Sprintf("line %d: %s is already set on line %d", e.Line, e.Key, prev))
			continue
		}
		seen[e.Key] = e.Line
		p, err := strconv.Atoi(e.Value)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("line %d: %s = %q is not a port number", e.Line, e.Key, clip(e.Value)))
		case p == -1 && !isKnown:
			// disabled optional service, e.g. arrow_flight_sql_port = -1
		case p < 1 || p > 65535:
			problems = append(problems, fmt.Sprintf("line %d: %s = %d is out of range 1..65535", e.Line, e.Key, p))
		default:
			ports[e.Key] = p
		}
	}
	for k, d := range known {
		if _, ok := seen[k]; !ok {
			ports[k] = d
		}
	}
	byPort := map[int][]string{}
	for k, p := range ports {
		byPort[p] = append(byPort[p], k)
	}
	for p, keys := range byPort {
		if len(keys) > 1 {
			sort.Strings(keys)
			problems = append(problems, fmt.Sprintf("%s all use port %d; give each its own port", strings.Join(keys, ", "), p))
		}
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return lineOf(problems[i]) < lineOf(problems[j]) })
		return ports, &ConfError{File: file, Problems: problems}
	}
	return ports, nil
}

func lineOf(problem string) int {
	var n int
	if _, err := fmt.Sscanf(problem, "line %d:", &n); err != nil {
		return 1 << 30
	}
	return n
}

// Validate parses text and validates its ports, reporting every problem
// of both kinds at once, ordered by line.
func Validate(file, text string, spec Spec) (*Conf, map[string]int, error) {
	c, perr := ParseConf(file, text)
	ports, porterr := c.Ports(file, spec)
	var problems []string
	for _, err := range []error{perr, porterr} {
		if ce, ok := err.(*ConfError); ok {
			problems = append(problems, ce.Problems...)
		}
	}
	if len(problems) == 0 {
		return c, ports, nil
	}
	sort.SliceStable(problems, func(i, j int) bool { return lineOf(problems[i]) < lineOf(problems[j]) })
	return c, ports, &ConfError{File: file, Problems: problems}
}

// StorageRoot is one entry of BE storage_root_path.
type StorageRoot struct {
	Path   string
	Medium string // SSD or HDD, "" if not given
}

// ParseStorageRoots parses storage_root_path: ';'-separated entries, each
// a path optionally followed by ",SSD", ",HDD", ",medium:SSD", ",capacity:50"
// or (0.x) a bare capacity in GB. vars expand ${DORIS_HOME} and friends.
func ParseStorageRoots(value string, vars map[string]string) ([]StorageRoot, error) {
	var roots []StorageRoot
	for _, item := range strings.Split(value, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ",")
		p, err := Expand(strings.TrimSpace(parts[0]), vars)
		if err != nil {
			return nil, fmt.Errorf("storage_root_path entry %q: %w", item, err)
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("storage_root_path entry %q: the path must be absolute", item)
		}
		r := StorageRoot{Path: p}
		for _, opt := range parts[1:] {
			opt = strings.TrimSpace(opt)
			k, v, hasColon := strings.Cut(opt, ":")
			switch {
			case !hasColon && isMedium(opt):
				r.Medium = strings.ToUpper(opt)
			case hasColon && strings.EqualFold(k, "medium") && isMedium(v):
				r.Medium = strings.ToUpper(v)
			case hasColon && strings.EqualFold(k, "capacity") && isNumber(v):
			case !hasColon && isNumber(opt):
			default:
				return nil, fmt.Errorf("storage_root_path entry %q: %q is not SSD, HDD, medium:<SSD|HDD> or capacity:<GB>", item, opt)
			}
		}
		roots = append(roots, r)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("storage_root_path names no directory")
	}
	return roots, nil
}

func isMedium(s string) bool { return strings.EqualFold(s, "SSD") || strings.EqualFold(s, "HDD") }

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}
