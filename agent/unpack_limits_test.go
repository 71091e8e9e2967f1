package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// An archive within the download limit that unpacks past 4x that limit is
// refused, naming the entry and the limit, and leaves nothing beside dest:
// neither dest nor the temp dir it was unpacked into.
func TestDownloadUnpackCappedByDownloadLimit(t *testing.T) {
	_, srv := newAgent(t)
	var raw bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&raw, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "pkg/ok", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.WriteHeader(&tar.Header{Name: "pkg/zeros", Mode: 0o644, Size: 1 << 20, Typeflag: tar.TypeReg})
	tw.Write(make([]byte, 1<<20))
	tw.Close()
	zw.Close()
	pkg := raw.Bytes()
	sum := sha256.Sum256(pkg)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pkg) }))
	defer files.Close()

	parent := t.TempDir()
	dest := filepath.Join(parent, "pkg")
	const maxBytes = 64 << 10 // the archive is ~1 KiB: the download passes
	_, lines := call(t, srv, wire.DownloadPath, wire.Download{RequestID: "bomb", URL: files.URL + "/bomb.tgz",
		SHA256: hex.EncodeToString(sum[:]), Dest: dest, Unpack: true, MaxBytes: maxBytes})
	l := lines[len(lines)-1]
	if l.Download != nil || !strings.Contains(l.Error, `"pkg/zeros"`) || !strings.Contains(l.Error, "limit of 262144") {
		t.Fatalf("want a refusal naming pkg/zeros and the limit of 4 x %d bytes, got %+v", maxBytes, l)
	}
	left, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left beside dest: %v", left)
	}
}
