package doristest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

// SimKnobs are baked into the simulated packages so that processes the
// plugins start run fast on a test machine.
var SimKnobs = map[string]string{
	"DORIS_SIM_MIN_NOFILE": "1024", "DORIS_SIM_MIN_MAP_COUNT": "0",
	"DORIS_SIM_HEARTBEAT_INTERVAL": "200ms", "DORIS_SIM_JOIN_RETRY_INTERVAL": "200ms",
	"DORIS_SIM_CLONE_INTERVAL": "100ms", "DORIS_SIM_CLONE_BATCH": "2",
}

// Sim serves simulated Doris 2.x releases over HTTP for plugin tests.
type Sim struct {
	dir      string
	bin      string
	srv      *httptest.Server
	JavaHome string // a fake JDK the start scripts accept (param javaHome)
}

// NewSim builds the simulator and serves a release of each version until
// the test ends.
func NewSim(t testing.TB, versions ...string) *Sim {
	t.Helper()
	s, err := StartSim(t.TempDir(), versions...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartSim is NewSim for a TestMain: it works in dir and serves until Close.
func StartSim(dir string, versions ...string) (*Sim, error) {
	s := &Sim{dir: dir, bin: filepath.Join(dir, "dorissim"), JavaHome: filepath.Join(dir, "jdk")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dorissim.BuildBinary(ctx, s.bin); err != nil {
		return nil, err
	}
	if err := dorissim.WriteFakeJavaHome(s.JavaHome); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "pkgs"), 0o755); err != nil {
		return nil, err
	}
	s.srv = httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "pkgs"))))
	for _, v := range versions {
		if _, err := s.Pack(v, "", nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops serving.
func (s *Sim) Close() { s.srv.Close() }

// Pack adds a release of version under name ("" the release's own file
// name), with extra knobs over SimKnobs, and returns its URL.
func (s *Sim) Pack(version, name string, extra map[string]string) (string, error) {
	if name == "" {
		name = "apache-doris-" + version + "-bin-x64.tar.gz"
	}
	env := map[string]string{}
	for k, v := range SimKnobs {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	if _, err := dorissim.Pack(dorissim.PackOptions{Layout: dorissim.Layout2x, Version: version, Format: dorissim.TarGz,
		Out: filepath.Join(s.dir, "pkgs", name), SimBinary: s.bin, SimEnv: env}); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// URL of a served file.
func (s *Sim) URL(name string) string { return s.srv.URL + "/" + name }

// VersionURL is the URL of the release of version packed by NewSim.
func (s *Sim) VersionURL(version string) string {
	return s.URL("apache-doris-" + version + "-bin-x64.tar.gz")
}
