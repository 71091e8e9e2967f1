package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve run as a lone binary (no plugins, no agent binaries: what `go
// install` makes) refuses to start, says what to do, and makes nothing.
func TestServeRefusesWithoutPluginsAndAgents(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var out, errb bytes.Buffer
	err := run([]string{"serve", "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--data-dir", data,
		"--plugins-dir", filepath.Join(dir, "plugins"), "--agents-dir", filepath.Join(dir, "agents")}, &out, &errb)
	if err == nil {
		t.Fatal("serve started without plugins and agent binaries")
	}
	for _, want := range []string{"go install", filepath.Join(dir, "plugins"), filepath.Join(dir, "agents", "linux-arm64", "doris-agent"),
		"make build", "/usr/lib/dorismanager", "--agents-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused serve made its data dir (%v)", err)
	}
}
