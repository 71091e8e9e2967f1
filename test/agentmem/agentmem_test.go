// Package agentmem measures the memory of the real doris-agent binary
// through what the install wizard asks of it: FE, BE and broker each
// download and unpack the same Doris 2.x .tar.xz (the simulated release,
// served over HTTP on 127.0.0.1), then the agent idles. VmRSS and VmHWM are
// read from /proc/<pid>/status. Results go to BENCHMARKS.md; nothing here
// asserts a number.
package agentmem

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/test/dorissim"
)

// idle is how long the agent idles after the work before the last reading.
const idle = 10 * time.Second

// BenchmarkAgentRSS: one iteration starts a fresh agent, waits until it has
// registered, reads its memory, runs the three download+unpack requests at
// once, reads again, idles and reads a last time. Extra agent flags come
// from AGENTMEM_FLAGS (for example "-memory-limit=off" to compare);
// AGENTMEM_XZ recompresses the package with the system's xz and these
// arguments (for example "-9": a 64 MiB dictionary).
func BenchmarkAgentRSS(b *testing.B) {
	ctx := context.Background()
	work := b.TempDir()
	agentBin := filepath.Join(work, "doris-agent")
	root, err := moduleRoot()
	if err != nil {
		b.Fatal(err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", agentBin, "./cmd/doris-agent")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build agent: %v: %s", err, out)
	}
	sim := filepath.Join(work, "dorissim")
	if err := dorissim.BuildBinary(ctx, sim); err != nil {
		b.Fatal(err)
	}
	pkg := filepath.Join(work, "apache-doris-2.0.3-bin-x64.tar.xz")
	if _, err := dorissim.Pack(dorissim.PackOptions{Layout: dorissim.Layout2x, Format: dorissim.TarXz, Out: pkg, SimBinary: sim}); err != nil {
		b.Fatal(err)
	}
	if args := os.Getenv("AGENTMEM_XZ"); args != "" {
		// Recompress with the system's xz, as a release may be built
		// ("-9": a 64 MiB dictionary; "-T2": several blocks).
		sh := exec.CommandContext(ctx, "sh", "-c", `xz -dc "$1" > "$1.tar" && xz `+args+` -c "$1.tar" > "$1" && rm "$1.tar"`, "sh", pkg)
		if out, err := sh.CombinedOutput(); err != nil {
			b.Fatalf("xz %s: %v: %s", args, err, out)
		}
	}
	fi, err := os.Stat(pkg)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := fileSHA256(pkg)
	if err != nil {
		b.Fatal(err)
	}
	files := serve(b, http.FileServer(http.Dir(work)), nil)
	// The agent talks to the manager only over mutual TLS, as installed.
	ca, err := pki.Open(filepath.Join(work, "pki"), pki.Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		b.Fatal(err)
	}
	manager := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"msg":"","code":0,"data":{"agentId":1,"heartbeatSeconds":5}}`)
	}), ca.AgentEndpointTLS())
	b.Logf("package %s: %.1f MiB", filepath.Base(pkg), float64(fi.Size())/(1<<20))

	var all [][3]status
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		all = append(all, runOnce(b, ca, agentBin, manager, files+"/"+filepath.Base(pkg), sum, filepath.Join(work, fmt.Sprintf("run%d", i))))
	}
	b.StopTimer()
	// Every iteration is logged; the metrics are the worst of them.
	var worst [3]status
	for i, st := range all {
		b.Logf("run %d: started VmRSS %.1f MiB; after unpack VmRSS %.1f MiB, VmHWM %.1f MiB (download+unpack %.2f s wall, %.2f s agent CPU); after %v idle VmRSS %.1f MiB",
			i+1, mib(st[0].rss), mib(st[1].rss), mib(st[1].hwm), st[1].at.Sub(st[0].at).Seconds(), (st[1].cpu - st[0].cpu).Seconds(), idle, mib(st[2].rss))
		for j := range st {
			worst[j].rss = max(worst[j].rss, st[j].rss)
			worst[j].hwm = max(worst[j].hwm, st[j].hwm)
			worst[j].cpu = max(worst[j].cpu, st[j].cpu-st[0].cpu)
		}
	}
	b.ReportMetric(mib(worst[1].rss), "MiB-rss-after-unpack")
	b.ReportMetric(mib(worst[2].rss), "MiB-rss-idle")
	b.ReportMetric(mib(worst[2].hwm), "MiB-hwm")
	b.ReportMetric(worst[1].cpu.Seconds(), "agent-CPU-s")
}

func runOnce(b *testing.B, ca *pki.Authority, agentBin, manager, url, sum, dir string) [3]status {
	port, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	cfg := wire.Config{ServerURL: manager, Listen: listen, Host: "127.0.0.1",
		DataDir: filepath.Join(dir, "data"), InstallDir: filepath.Join(dir, "install"), HeartbeatSeconds: 5,
		CertFile: filepath.Join(dir, "agent.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	if err := os.MkdirAll(cfg.InstallDir, 0o755); err != nil {
		b.Fatal(err)
	}
	key, err := pki.NewKey()
	if err != nil {
		b.Fatal(err)
	}
	is, err := ca.Issue(pki.Request{PublicKey: key.Public(), CommonName: "agentmem", Hosts: []string{"127.0.0.1"}, Role: pki.Agent, Lifetime: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	kb, err := pki.EncodeKey(key)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg.CertFile, append(is.PEM, kb...), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg.CAFile, ca.Bundle(), 0o644); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS("127.0.0.1", nil)}}
	conf := filepath.Join(dir, "agent.json")
	cb, _ := json.Marshal(cfg)
	if err := os.WriteFile(conf, cb, 0o600); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"-config", conf}, strings.Fields(os.Getenv("AGENTMEM_FLAGS"))...)
	cmd := exec.Command(agentBin, args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	base := "https://" + listen
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := client.Get(base + wire.HealthPath); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("agent did not come up: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // registered, first heartbeat timer running
	var st [3]status
	st[0] = readStatus(b, cmd.Process.Pid)

	// The wizard's INSTALL_SERVICE: FE, BE and broker on one host ask for
	// the same package in the same place at once.
	var wg sync.WaitGroup
	for _, role := range []string{"fe", "be", "broker"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := wire.Download{RequestID: "install-" + role, TaskID: "1", URL: url, SHA256: sum,
				Dest: filepath.Join(cfg.InstallDir, ".packages", "doris"), Unpack: true}
			if err := download(client, base, req); err != nil {
				b.Errorf("%s: %v\n%s", role, err, logs.String())
			}
		}()
	}
	wg.Wait()
	st[1] = readStatus(b, cmd.Process.Pid)
	time.Sleep(idle)
	st[2] = readStatus(b, cmd.Process.Pid)
	return st
}

func download(client *http.Client, base string, req wire.Download) error {
	body, _ := json.Marshal(req)
	resp, err := client.Post(base+wire.DownloadPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var last wire.Line
	for sc.Scan() {
		last = wire.Line{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, sc.Bytes())
		}
	}
	if last.Download == nil {
		return fmt.Errorf("no result: %+v", last)
	}
	return nil
}

// status is one reading: memory in bytes, CPU the agent has used so far,
// and when.
type status struct {
	rss, hwm int64
	cpu      time.Duration
	at       time.Time
}

func readStatus(b *testing.B, pid int) status {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := status{at: time.Now(), cpu: cpuTime(b, pid)}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.hwm = kb << 10
		}
	}
	return s
}

// cpuTime reads utime+stime from /proc/<pid>/stat (clock ticks of 10 ms).
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// serve serves h on 127.0.0.1, over TLS when cfg is set.
func serve(b *testing.B, h http.Handler, cfg *tls.Config) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	scheme := "http://"
	if cfg != nil {
		ln, scheme = tls.NewListener(ln, cfg), "https://"
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return scheme + ln.Addr().String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func fileSHA256(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
