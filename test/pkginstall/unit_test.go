package pkginstall

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// unit is the [Service] section of a systemd unit file: each key's values
// in order (later lines of the same key add to it, as systemd reads them).
type unit map[string][]string

func parseUnit(text string) unit {
	u := unit{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		case section == "Service":
			if k, v, ok := strings.Cut(line, "="); ok {
				u[strings.TrimSpace(k)] = append(u[strings.TrimSpace(k)], strings.TrimSpace(v))
			}
		}
	}
	return u
}

// last is the value that counts for a single-valued key.
func (u unit) last(k string) string {
	if v := u[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// parseEnvFile reads an EnvironmentFile: KEY=VALUE lines, # and ;
// comments, a value in double quotes (with \" and \\) or single quotes.
func parseEnvFile(text string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("line %d: %q is not KEY=VALUE", i+1, line)
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env, nil
}

// execArgv is an ExecStart line as systemd runs it: words split on blanks
// (quotes keep one), a word that is exactly $VAR replaced by the variable's
// words, ${VAR} inside a word by its value, and the executable's prefixes
// (-, @, +, !, :) dropped.
func execArgv(line string, env map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	var argv []string
	for _, w := range words {
		if name, ok := strings.CutPrefix(w, "$"); ok && !strings.HasPrefix(name, "{") {
			argv = append(argv, strings.Fields(env[name])...)
			continue
		}
		for {
			i := strings.Index(w, "${")
			if i < 0 {
				break
			}
			j := strings.Index(w[i:], "}")
			if j < 0 {
				return nil, fmt.Errorf("unclosed ${ in %q", w)
			}
			w = w[:i] + env[w[i+2:i+j]] + w[i+j+1:]
		}
		argv = append(argv, w)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("empty ExecStart %q", line)
	}
	argv[0] = strings.TrimLeft(argv[0], "-@+!:")
	return argv, nil
}

func TestUnitParsing(t *testing.T) {
	u := parseUnit("[Unit]\nUser=nobody\n[Service]\n# c\nUser=a\nExecStart=/bin/x $OPTS\nEnvironment=A=1\nEnvironment=B=2\nUser = b\n[Install]\nUser=c\n")
	if u.last("User") != "b" || !slices.Equal(u["Environment"], []string{"A=1", "B=2"}) {
		t.Errorf("unit %v", u)
	}
	env, err := parseEnvFile("# comment\n; too\nOPTS=\"--tls auto --x \\\"q\\\"\"\nS='a b'\nP=plain\n\n")
	if err != nil || env["OPTS"] != `--tls auto --x "q"` || env["S"] != "a b" || env["P"] != "plain" {
		t.Errorf("env %q %v", env, err)
	}
	if _, err := parseEnvFile("just words\n"); err == nil {
		t.Error("a line without = was read")
	}
	for _, tc := range []struct {
		line string
		want []string
		err  bool
	}{
		{"/usr/bin/m serve --a 1 $OPTS", []string{"/usr/bin/m", "serve", "--a", "1", "--tls", "auto"}, false},
		{"-/usr/bin/m ${ONE}x \"a b\" 'c d'", []string{"/usr/bin/m", "onex", "a b", "c d"}, false},
		{"/usr/bin/m $UNSET", []string{"/usr/bin/m"}, false},
		{"/usr/bin/m \"open", nil, true},
		{"", nil, true},
	} {
		got, err := execArgv(tc.line, map[string]string{"OPTS": "--tls  auto", "ONE": "one"})
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("execArgv(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}
