package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// clientFlagTables is the markdown of the client commands' flag tables
// (cluster, process, task), as `dorismanager docs flags` prints them.
func clientFlagTables(t *testing.T) string {
	t.Helper()
	var client []flagTable
	for _, ft := range flagTables(newRootCommand(io.Discard, io.Discard)) {
		for _, group := range []string{"cluster", "process", "task"} {
			if ft.command == "dorismanager "+group || strings.HasPrefix(ft.command, "dorismanager "+group+" ") {
				client = append(client, ft)
			}
		}
	}
	var b strings.Builder
	if err := writeFlagTables(&b, client); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReadmeClientFlags: the README's flag tables of the client commands
// are the ones the code defines (paste `dorismanager docs flags`' client
// part to fix a failure).
func TestReadmeClientFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := clientFlagTables(t)
	if len(want) < 1000 {
		t.Fatalf("only %d bytes of client flag tables", len(want))
	}
	if !strings.Contains(string(readme), want) {
		if os.Getenv("DM_PRINT_CLIENT_FLAGS") == "1" {
			t.Logf("\n%s", want)
		}
		t.Errorf("README.md does not hold the client commands' flag tables as the code defines them (DM_PRINT_CLIENT_FLAGS=1 prints them)")
	}
}
