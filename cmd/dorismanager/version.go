package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/internal/buildinfo"
)

func versionCommand(stdout io.Writer) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print the version, git commit, Go version and os/arch of this build",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return writeVersion(stdout, format) },
	}
	cmd.Flags().StringVar(&format, "format", "text", `"text", or "json": one object with version, commit, go, os and arch`)
	return cmd
}

func writeVersion(w io.Writer, format string) error {
	i := buildinfo.Get()
	switch format {
	case "text":
		return i.WriteText(w, "dorismanager")
	case "json":
		return i.WriteJSON(w)
	}
	return usageErrorf("--format %q: use text or json", format)
}
