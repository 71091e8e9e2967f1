// Package exportersim builds a release of the node exporter imitation in
// ./node_exporter with the real release's name and layout:
// node_exporter-<version>.linux-<arch>.tar.gz holding
// node_exporter-<version>.linux-<arch>/{node_exporter,LICENSE,NOTICE}.
package exportersim

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// DefaultVersion is the version the tests install.
const DefaultVersion = "1.8.2"

// Name is the release file name of a version.
func Name(version string) string {
	return fmt.Sprintf("node_exporter-%s.linux-%s.tar.gz", version, runtime.GOARCH)
}

// Pack builds the imitation (static, no race detector) and writes its
// release into dir; it returns the release's path.
func Pack(ctx context.Context, dir, version string) (string, error) {
	pkgDir, err := sourceDir()
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "exportersim-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "node_exporter")
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-s -w -X main.version="+version, "-o", bin, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the node exporter imitation: %v: %s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	top := fmt.Sprintf("node_exporter-%s.linux-%s", version, runtime.GOARCH)
	out := filepath.Join(dir, Name(version))
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{top + "/node_exporter", 0o755, exe},
		{top + "/LICENSE", 0o644, []byte("Apache License, Version 2.0\n")},
		{top + "/NOTICE", 0o644, []byte("Node exporter imitation for tests.\n")},
	}
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: top + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
		return "", err
	}
	for _, e := range files {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(e.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	return out, f.Close()
}

// sourceDir is this package's node_exporter folder, found from the source
// file's path so that Pack works from any test's working directory.
func sourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the exportersim sources")
	}
	return filepath.Join(filepath.Dir(file), "node_exporter"), nil
}
