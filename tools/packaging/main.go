package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	var o Options
	flag.StringVar(&o.Bin, "bin", "bin", "make build's output folder")
	flag.StringVar(&o.Out, "out", "dist", "folder the packages are written to")
	flag.StringVar(&o.Version, "version", "dev", "the version the binaries are stamped with (make build VERSION=...)")
	flag.StringVar(&o.PluginKey, "plugin-key", "", "public key the plugins are signed with, trusted at install (default <bin>/dev-plugin-key.pub)")
	flag.StringVar(&o.License, "license", "LICENSE", "license file for the packages' doc folder (empty: none)")
	arches := flag.String("arches", strings.Join(DefaultArches, ","), "agent architectures to carry and package")
	formats := flag.String("formats", "deb,rpm", "package formats")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "packaging: no arguments expected, got %q\n", flag.Args())
		os.Exit(2)
	}
	o.Arches = strings.Split(*arches, ",")
	o.Formats = strings.Split(*formats, ",")
	out, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	for _, p := range out {
		fmt.Println(p)
	}
}
