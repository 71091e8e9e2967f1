// Command dorissim is the Doris simulator: it runs as an FE, BE or broker
// from an unpacked simulated release, builds such releases, and writes the
// fake java used by the start scripts.
//
//	dorissim fe [--helper host:edit_log_port]   (DORIS_HOME from env or ../ of the binary)
//	dorissim be                                 (also chosen when run as lib/doris_be)
//	dorissim broker                             (BROKER_HOME from env or ../ of the binary)
//	dorissim pack --layout 0.15|1.2|2.x [--version V] [--role fe|be|broker] --format tar.gz|tar.xz --out FILE --sim-binary PATH [--env KEY=VALUE ...]
//	dorissim fake-java --out DIR                (writes DIR/bin/java; use DIR as JAVA_HOME)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dorismanager/dorismanager/test/dorissim"
	"github.com/dorismanager/dorismanager/test/dorissim/internal/node"
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
	case "pack":
		return runPack(rest)
	case "fake-java":
		fs := flag.NewFlagSet("fake-java", flag.ContinueOnError)
		out := fs.String("out", "", "directory to use as JAVA_HOME")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("fake-java: --out is required")
		}
		return dorissim.WriteFakeJavaHome(*out)
	}
	return fmt.Errorf("usage: dorissim fe|be|broker|pack|fake-java ...")
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

func runPack(args []string) error {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	var o dorissim.PackOptions
	layout := fs.String("layout", "2.x", "release layout: 0.15, 1.2 or 2.x")
	role := fs.String("role", "", "build a per-role package (fe, be or broker) instead of the full release")
	fs.StringVar(&o.Version, "version", "", "Doris version imitated; default per layout")
	format := fs.String("format", "tar.gz", "tar.gz or tar.xz")
	fs.StringVar(&o.Out, "out", "", "output file")
	fs.StringVar(&o.SimBinary, "sim-binary", "", "dorissim binary to ship; default this program")
	fs.Func("env", "KEY=VALUE default for the start scripts (repeatable)", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		if o.SimEnv == nil {
			o.SimEnv = map[string]string{}
		}
		o.SimEnv[k] = v
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Layout, o.Role, o.Format = dorissim.Layout(*layout), dorissim.Role(*role), dorissim.Format(*format)
	if o.SimBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.SimBinary = exe
	}
	top, err := dorissim.Pack(o)
	if err != nil {
		return err
	}
	fmt.Println(top)
	return nil
}
