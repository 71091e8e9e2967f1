package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docsCommand is hidden: "docs flags" prints the README's flag tables from
// the command tree, for an author to paste (a test holds the README to
// them).
func docsCommand(stdout io.Writer) *cobra.Command {
	cmd := group(&cobra.Command{Use: "docs", Short: "documentation generated from the code", Hidden: true})
	cmd.AddCommand(&cobra.Command{
		Use:   "flags",
		Short: "print the README's flag tables (markdown)",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return writeFlagTables(stdout, flagTables(cmd.Root())) },
	})
	return cmd
}

// flagTable is the flags one command defines itself.
type flagTable struct {
	command string // "dorismanager serve"
	// inherited: they hold for its subcommands too (persistent flags).
	inherited bool
	rows      []flagRow
}

type flagRow struct{ name, def, meaning string }

// flagTables lists, in the tree's order, each documented command that
// defines flags.
func flagTables(root *cobra.Command) []flagTable {
	var out []flagTable
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		t := flagTable{command: c.CommandPath(), inherited: c.HasSubCommands() && c.HasPersistentFlags()}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !f.Hidden {
				t.rows = append(t.rows, flagRow{name: f.Name, def: f.DefValue, meaning: f.Usage})
			}
		})
		if len(t.rows) > 0 {
			out = append(out, t)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return out
}

// writeFlagTables writes the tables as markdown: a heading per command
// and a | flag | default | meaning | table.
func writeFlagTables(w io.Writer, tables []flagTable) error {
	var b strings.Builder
	for i, t := range tables {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "#### `%s`\n\n", t.command)
		if t.inherited {
			fmt.Fprintf(&b, "These hold for every `%s` command.\n\n", t.command)
		}
		b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
		for _, r := range t.rows {
			def := ""
			if r.def != "" {
				def = "`" + r.def + "`"
			}
			fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", r.name, def, markdownEscape(r.meaning))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markdownEscaper keeps a usage text literal in a table cell: no cell
// breaks, HTML tags or emphasis.
var markdownEscaper = strings.NewReplacer(`\`, `\\`, `|`, `\|`, `<`, `\<`, `*`, `\*`)

func markdownEscape(s string) string { return markdownEscaper.Replace(s) }
