package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// do runs a command line and answers its exit status, stdout and stderr
// as the binary would have them.
func do(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := exitStatus(run(args, &out, &errb), &errb)
	return code, out.String(), errb.String()
}

// Every command, group or not, prints its help on stdout and exits 0 for
// --help and -h, also after arguments and other flags.
func TestHelpEverywhere(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, s := range c.Commands() {
			walk(s, append(append([]string{}, path...), s.Name()))
		}
	}
	walk(newRootCommand(io.Discard, io.Discard), nil)
	if len(paths) < 20 {
		t.Fatalf("only %d commands in the tree", len(paths))
	}
	for _, p := range paths {
		for _, h := range []string{"--help", "-h"} {
			code, out, errs := do(append(append([]string{}, p...), h)...)
			want := "dorismanager " + strings.Join(p, " ")
			if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, strings.TrimSpace(want)) || errs != "" {
				t.Errorf("%v %s: exit %d, stdout %q, stderr %q", p, h, code, out, errs)
			}
		}
	}
	if code, out, _ := do("plugins", "--data-dir", t.TempDir(), "pin", "1", "--help"); code != 0 || !strings.Contains(out, "pin CLUSTER ROLE RULE") {
		t.Errorf("help after arguments: %d %q", code, out)
	}
	if code, out, _ := do("help", "token", "create"); code != 0 || !strings.Contains(out, "--expires") {
		t.Errorf("help token create: %d %q", code, out)
	}
}

// What the command line refuses exits 2 and says what is wrong and where
// to look; a plugins command that fails exits 1 with its own message.
func TestExitStatuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{nil, 2, []string{"no command given", "Usage:"}},
		{[]string{"nope"}, 2, []string{`unknown command "nope" for "dorismanager"`, "Run 'dorismanager --help' for usage."}},
		{[]string{"tokn"}, 2, []string{"did you mean token?"}},
		{[]string{"token"}, 2, []string{"token: give one of its commands: create, list, revoke", "Run 'dorismanager token --help'"}},
		{[]string{"token", "mint"}, 2, []string{`unknown command "mint" for "dorismanager token"`}},
		{[]string{"serve", "--nope"}, 2, []string{"unknown flag: --nope", "Run 'dorismanager serve --help' for usage."}},
		{[]string{"serve", "-data-dir", dir}, 2, []string{"long flags take two dashes: --data-dir"}},
		{[]string{"serve", "--parallel", "x"}, 2, []string{`invalid argument "x" for "--parallel"`}},
		{[]string{"serve", "--tls-san", "a b"}, 2, []string{`"a b" is not a host name or IP address`}},
		{[]string{"serve", "extra"}, 2, []string{`serve takes no arguments, got ["extra"]`}},
		{[]string{"token", "revoke"}, 2, []string{"usage: dorismanager token revoke ID"}},
		{[]string{"grant", "alice"}, 2, []string{"usage: dorismanager grant USER CLUSTER[,CLUSTER...]"}},
		{[]string{"ca", "rotate", "x"}, 2, []string{`ca rotate takes no arguments, got ["x"]`}},
		{[]string{"ca", "status", "--finish"}, 2, []string{"unknown flag: --finish"}},
		{[]string{"version", "--format", "xml"}, 2, []string{`--format "xml"`}},
		// The plugins commands: arguments and flags are checked here, the
		// work and its failures are pluginhost's.
		{[]string{"plugins"}, 2, []string{"plugins: give one of its commands: install, keygen, keys, list, pin"}},
		{[]string{"plugins", "bogus"}, 2, []string{`unknown command "bogus" for "dorismanager plugins"`}},
		{[]string{"plugins", "pin", "1"}, 2, []string{"usage: dorismanager plugins pin CLUSTER ROLE RULE"}},
		{[]string{"plugins", "sign", "file"}, 2, []string{"--key is required"}},
		{[]string{"plugins", "sign", "--key", "k"}, 2, []string{"usage: dorismanager plugins sign --key PRIVATE FILE"}},
		{[]string{"plugins", "trust"}, 2, []string{"usage: dorismanager plugins trust KEY"}},
		{[]string{"plugins", "keygen"}, 2, []string{"usage: dorismanager plugins keygen FILE"}},
		{[]string{"plugins", "install", filepath.Join(dir, "missing"), "--data-dir", dir}, 1, []string{"plugins install: ", "missing"}},
		{[]string{"plugins", "pin", "1", "FE", "1.0.0", "--data-dir", dir}, 1, []string{"plugins pin: no database at"}},
	} {
		code, _, errs := do(tc.args...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tc.args, code, tc.code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%q: stderr %q does not say %q", tc.args, errs, w)
			}
		}
	}
}

