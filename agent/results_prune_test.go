package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneRemovesOnlyOldRecords(t *testing.T) {
	dir := t.TempDir()
	r := &results{dir: dir, running: map[string]*inflight{}}
	now := time.Now()
	for name, age := range map[string]time.Duration{"old.json": 8 * 24 * time.Hour, "new.json": time.Hour} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.prune(now, resultTTL); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.json")); !os.IsNotExist(err) {
		t.Error("the old record is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "new.json")); err != nil {
		t.Error("the recent record was removed")
	}
}
