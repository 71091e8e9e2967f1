// Command dorissim is the Doris simulator: it runs as an FE, BE or broker
// from an unpacked simulated release (see ../README.md). It is its own Go
// module, so that its MySQL server libraries stay out of the manager's
// dependencies; the package builder in ../ compiles it with go build -C.
//
//	dorissim fe [--helper host:edit_log_port]   (DORIS_HOME from env or ../ of the binary)
//	dorissim be                                 (also chosen when run as lib/doris_be)
//	dorissim broker                             (BROKER_HOME from env or ../ of the binary)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/dorismanager/dorismanager/test/dorissim/server/internal/node"
)

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := ""
	rest := args[1:]
	if filepath.Base(args[0]) == "doris_be" {
		cmd = "be"
	} else if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch cmd {
	case "fe", "be", "broker":
		return runNode(ctx, cmd, rest)
	}
	return fmt.Errorf("usage: dorissim fe|be|broker [--helper host:port] [--home DIR] (packages: dorissim-pack)")
}

func runNode(ctx context.Context, role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	helper := fs.String("helper", "", "FE: host:edit_log_port of an FE already in the cluster")
	home := fs.String("home", "", "role home; default from the environment or the binary's location")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := node.Options{Home: *home, Helper: *helper}
	if o.Home == "" {
		env := "DORIS_HOME"
		if role == "broker" {
			env = "BROKER_HOME"
		}
		o.Home = os.Getenv(env)
	}
	if o.Home == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Home = filepath.Dir(filepath.Dir(exe))
	}
	switch role {
	case "fe":
		return node.RunFE(ctx, o)
	case "be":
		return node.RunBE(ctx, o)
	default:
		return node.RunBroker(ctx, o)
	}
}
