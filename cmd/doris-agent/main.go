// Command doris-agent is the Doris Manager agent daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dorismanager/dorismanager/agent"
	"github.com/hashicorp/go-hclog"
)

func main() {
	agent.RunHelper()
	config := flag.String("config", "conf/agent.json", "agent config file (JSON)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println(agent.Version)
		return
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "doris-agent", Level: hclog.LevelFromString(envOr("DORIS_AGENT_LOG_LEVEL", "info"))})
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
