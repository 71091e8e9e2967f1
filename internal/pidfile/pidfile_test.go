package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReadRelease(t *testing.T) {
	dir := t.TempDir()
	release, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := Read(dir); err != nil || pid != os.Getpid() {
		t.Fatalf("Read = %d %v, want %d", pid, err, os.Getpid())
	}
	// This test binary is not "dorismanager serve": not taken for one.
	if _, err := Running(dir); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "is not a running dorismanager serve") {
		t.Errorf("Running = %v, want ErrNotRunning", err)
	}
	if _, err := Hangup(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Hangup = %v, want ErrNotRunning", err)
	}
	release()
	if _, err := os.Stat(filepath.Join(dir, Name)); !os.IsNotExist(err) {
		t.Errorf("pid file after release: %v", err)
	}
	if _, err := Running(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Running without a file = %v", err)
	}
}

// A manager that started later on the same data dir owns the file: the
// first one's release leaves it.
func TestReleaseKeepsAnotherPid(t *testing.T) {
	dir := t.TempDir()
	release, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, Name), []byte("1\n"), 0o644)
	release()
	if pid, err := Read(dir); err != nil || pid != 1 {
		t.Errorf("Read = %d %v, want 1 kept", pid, err)
	}
	os.WriteFile(filepath.Join(dir, Name), []byte("x\n"), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a pid") {
		t.Errorf("Read of garbage = %v", err)
	}
}
