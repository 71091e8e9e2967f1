// Package cli is dorismanager's client command set: the cluster, process
// and task commands that talk to a running manager over its REST API
// (cluster deploy from a topology file, status, day-2 operations, the
// wizard's processes and tasks). Commands returns them for the root
// command to add.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/dorismanager/dorismanager/cli/progress"
	"github.com/dorismanager/dorismanager/cli/rest"
)

// conn holds the connection flags every client command shares.
type conn struct {
	server, tokenFile, caFile string
	timeout                   time.Duration
	// getenv is os.Getenv; tests replace it.
	getenv func(string) string
}

// Commands returns the client commands: cluster, process and task.
func Commands() []*cobra.Command {
	c := &conn{getenv: os.Getenv}
	cmds := []*cobra.Command{clusterCmd(c), processCmd(c), taskCmd(c)}
	for _, cmd := range cmds {
		f := cmd.PersistentFlags()
		f.StringVar(&c.server, "server", "", "the manager's URL, e.g. https://10.0.0.5:9601 (env "+rest.EnvServer+"; default "+rest.DefaultServer+")")
		f.StringVar(&c.tokenFile, "token-file", "", "file holding the API token (env "+rest.EnvTokenFile+", or the token itself in "+rest.EnvToken+"; default "+rest.DefaultTokenFile+" if it exists)")
		f.StringVar(&c.caFile, "ca-file", "", "CA bundle to trust for an https server, e.g. the manager's <data-dir>/pki/bundle.crt (env "+rest.EnvCAFile+")")
		f.DurationVar(&c.timeout, "request-timeout", 60*time.Second, "time limit of one API request")
	}
	return cmds
}

func (c *conn) client() (*rest.Client, error) {
	return rest.New(rest.Config{Server: c.server, TokenFile: c.tokenFile, CAFile: c.caFile, Getenv: c.getenv, Timeout: c.timeout})
}

// connArgs are the connection flags given on the command line, for a
// command that repeats this one.
func connArgs(cmd *cobra.Command) []string {
	var out []string
	for _, name := range []string{"server", "token-file", "ca-file"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			out = append(out, "--"+name, f.Value.String())
		}
	}
	return out
}

// commandLine quotes words for a shell.
func commandLine(words ...string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
			out[i] = w
		} else {
			out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// signalContext is cancelled by Ctrl-C, so a wait ends cleanly; the
// manager keeps running what it started.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt)
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// printer is the live progress for the command's output: redrawn lines
// on a terminal (colour unless NO_COLOR), plain lines elsewhere.
func printer(cmd *cobra.Command, plain bool) progress.Printer {
	out := cmd.OutOrStdout()
	if !plain && isTerminal(out) {
		width := 0
		if ws, err := unix.IoctlGetWinsize(int(out.(*os.File).Fd()), unix.TIOCGWINSZ); err == nil {
			width = int(ws.Col)
		}
		return progress.NewTTY(out, nil, os.Getenv("NO_COLOR") == "", width)
	}
	return progress.NewPlain(out, nil)
}

// interactive is true when a person can answer questions.
func interactive(cmd *cobra.Command) bool {
	return isTerminal(cmd.InOrStdin()) && isTerminal(cmd.OutOrStdout())
}

// format is the --format flag of read commands.
type format struct{ value string }

func addFormat(cmd *cobra.Command) *format {
	f := &format{}
	cmd.Flags().StringVar(&f.value, "format", "table", "output: table or json (the API's data as it came)")
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
	return f
}

func (f *format) check() error {
	if f.value != "table" && f.value != "json" {
		return fmt.Errorf("--format %q: table or json", f.value)
	}
	return nil
}

func (f *format) json() bool { return f.value == "json" }

// writeJSON prints raw API data indented.
func writeJSON(w io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readRaw GETs path and decodes it into v, returning the raw data too.
func readRaw(ctx context.Context, c *rest.Client, path string, v any) (json.RawMessage, error) {
	raw, err := c.DoRaw(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	if v != nil && len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("GET %s: unexpected answer: %w", path, err)
		}
	}
	return raw, nil
}

// ask prints a question and reads one answer line.
func ask(cmd *cobra.Command, question string) (string, error) {
	fmt.Fprint(cmd.OutOrStdout(), question)
	var b strings.Builder
	buf := make([]byte, 1)
	in := cmd.InOrStdin()
	for {
		n, err := in.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			if b.Len() == 0 {
				return "", fmt.Errorf("no answer: %w", err)
			}
			break
		}
	}
	return strings.TrimSpace(b.String()), nil
}

func silence(cmds ...*cobra.Command) {
	for _, c := range cmds {
		// A refusal or a failed task is not a usage mistake.
		c.SilenceUsage = true
	}
}
