// Command dorismanager is the Doris Manager server and its admin commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/cli"
)

func main() {
	os.Exit(exitStatus(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// run runs the command line args.
func run(args []string, stdout, stderr io.Writer) error {
	root := newRootCommand(stdout, stderr)
	if args == nil {
		args = []string{} // cobra reads os.Args for nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(context.Background())
	var ue *usageError
	if errors.As(err, &ue) && cmd != nil {
		ue.command = cmd.CommandPath()
	}
	return err
}

// exitStatus explains err on stderr and answers the process's exit status:
// 0, a subcommand's own status, or 2.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	fmt.Fprintln(stderr, "dorismanager:", err)
	var ue *usageError
	if errors.As(err, &ue) && ue.command != "" {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", ue.command)
	}
	return 2
}

// newRootCommand is the whole command line. The server's commands are
// top-level under their own names; a client command set joins with
// root.AddCommand. Output goes to stdout and stderr, never os.Stdout.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "dorismanager",
		Short: "Doris Manager: installs Apache Doris clusters on bare hosts and runs them",
		Long: `Doris Manager: installs Apache Doris clusters on bare hosts and runs them.

"dorismanager serve" runs the manager. The admin commands (token, grant, revoke-grant, audit,
ca, plugins) work on a manager's data dir and database directly: they need no token and no
running manager.`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				return writeVersion(stdout, "text")
			}
			fmt.Fprint(stderr, cmd.UsageString())
			return usageErrorf("no command given")
		},
		SilenceErrors: true, // exitStatus explains them, once
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	root.Flags().BoolVar(&showVersion, "version", false, "print the version, as the version command does")
	root.AddCommand(serveCommand(stderr), tokenCommand(stdout, stderr), grantCommand("grant", stdout),
		grantCommand("revoke-grant", stdout), auditCommand(stdout), caCommand(stdout), pluginsCommand(stdout, stderr),
		versionCommand(stdout), docsCommand(stdout))
	root.AddCommand(cli.Commands()...)
	return root
}

// exitCode is a subcommand's own exit status, already explained on stderr.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// usageError is a command line that no command takes; exitStatus adds
// how to get help for the command (run fills it in).
type usageError struct {
	err     error
	command string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// flagError marks a flag the command does not take, or a bad flag value,
// as a usage error. Go's flag package took -name too: say how it is now.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, " in -"); i >= 0 {
		if name := strings.TrimLeft(msg[i+len(" in -"):], "-"); len(name) > 1 {
			if eq := strings.IndexByte(name, '='); eq >= 0 {
				name = name[:eq]
			}
			if cmd.Flags().Lookup(name) != nil {
				return usageErrorf("%s (long flags take two dashes: --%s)", msg, name)
			}
		}
	}
	return &usageError{err: err}
}

// subcommandArgs refuses arguments that name no subcommand of cmd.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return usageErrorf("%s", msg)
}

// group makes cmd a command of subcommands: run without one it says which
// there are.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = subcommandArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		return usageErrorf("%s: give one of its commands: %s", cmd.Name(), strings.Join(names, ", "))
	}
	return cmd
}

// noArgs refuses positional arguments, naming the command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", commandName(cmd), args)
	}
	return nil
}

// exactArgs wants n positional arguments, the ones cmd's Use names.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("usage: %s (got %d argument(s), want %d)", cmd.UseLine(), len(args), n)
		}
		return nil
	}
}

// commandName is cmd's path without the program: "token create".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
