package exportersim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseRuns unpacks the release the way a host would and checks the
// binary: flags, errors and /metrics as the real exporter answers them.
func TestReleaseRuns(t *testing.T) {
	dir := t.TempDir()
	pkg, err := Pack(context.Background(), dir, "1.8.2")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xzf", pkg, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("untar: %v %s", err, out)
	}
	bin := filepath.Join(dir, strings.TrimSuffix(filepath.Base(pkg), ".tar.gz"), "node_exporter")

	out, err := exec.Command(bin, "--bogus").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "node_exporter: error: unknown long flag '--bogus'") {
		t.Errorf("unknown flag: %v %s", err, out)
	}
	if out, _ := exec.Command(bin, "--version").Output(); !strings.HasPrefix(string(out), "node_exporter, version 1.8.2") {
		t.Errorf("--version: %s", out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--log.level", "debug")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "Listening on") {
	}
	go io.Copy(io.Discard, stderr)
	// The imitation logs "Listening on" only once it is bound.
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", addr))
	if err != nil {
		t.Fatalf("/metrics right after \"Listening on\": %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if !strings.Contains(body, `node_exporter_build_info{`) || !strings.Contains(body, `version="1.8.2"`) {
		t.Errorf("/metrics = %q", body)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGINT: %v", err)
	}
}
