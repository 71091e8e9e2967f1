// Command doris-agent is the Doris Manager agent daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/dorismanager/dorismanager/internal/buildinfo"
	"github.com/hashicorp/go-hclog"
)

func main() {
	agent.RunHelper()
	config := flag.String("config", "conf/agent.json", "agent config file (JSON)")
	printVersion := flag.Bool("version", false, "print the version, git commit, Go version and os/arch, and exit (also: doris-agent version)")
	memLimit := flag.String("memory-limit", defaultMemoryLimit, "soft limit of the Go runtime's memory (bytes, or with KiB, MiB, GiB); 0 or off: none. Default "+defaultMemoryLimit+", or GOMEMLIMIT when that is set")
	flag.Parse()
	switch {
	case *printVersion || flag.Arg(0) == "version" && flag.NArg() == 1:
		_ = buildinfo.Get().WriteText(os.Stdout, "doris-agent")
		return
	case flag.Arg(0) == "version":
		fmt.Fprintf(os.Stderr, "doris-agent: version takes no arguments, got %q\n", flag.Args()[1:])
		os.Exit(2)
	case flag.NArg() > 0:
		fmt.Fprintf(os.Stderr, "doris-agent: unknown command %q: the agent takes flags only (-config FILE), or \"version\"\n", flag.Arg(0))
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "doris-agent", Level: hclog.LevelFromString(envOr("DORIS_AGENT_LOG_LEVEL", "info"))})
	limitSet := false
	flag.Visit(func(f *flag.Flag) { limitSet = limitSet || f.Name == "memory-limit" })
	if limitSet || os.Getenv("GOMEMLIMIT") == "" {
		n, err := parseBytes(*memLimit)
		if err != nil {
			log.Error("cannot start", "error", fmt.Errorf("-memory-limit: %w", err))
			os.Exit(2)
		}
		debug.SetMemoryLimit(n)
	}
	cfg, err := agent.LoadConfig(*config)
	if err != nil {
		log.Error("cannot start", "error", err)
		os.Exit(2)
	}
	a, err := agent.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		os.Exit(2)
	}
	a.SetVersion(buildinfo.Get().Version)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "error", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
