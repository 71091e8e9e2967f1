package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/cli/rest"
)

func processCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "process",
		Short: "show, follow and end the wizard's and the operations' processes",
	}
	cmd.AddCommand(processList(c), processShow(c), processWatch(c), processAction(c, "complete"), processAction(c, "back"))
	return cmd
}

func parseID(what, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q: a positive number", what, s)
	}
	return id, nil
}

func processList(c *conn) *cobra.Command {
	var f *format
	var cluster string
	cmd := &cobra.Command{
		Use:   "list --cluster CLUSTER",
		Short: "list a cluster's processes, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if cluster == "" {
				return fmt.Errorf("--cluster is required: the cluster's id or name")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			x, err := findCluster(cmd.Context(), cl, cluster)
			if err != nil {
				return err
			}
			var ps []rest.Process
			raw, err := readRaw(cmd.Context(), cl, fmt.Sprintf("/api/process?clusterId=%d", x.ID), &ps)
			if rest.IsNoEndpoint(err) {
				return fmt.Errorf("this manager is too old to list processes (it has no GET /api/process); dorismanager process show shows your unfinished one")
			}
			if err != nil {
				return err
			}
			if f.json() {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tTYPE\tSTEP\tSTATUS\tFINISHED\tCREATED\tUPDATED")
			for _, p := range ps {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.ProcessType, p.ProcessStep, p.Status, p.Finish, when(p.CreateTime), when(p.UpdateTime))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster's id or name")
	_ = cmd.RegisterFlagCompletionFunc("cluster", completeCluster(c))
	f = addFormat(cmd)
	silence(cmd)
	return cmd
}

// processArg is the process id argument, or the caller's unfinished
// process when there is none.
func processArg(cmd *cobra.Command, cl *rest.Client, args []string) (int64, *rest.Process, error) {
	cur, err := cl.CurrentProcess(cmd.Context())
	if err != nil {
		return 0, nil, err
	}
	if len(args) == 0 {
		if cur == nil {
			return 0, nil, fmt.Errorf("you have no unfinished install process: name a process id (an operation's is printed when it starts)")
		}
		return cur.ID, cur, nil
	}
	id, err := parseID("process", args[0])
	if err != nil {
		return 0, nil, err
	}
	if cur != nil && cur.ID == id {
		return id, cur, nil
	}
	return id, nil, nil
}

func processShow(c *conn) *cobra.Command {
	var f *format
	cmd := &cobra.Command{
		Use:   "show [PROCESS]",
		Short: "show a process's current step and its tasks (default: your unfinished install process)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			id, cur, err := processArg(cmd, cl, args)
			if err != nil {
				return err
			}
			var tasks []rest.Task
			raw, err := readRaw(cmd.Context(), cl, fmt.Sprintf("/api/process/%d/currentTasks", id), &tasks)
			if err != nil {
				return err
			}
			if f.json() {
				var p any
				if cur != nil {
					p = cur
				}
				b, err := json.Marshal(map[string]any{"process": p, "tasks": json.RawMessage(raw)})
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), b)
			}
			out := cmd.OutOrStdout()
			if cur != nil {
				fmt.Fprintf(out, "process %d of cluster %d: %s (step %d), status %s, finished %s\n", cur.ID, cur.ClusterID, cur.ProcessType, cur.ProcessStep, cur.Status, cur.Finish)
			} else {
				fmt.Fprintf(out, "process %d\n", id)
			}
			return taskTable(out, tasks)
		},
	}
	f = addFormat(cmd)
	silence(cmd)
	return cmd
}

func taskTable(w io.Writer, tasks []rest.Task) error {
	tw := table(w)
	fmt.Fprintln(tw, "TASK\tSTEP\tTYPE\tHOST\tSTATUS\tSKIPPED\tSTARTED\tENDED\tRESPONSE")
	for _, t := range tasks {
		host := t.Host
		if host == "" {
			host = "-"
		}
		skip := t.Skip
		if skip == "" {
			skip = "NO"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.ProcessType, t.TaskType, host, t.Status, skip, when(t.StartTime), when(t.EndTime), short(t.Message(), 100))
	}
	return tw.Flush()
}

func short(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return string(r[:n-3]) + "..."
	}
	if len(r) == 0 {
		return "-"
	}
	return string(r)
}

func processWatch(c *conn) *cobra.Command {
	var plain bool
	cmd := &cobra.Command{
		Use:   "watch [PROCESS]",
		Short: "follow a process's current tasks until they are done or one fails (then exit non-zero)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			id, _, err := processArg(cmd, cl, args)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			return watch(ctx, cmd, cl, id, printer(cmd, plain), false)
		},
	}
	cmd.Flags().BoolVar(&plain, "plain", false, "plain progress lines even on a terminal")
	silence(cmd)
	return cmd
}

func processAction(c *conn, action string) *cobra.Command {
	short := map[string]string{
		"complete": "end a process (installComplete): an install not built yet ends CANCELED, an operation's waiting tasks are canceled",
		"back":     "return a process at START_SERVICE to DEPLOY_CONFIG (what was started is stopped)",
	}[action]
	cmd := &cobra.Command{
		Use:   action + " PROCESS",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("process", args[0])
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if action == "back" {
				if err := cl.Back(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "process %d is back at DEPLOY_CONFIG\n", id)
				return nil
			}
			raw, err := cl.DoRaw(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", id), nil)
			if err != nil {
				return err
			}
			var p *rest.Process
			_ = json.Unmarshal(raw, &p)
			if p != nil && p.Status != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "process %d ended %s\n", id, p.Status)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "process %d ended\n", id)
			}
			return nil
		},
	}
	silence(cmd)
	return cmd
}
