package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// FE, BE and broker on one host unpack the same package into the same
// folder at once. It is unpacked once; the later requests keep that tree
// (which a task may be copying from) instead of swapping it out.
func TestSharedPackageUnpackedOnce(t *testing.T) {
	_, srv := newAgent(t)
	pkg := tgz(t, "pkg/be/bin/start_be.sh", "be")
	sum := sha256.Sum256(pkg)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer files.Close()
	dest := filepath.Join(t.TempDir(), ".packages", "p")
	req := func(id string) wire.Download {
		return wire.Download{RequestID: id, URL: files.URL + "/p.tgz", SHA256: hex.EncodeToString(sum[:]), Dest: dest, Unpack: true}
	}

	var wg sync.WaitGroup
	outs := make([]string, 3)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, lines := call(t, srv, wire.DownloadPath, req(fmt.Sprintf("r%d", i)))
			var b strings.Builder
			for _, l := range lines {
				b.WriteString(l.Output)
				if l.Error != "" {
					b.WriteString("ERROR " + l.Error)
				}
			}
			outs[i] = b.String()
		}()
	}
	wg.Wait()
	unpacks := 0
	for _, o := range outs {
		if strings.Contains(o, "ERROR") {
			t.Fatalf("a request failed: %s", o)
		}
		unpacks += strings.Count(o, "unpacking into")
	}
	if unpacks != 1 {
		t.Errorf("unpacked %d times, want once:\n%s", unpacks, strings.Join(outs, "\n--\n"))
	}
	if _, err := os.Stat(filepath.Join(dest, "pkg/be/bin/start_be.sh")); err != nil {
		t.Fatal(err)
	}

	// A task copying from the tree leaves a file there: a repeated unpack
	// of the same archive must not replace the tree under it.
	copying := filepath.Join(dest, "pkg", "copying")
	if err := os.WriteFile(copying, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, lines := call(t, srv, wire.DownloadPath, req("again"))
	if l := lines[len(lines)-1]; l.Download == nil {
		t.Fatalf("repeat: %+v", lines)
	}
	if _, err := os.Stat(copying); err != nil {
		t.Errorf("the repeated unpack replaced the tree: %v", err)
	}

	// Another archive for the same place replaces it.
	pkg = tgz(t, "pkg/be/bin/start_be.sh", "be2")
	sum = sha256.Sum256(pkg)
	_, lines = call(t, srv, wire.DownloadPath, wire.Download{RequestID: "other", URL: files.URL + "/p2.tgz", SHA256: hex.EncodeToString(sum[:]), Dest: dest, Unpack: true})
	if l := lines[len(lines)-1]; l.Download == nil {
		t.Fatalf("other archive: %+v", lines)
	}
	if _, err := os.Stat(copying); !os.IsNotExist(err) {
		t.Errorf("another archive did not replace the tree: %v", err)
	}
}
