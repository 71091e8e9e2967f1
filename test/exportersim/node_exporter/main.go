// Command node_exporter imitates the Prometheus node exporter for the
// tests of the example exporter role: the same release layout, flags,
// error messages and /metrics page (a few real collectors' worth of
// metrics), without its collectors.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// version is stamped by the package builder.
var version = "1.8.2"

type options struct {
	listen, path, logLevel, textfileDir string
}

// parse reads the flags the way the real exporter's parser answers them:
// --name=value or --name value; unknown flags are an error.
func parse(args []string) (options, error) {
	o := options{listen: ":9100", path: "/metrics", logLevel: "info"}
	known := map[string]*string{
		"--web.listen-address": &o.listen, "--web.telemetry-path": &o.path,
		"--log.level": &o.logLevel, "--collector.textfile.directory": &o.textfileDir,
	}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		if name == "--version" {
			fmt.Printf("node_exporter, version %s (branch: HEAD)\n  go version: %s\n  platform: %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			os.Exit(0)
		}
		p, ok := known[name]
		if !ok {
			return o, fmt.Errorf("unknown long flag '%s'", name)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return o, fmt.Errorf("expected argument for flag '%s'", name)
			}
			i++
			value = args[i]
		}
		*p = value
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return o, fmt.Errorf("unrecognized log level %q", o.logLevel)
	}
	return o, nil
}

func logf(level, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ts=%s level=%s msg=%q\n", time.Now().UTC().Format(time.RFC3339Nano), level, fmt.Sprintf(format, args...))
}

func metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprintf(w, "# HELP node_exporter_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.\n")
	fmt.Fprintf(w, "# TYPE node_exporter_build_info gauge\n")
	fmt.Fprintf(w, "node_exporter_build_info{branch=\"HEAD\",goarch=%q,goos=%q,goversion=%q,revision=\"\",tags=\"unknown\",version=%q} 1\n",
		runtime.GOARCH, runtime.GOOS, runtime.Version(), version)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		var l1, l5, l15 float64
		if _, err := fmt.Sscanf(string(b), "%f %f %f", &l1, &l5, &l15); err == nil {
			fmt.Fprintf(w, "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 %g\n", l1)
			fmt.Fprintf(w, "# HELP node_load5 5m load average.\n# TYPE node_load5 gauge\nnode_load5 %g\n", l5)
			fmt.Fprintf(w, "# HELP node_load15 15m load average.\n# TYPE node_load15 gauge\nnode_load15 %g\n", l15)
		}
	}
	fmt.Fprintf(w, "# HELP node_time_seconds System time in seconds since epoch (1970).\n# TYPE node_time_seconds gauge\nnode_time_seconds %d\n", time.Now().Unix())
}

func main() {
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "node_exporter: error: %v, try --help\n", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(o.path, metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "<html><head><title>Node Exporter</title></head><body><h1>Node Exporter</h1><p><a href=%q>Metrics</a></p></body></html>\n", o.path)
	})
	srv := &http.Server{Addr: o.listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logf("info", "Starting node_exporter version=%s", version)
	// Bound before it says so, as the real exporter: a reader of the log
	// may connect as soon as the line is there.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		logf("error", "listen tcp %s: %v", o.listen, err)
		os.Exit(1)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logf("info", "Listening on address=%s", o.listen)
	select {
	case err := <-errc:
		logf("error", "%v", err)
		os.Exit(1)
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("error", "shutdown: %v", err)
		}
	}
}
