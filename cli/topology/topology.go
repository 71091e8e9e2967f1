// Package topology reads the file that describes a Doris cluster for
// `dorismanager cluster deploy`: hosts, SSH access, the package, where
// FE, BE and BROKER run and their conf overrides. Parse checks all of it
// before anything is sent anywhere, naming the field and line to fix;
// Render turns it into the wizard's request bodies with sensible confs.
package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a topology file as written.
type File struct {
	// Cluster is the cluster's name; deploy creates it when missing.
	Cluster    string `yaml:"cluster"`
	SSH        SSH    `yaml:"ssh"`
	Package    Pkg    `yaml:"package"`
	InstallDir string `yaml:"installDir"`
	// AutoFix lets the role plugins apply safe host fixes
	// (vm.max_map_count, swap) instead of failing their precheck.
	AutoFix bool `yaml:"autoFix"`
	// Params go to the role plugins (javaHome, minOpenFiles, startTimeout...).
	Params map[string]string `yaml:"params"`
	Hosts  []Host            `yaml:"hosts"`
	FE     []FENode          `yaml:"fe"`
	BE     []Node            `yaml:"be"`
	Broker []Node            `yaml:"broker"`
	// Config overrides keys of the rendered confs, per role.
	Config Config `yaml:"config"`
}

// SSH is how the manager reaches the hosts to install its agent.
type SSH struct {
	User string `yaml:"user"`
	Port int    `yaml:"port"`
	// KeyFile is the private key, read by this command and sent to the
	// manager (never logged); relative to the topology file.
	KeyFile string `yaml:"keyFile"`
	// PassphraseFile holds the key's passphrase, if it has one.
	PassphraseFile string `yaml:"passphraseFile"`
	// HostKeys pins host keys (SHA256:... as ssh-keygen -l prints) by
	// host name or address; otherwise the first key seen is trusted.
	HostKeys map[string]string `yaml:"hostKeys"`
	// StrictHostKeys wants a pinned key for every host.
	StrictHostKeys bool `yaml:"strictHostKeys"`
}

// Pkg is the Doris release to install.
type Pkg struct {
	URL string `yaml:"url"`
	// SHA256 of the package; without it the manager takes the checksum
	// published beside it (<url>.sha512, else <url>.sha256).
	SHA256 string `yaml:"sha256"`
	// AllowUnverified installs a package with no checksum given or published.
	AllowUnverified bool `yaml:"allowUnverified"`
}

// Host is one machine.
type Host struct {
	// Name is a short name the placement may use instead of the address.
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	SSHPort int    `yaml:"sshPort"`
	// PriorityNetworks overrides the derived priority_networks (the
	// host's own address as a /32 or /128); needed when Address is a name.
	PriorityNetworks string `yaml:"priorityNetworks"`
}

// Node places a role on a host (by name or address).
type Node struct {
	Host string `yaml:"host"`
}

// FENode is a frontend: FOLLOWER (default) or OBSERVER; one FOLLOWER may
// be marked master (default: the first).
type FENode struct {
	Host   string `yaml:"host"`
	Type   string `yaml:"type"`
	Master bool   `yaml:"master"`
}

// Config holds conf overrides per role (key = value lines).
type Config struct {
	FE     map[string]string `yaml:"fe"`
	BE     map[string]string `yaml:"be"`
	Broker map[string]string `yaml:"broker"`
}

// Topology is a checked file: what Render needs, with the key read.
type Topology struct {
	File
	// Path is where the file was read from (for messages).
	Path string
	// SSHKey and Passphrase are the contents of the key files.
	SSHKey     string
	Passphrase string
	byRef      map[string]*Host
}

// Problems is every problem found in a file, each naming its line.
type Problems []Problem

// Problem is one thing to fix.
type Problem struct {
	Line  int    // 0 when unknown
	Field string // path in the file, e.g. fe[1].host
	Msg   string
}

