package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/cli/rest"
)

func taskCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "show, follow, retry and skip one task",
	}
	cmd.AddCommand(taskShow(c), taskLog(c), taskAction(c, "retry"), taskAction(c, "skip"), taskAction(c, "unskip"))
	return cmd
}

func taskShow(c *conn) *cobra.Command {
	var f *format
	cmd := &cobra.Command{
		Use:   "show TASK",
		Short: "show one task",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			id, err := parseID("task", args[0])
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var t rest.Task
			raw, err := readRaw(cmd.Context(), cl, fmt.Sprintf("/api/process/task/info/%d", id), &t)
			if err != nil {
				return err
			}
			if f.json() {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			tw := table(cmd.OutOrStdout())
			for _, kv := range [][2]string{{"task", fmt.Sprint(t.ID)}, {"process", fmt.Sprint(t.ProcessID)}, {"step", t.ProcessType},
				{"type", t.TaskType}, {"host", t.Host}, {"role", t.Role()}, {"status", t.Status}, {"skipped", t.Skip},
				{"started", when(t.StartTime)}, {"ended", when(t.EndTime)}} {
				fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if msg := t.Message(); msg != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "response:\n%s\n", msg)
			}
			return nil
		},
	}
	f = addFormat(cmd)
	silence(cmd)
	return cmd
}

func taskLog(c *conn) *cobra.Command {
	var follow bool
	var f *format
	cmd := &cobra.Command{
		Use:   "log TASK",
		Short: "print a task's log (its last MiB as the manager keeps it); -f follows it until the task ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			id, err := parseID("task", args[0])
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if f.json() {
				if follow {
					return fmt.Errorf("-f and --format json do not go together")
				}
				raw, err := readRaw(cmd.Context(), cl, fmt.Sprintf("/api/process/task/log/%d", id), nil)
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			return followLog(ctx, cl, id, cmd.OutOrStdout(), follow, 500*time.Millisecond)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the task adds until it ends")
	f = addFormat(cmd)
	silence(cmd)
	return cmd
}

// followLog prints a task's log and, with follow, what is added to it
// until the task has ended and its log was read once more. The manager
// answers the whole kept log each time (no offset), so the new part is
// found after what was printed; a log whose head was cut away meanwhile
// is matched by the last printed lines.
func followLog(ctx context.Context, cl *rest.Client, id int64, w io.Writer, follow bool, poll time.Duration) error {
	var printed string
	for {
		// Read the task's state first: a log read after it ended is complete.
		t, err := cl.TaskInfo(ctx, id)
		if err != nil {
			return err
		}
		l, err := cl.TaskLog(ctx, id)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, newPart(printed, l.Log)); err != nil {
			return err
		}
		printed = l.Log
		if !follow {
			return nil
		}
		if t.Status == rest.TaskSuccess || t.Status == rest.TaskFailure || t.Skipped() {
			if !strings.HasSuffix(printed, "\n") && printed != "" {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "-- task %d ended %s\n", id, t.Status)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// newPart is what cur adds to prev, the log printed before.
func newPart(prev, cur string) string {
	if strings.HasPrefix(cur, prev) {
		return cur[len(prev):]
	}
	// The kept log lost its head: find the end of what was printed.
	tail := prev
	if len(tail) > 4096 {
		tail = tail[len(tail)-4096:]
	}
	if i := strings.LastIndex(cur, tail); i >= 0 && tail != "" {
		return cur[i+len(tail):]
	}
	// A retried task's log may start over: print it whole.
	return cur
}

func taskAction(c *conn, action string) *cobra.Command {
	short := map[string]string{
		"retry":  "run a FAILURE task again with the same inputs",
		"skip":   "give up on a FAILURE task: its host is left out of the later steps",
		"unskip": "undo a skip while the process is still at that task's step",
	}[action]
	cmd := &cobra.Command{
		Use:   action + " TASK",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("task", args[0])
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			err = cl.TaskAction(cmd.Context(), action, id)
			if action == "unskip" && rest.IsNoEndpoint(err) {
				return fmt.Errorf("this manager is too old to unskip a task (it has no POST /api/process/task/unskip)")
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "task %d: %s sent\n", id, action)
			return nil
		},
	}
	silence(cmd)
	return cmd
}
