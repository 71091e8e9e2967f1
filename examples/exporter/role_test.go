package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

// healthyHost answers like a host where the exporter is installed and runs.
func healthyHost() *sdktest.FakeHost {
	h := sdktest.NewFakeHost()
	h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
		switch {
		case strings.HasPrefix(cmd.Argv[3], "exporter-start"):
			return sdk.ExecResult{Pid: 4321, Running: true}, nil
		case cmd.Argv[3] == "exporter-port":
			return sdk.ExecResult{Output: "free\n"}, nil
		}
		return sdk.ExecResult{}, nil
	}, "sh")
	h.HandleExec(func(sdk.Command) (sdk.ExecResult, error) {
		return sdk.ExecResult{Output: "/opt/doris/node_exporter/pkg/node_exporter-1.8.2.linux-amd64/node_exporter\n"}, nil
	}, "find")
	bin := "/opt/doris/node_exporter/pkg/node_exporter-1.8.2.linux-amd64/node_exporter\n"
	h.HandleExec(func(sdk.Command) (sdk.ExecResult, error) { return sdk.ExecResult{Output: bin + bin}, nil }, "readlink")
	for _, c := range []string{"mkdir", "ln", "kill", "rm"} {
		h.HandleExec(func(sdk.Command) (sdk.ExecResult, error) { return sdk.ExecResult{}, nil }, c)
	}
	h.HTTPGetResponse("http://10.0.0.1:9100/metrics", 200, "# HELP node_exporter_build_info x\nnode_exporter_build_info{version=\"1.8.2\"} 1\n")
	return h
}

func request() sdk.Request {
	n := sdk.Node{Host: "10.0.0.1", Role: roleName, InstallDir: "/opt/doris", Home: "/opt/doris/node_exporter"}
	return sdk.Request{TaskID: 1, Node: n, Cluster: sdk.Cluster{ID: 1, Name: "c", Nodes: []sdk.Node{n}},
		PackageURL: "http://10.0.0.9/node_exporter-1.8.2.linux-amd64.tar.gz",
		Conf:       "--collector.textfile.directory=/var/lib/textfile\n",
		Params:     map[string]string{paramStartTimeout: "1s", paramStopTimeout: "1s"}}
}

// TestConformance runs the SDK's checks on the role, directly, through
// gRPC in process, and on the built binary.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "doris-role-exporter")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=1.0.0", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sdktest.Conformance(t, New("1.0.0"), sdktest.WithBinary(bin), sdktest.WithHost(healthyHost),
		sdktest.WithRequest(request()), sdktest.WithCallTimeout(5*time.Second))
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name, conf string
		params     map[string]string
		wantFlags  []string
		wantPort   int
		wantErr    string
	}{
		{"defaults", "", nil, []string{"--web.listen-address=:9100"}, 9100, ""},
		{"param port", "# comment\n\n", map[string]string{paramListenPort: "9200"}, []string{"--web.listen-address=:9200"}, 9200, ""},
		{"conf port wins", "--web.listen-address=127.0.0.1:9300\n--log.level=debug", map[string]string{paramListenPort: "9200"},
			[]string{"--web.listen-address=127.0.0.1:9300", "--log.level=debug"}, 9300, ""},
		{"not a flag", "log.level=debug", nil, nil, 0, "one flag per line"},
		{"space in name", "--log level=debug", nil, nil, 0, "one flag per line"},
		{"bad address", "--web.listen-address=nowhere", nil, nil, 0, "use [host]:port"},
		{"port out of range", "--web.listen-address=:70000", nil, nil, 0, "use [host]:port"},
		{"bad port param", "", map[string]string{paramListenPort: "x"}, nil, 0, "use a port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, port, err := parseFlags(sdk.Request{Conf: tt.conf, Params: tt.params})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || port != tt.wantPort || strings.Join(flags, " ") != strings.Join(tt.wantFlags, " ") {
				t.Fatalf("parseFlags = %q, %d, %v; want %q, %d", flags, port, err, tt.wantFlags, tt.wantPort)
			}
		})
	}
}

func TestStartFailsWhenTheExporterExits(t *testing.T) {
	h := healthyHost()
	h.HandleExec(func(cmd sdk.Command) (sdk.ExecResult, error) {
		if cmd.Argv[3] == "exporter-start" {
			return sdk.ExecResult{ExitCode: 1}, nil
		}
		return sdk.ExecResult{}, nil
	}, "sh")
	h.HandleExec(func(sdk.Command) (sdk.ExecResult, error) { return sdk.ExecResult{ExitCode: 1}, nil }, "readlink")
	h.SetFile("/opt/doris/node_exporter/log/node_exporter.log", []byte("node_exporter: error: unknown long flag '--bogus'\n"), 0o644)
	_, err := New("1.0.0").Start(context.Background(), h, request())
	f := sdk.AsFailure(err)
	if f == nil || !strings.Contains(f.Summary, "exited at start") || !strings.Contains(f.Detail, "unknown long flag") {
		t.Fatalf("Start = %v, want a failure with the log's tail", err)
	}
}

func TestInfoIsValid(t *testing.T) {
	info, _ := New("1.0.0").Info(context.Background())
	if err := info.Validate(); err != nil {
		t.Fatal(err)
	}
	if info.Has(sdk.CapMembership) {
		t.Error("the exporter has no cluster membership")
	}
}

// Install hands the package's checksums from the request to the host.
func TestInstallPassesTheChecksums(t *testing.T) {
	h := healthyHost()
	req := request()
	req.PackageSHA256, req.PackageSHA512 = strings.Repeat("ab", 32), strings.Repeat("cd", 64)
	if _, err := New("1.0.0").Install(context.Background(), h, req); err != nil {
		t.Fatal(err)
	}
	dl := h.CallsOf("Download")
	if len(dl) != 1 || dl[0].Download.SHA256 != req.PackageSHA256 || dl[0].Download.SHA512 != req.PackageSHA512 {
		t.Fatalf("downloads %+v; want one with both checksums", dl)
	}
}