func (p Problems) Error() string {
	var b strings.Builder
	for i, x := range p {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.String())
	}
	return b.String()
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Load reads and checks a topology file.
func Load(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the topology: %w", err)
	}
	t, err := Parse(b, filepath.Dir(path))
	if err != nil {
		var ps Problems
		if errors.As(err, &ps) {
			return nil, fmt.Errorf("%s is not usable, fix:\n%w", path, indent(ps))
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

type indented Problems

func indent(ps Problems) error { return indented(ps) }

func (p indented) Error() string {
	var b strings.Builder
	for i, x := range p {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  " + x.String())
	}
	return b.String()
}

// Unwrap lets errors.As find the Problems.
func (p indented) Unwrap() error { return Problems(p) }

// Parse checks a topology; relative key files are read from dir. Every
// problem found is returned at once (Problems), sorted by line.
func Parse(data []byte, dir string) (*Topology, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{yamlProblem(err.Error(), nil)}
	}
	if root.Kind == 0 {
		return nil, Problems{{Msg: "the file is empty: see examples/topology.yaml"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ps Problems
			for _, e := range te.Errors {
				ps = append(ps, yamlProblem(e, &root))
			}
			return nil, ps
		}
		return nil, Problems{yamlProblem(err.Error(), &root)}
	}
	if extra := yaml.NewDecoder(bytes.NewReader(data)); extra != nil {
		var skip, more yaml.Node
		_ = extra.Decode(&skip)
		if extra.Decode(&more) == nil {
			return nil, Problems{{Line: more.Line, Msg: "a second YAML document: one file describes one cluster"}}
		}
	}
	t := &Topology{File: f}
	c := &checker{root: &root, dir: dir}
	c.check(t)
	if len(c.ps) > 0 {
		sort.SliceStable(c.ps, func(i, j int) bool { return c.ps[i].Line < c.ps[j].Line })
		return nil, c.ps
	}
	return t, nil
}

var (
	reUnknownField = regexp.MustCompile(`^(?:yaml: )?line (\d+): field (\S+) not found in type topology\.(\w+)$`)
	reCannot       = regexp.MustCompile("^(?:yaml: )?line (\\d+): cannot unmarshal !!(\\w+) `?([^`]*)`? into (.+)$")
	reLine         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// yamlProblem words a decoder error as a Problem naming the field.
func yamlProblem(msg string, root *yaml.Node) Problem {
	if m := reUnknownField.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		where := "the top level"
		if p := pathOfKey(root, line, m[2]); p != "" {
			if i := strings.LastIndexByte(p, '.'); i >= 0 {
				where = p[:i]
			}
		}
		return Problem{Line: line, Field: m[2], Msg: fmt.Sprintf("unknown field in %s; known fields: %s", where, strings.Join(knownFields(m[3]), ", "))}
	}
	if m := reCannot.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		field := pathAtLine(root, line)
		return Problem{Line: line, Field: field, Msg: fmt.Sprintf("%s %q where %s is expected", yamlKind(m[2]), m[3], goTypeWords(m[4]))}
	}
	if m := reLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "not valid YAML: " + m[2]}
	}
	return Problem{Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "text"
	case "int", "float":
		return "number"
	case "bool":
		return "true/false"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return tag
}

func goTypeWords(t string) string {
	switch {
	case t == "int":
		return "a whole number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "topology."):
		return "a mapping (key: value lines)"
	}
	return t
}

// knownFields lists the YAML names of a type of this package.
func knownFields(typeName string) []string {
	types := []any{File{}, SSH{}, Pkg{}, Host{}, Node{}, FENode{}, Config{}}
	for _, v := range types {
		rt := reflect.TypeOf(v)
		if rt.Name() != typeName {
			continue
		}
		var out []string
		for i := 0; i < rt.NumField(); i++ {
			if tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				out = append(out, tag)
			}
		}
		return out
	}
	return nil
}

// pathOfKey finds the path of the mapping key named key on line.
func pathOfKey(root *yaml.Node, line int, key string) string {
	var found string
	walk(root, "", func(path string, k, v *yaml.Node) bool {
		if k != nil && k.Line == line && k.Value == key {
			found = path
			return false
		}
		return true
	})
	return found
}

// pathAtLine is the path of the deepest value that starts on line.
func pathAtLine(root *yaml.Node, line int) string {
	var found string
	walk(root, "", func(path string, k, v *yaml.Node) bool {
		if v.Line == line || (k != nil && k.Line == line) {
			found = path
		}
		return true
	})
	return found
}

// walk visits every value under n with its path (a.b[2].c); k is the
// mapping key of the value, nil for list items. visit returning false stops.
func walk(n *yaml.Node, path string, visit func(path string, k, v *yaml.Node) bool) bool {
	if n == nil {
		return true
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if !walk(c, path, visit) {
				return false
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if !visit(p, k, v) || !walk(v, p, visit) {
				return false
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if !visit(p, nil, c) || !walk(c, p, visit) {
				return false
			}
		}
	}
	return true
}

// lineOf is the line of the value at path (the key's line for a mapping
// key), or of the nearest parent that exists.
func lineOf(root *yaml.Node, path string) int {
	best := 0
	walk(root, "", func(p string, k, v *yaml.Node) bool {
		if p == path || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			if k != nil {
				best = k.Line
			} else {
				best = v.Line
			}
		}
		return true
	})
	return best
}
