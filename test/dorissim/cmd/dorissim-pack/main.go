// Command dorissim-pack builds simulated Doris release packages and the fake
// java their scripts check for (see ../../README.md).
//
//	dorissim-pack pack --layout 0.15|1.2|2.x [--version V] [--role fe|be|broker] --format tar.gz|tar.xz --out FILE [--sim-binary PATH] [--env KEY=VALUE ...]
//	dorissim-pack fake-java --out DIR   (writes DIR/bin/java; use DIR as JAVA_HOME)
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
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: dorissim-pack pack|fake-java ...")
	}
	switch args[0] {
	case "pack":
		return runPack(args[1:])
	case "fake-java":
		fs := flag.NewFlagSet("fake-java", flag.ContinueOnError)
		out := fs.String("out", "", "directory to use as JAVA_HOME")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("fake-java: --out is required")
		}
		return dorissim.WriteFakeJavaHome(*out)
	}
	return fmt.Errorf("unknown command %q: use pack or fake-java", args[0])
}

func runPack(args []string) error {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	var o dorissim.PackOptions
	layout := fs.String("layout", "2.x", "release layout: 0.15, 1.2 or 2.x")
	role := fs.String("role", "", "build a per-role package (fe, be or broker) instead of the full release")
	fs.StringVar(&o.Version, "version", "", "Doris version imitated; default per layout")
	format := fs.String("format", "tar.gz", "tar.gz or tar.xz")
	fs.StringVar(&o.Out, "out", "", "output file")
	fs.StringVar(&o.SimBinary, "sim-binary", "", "dorissim binary to ship; default: build it")
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
		dir, err := os.MkdirTemp("", "dorissim-pack")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		o.SimBinary = filepath.Join(dir, "dorissim")
		if err := dorissim.BuildBinary(ctx, o.SimBinary); err != nil {
			return err
		}
	}
	top, err := dorissim.Pack(o)
	if err != nil {
		return err
	}
	fmt.Println(top)
	return nil
}