// Flags may come before the subcommand, after it, or after its arguments.
func TestFlagsAnywhere(t *testing.T) {
	work := t.TempDir()
	key := filepath.Join(work, "key")
	if code, out, errs := do("plugins", "keygen", key); code != 0 || !strings.Contains(out, "fingerprint SHA256:") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	for i, args := range [][]string{
		{"plugins", "--data-dir", "D", "trust", key + ".pub"},
		{"plugins", "trust", "--data-dir", "D", key + ".pub"},
		{"plugins", "trust", key + ".pub", "--data-dir", "D"},
		{"plugins", "trust", key + ".pub", "--data-dir=D"},
	} {
		dataDir := filepath.Join(work, "data", string(rune('a'+i)))
		for j := range args {
			args[j] = strings.Replace(args[j], "D", dataDir, 1)
		}
		if code, out, errs := do(args...); code != 0 || !strings.Contains(out, "trusted key") {
			t.Errorf("%q: %d %s %s", args, code, out, errs)
		}
		if entries, err := os.ReadDir(filepath.Join(dataDir, "plugin-keys")); err != nil || len(entries) != 1 {
			t.Errorf("%q: the key is not in %s: %v %v", args, dataDir, entries, err)
		}
	}
	// --plugins-dir after the subcommand: verify reads that dir.
	plugins := filepath.Join(work, "plugins", "fe")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "doris-role-fe_v1.0.0_x2.0_"+runtime.GOOS+"_"+runtime.GOARCH), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs := do("plugins", "verify", "--plugins-dir", filepath.Dir(plugins), "--data-dir", work)
	if code != 1 || !strings.Contains(out, "REFUSED") || !strings.Contains(errs, "plugins verify: 1 file(s) refused in "+filepath.Dir(plugins)) {
		t.Errorf("verify --plugins-dir after the subcommand: %d %q %q", code, out, errs)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := do(args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "dorismanager ") || !strings.HasPrefix(lines[1], "commit:") ||
			!strings.Contains(lines[2], runtime.Version()) || !strings.HasSuffix(lines[3], runtime.GOOS+"/"+runtime.GOARCH) {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	code, out, _ := do("version", "--format", "json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v["go"] != runtime.Version() || v["arch"] != runtime.GOARCH ||
		v["version"] == "" || v["commit"] == "" {
		t.Errorf("version --format json: %d %q %v", code, out, err)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_dorismanager", "zsh": "#compdef dorismanager", "fish": "complete -c dorismanager"} {
		code, out, errs := do("completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: %d, stdout without %q (%d bytes), stderr %q", shell, code, want, len(out), errs)
		}
	}
	// The shells ask the binary itself for candidates.
	code, out, _ := do("__complete", "plugins", "")
	for _, w := range []string{"install", "verify", "keygen"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("__complete plugins: %d, no %q in %q", code, w, out)
		}
	}
	if code, out, _ := do("__complete", "serve", "--agent-"); code != 0 || !strings.Contains(out, "--agent-keepalive") {
		t.Errorf("__complete serve --agent-: %d %q", code, out)
	}
}
