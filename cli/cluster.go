package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/cli/rest"
	"github.com/dorismanager/dorismanager/cli/topology"
	"github.com/dorismanager/dorismanager/cli/wizard"
)

func clusterCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "deploy, show and run Doris clusters through a manager's API",
	}
	cmd.AddCommand(clusterList(c), clusterDisplay(c), deployCmd(c, false), deployCmd(c, true))
	cmd.AddCommand(opCommands(c)...)
	return cmd
}

// completeCluster offers the names of the caller's clusters.
func completeCluster(c *conn) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cl, err := c.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cs, err := cl.Clusters(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, x := range cs {
			out = append(out, x.Name)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func clusterList(c *conn) *cobra.Command {
	var f *format
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list the clusters you may see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var cs []rest.Cluster
			raw, err := readRaw(cmd.Context(), cl, "/api/cluster", &cs)
			if err != nil {
				return err
			}
			if f.json() {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, x := range cs {
				fmt.Fprintf(tw, "%d\t%s\t%s\n", x.ID, x.Name, when(x.CreateTime))
			}
			return tw.Flush()
		},
	}
	f = addFormat(cmd)
	silence(cmd)
	return cmd
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func when(t rest.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// findCluster resolves an id or name the caller may see.
func findCluster(ctx context.Context, cl *rest.Client, arg string) (rest.Cluster, error) {
	x, ok, err := cl.FindCluster(ctx, arg)
	if err != nil {
		return x, err
	}
	if !ok {
		return x, fmt.Errorf("no cluster %q among yours (dorismanager cluster list)", arg)
	}
	return x, nil
}

func clusterDisplay(c *conn) *cobra.Command {
	var f *format
	cmd := &cobra.Command{
		Use:               "display CLUSTER",
		Short:             "show every node of a cluster with its status (by id or name)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCluster(c),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			x, err := findCluster(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			var st rest.ClusterStatus
			raw, err := readRaw(cmd.Context(), cl, fmt.Sprintf("/api/cluster/%d/status", x.ID), &st)
			if err != nil {
				return err
			}
			if f.json() {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			return statusTable(cmd.OutOrStdout(), st)
		},
	}
	f = addFormat(cmd)
	silence(cmd)
	return cmd
}

// statusTable prints a cluster's nodes: host, role, FE type, ports, status.
func statusTable(w io.Writer, st rest.ClusterStatus) error {
	head := fmt.Sprintf("cluster %s (id %d)", st.Name, st.ClusterID)
	if st.Destroyed {
		head += ": destroyed"
	}
	fmt.Fprintln(w, head)
	tw := table(w)
	fmt.Fprintln(tw, "HOST\tROLE\tFE TYPE\tPORTS\tSTATUS\tVERSION\tDETAIL")
	nodes := append([]rest.NodeStatus(nil), st.Nodes...)
	order := map[string]int{"FE": 0, "BE": 1, "BROKER": 2}
	sort.SliceStable(nodes, func(i, j int) bool {
		oi, iok := order[nodes[i].Role]
		oj, jok := order[nodes[j].Role]
		if !iok {
			oi = 3
		}
		if !jok {
			oj = 3
		}
		if oi != oj {
			return oi < oj
		}
		return nodes[i].Host < nodes[j].Host
	})
	for _, n := range nodes {
		typ := "-"
		if n.FENodeType != nil && *n.FENodeType != "" {
			typ = *n.FENodeType
		}
		if n.Master {
			typ += " (master)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Host, n.Role, typ, ports(n.Ports), n.Status, str(n.Version), short(str(n.Detail), 80))
	}
	return tw.Flush()
}

func str(p *string) string {
	if p == nil || *p == "" {
		return "-"
	}
	return *p
}

// ports is "edit_log=9010 http=8030 ..." (the _port suffix dropped), by name.
func ports(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		name := strings.TrimSuffix(strings.TrimPrefix(k, "port."), "_port")
		parts = append(parts, fmt.Sprintf("%s=%d", name, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func deployCmd(c *conn, scaleOut bool) *cobra.Command {
	var plain, noInput, timings bool
	use, short, long := "deploy TOPOLOGY.yaml", "install a Doris cluster from a topology file",
		`Reads the topology file (see examples/topology.yaml), checks all of it, renders each
role's conf (Doris's default ports, dirs under each role's home, priority_networks of
each host's own address, the file's overrides), then walks the manager's install
wizard: installAgent, installService, deployConfig, startService, buildCluster,
installComplete, showing every task as it runs. It ends with the cluster's table.

Run it again after a failure: it finds your unfinished process of the cluster and
resumes at its step (failed tasks run again; installAgent and deployConfig are sent
again with the file's SSH settings and confs). On a terminal a failed task offers
retry, skip or abort; elsewhere the command stops, prints the command that resumes,
and exits non-zero. Run on a cluster that has every node of the file, it changes nothing.`
	if scaleOut {
		use, short, long = "scale-out TOPOLOGY.yaml", "add the nodes of a topology file that a cluster lacks",
			`Reads the topology file of an existing cluster (its name is the file's cluster),
leaves out every node (host and role) the cluster has, and walks the install wizard
for the others on their hosts: new FEs join the cluster's running master, new BEs
and brokers join through it. Resumes and reports like deploy.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			top, err := topology.Load(args[0])
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			pr := printer(cmd, plain)
			if warn := plainHTTPWarning(cl.Server()); warn != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), warn)
			}
			o := wizard.Options{Client: cl, Topology: top, ScaleOut: scaleOut, Printer: pr,
				Resume: commandLine(append(append([]string{strings.Fields(cmd.CommandPath())[0], "cluster", cmd.Name()}, connArgs(cmd)...), args[0])...)}
			if !noInput && interactive(cmd) {
				o.Ask = func(t rest.Task) (wizard.Action, error) {
					for {
						a, err := ask(cmd, fmt.Sprintf("task %d %s on %s failed: [r]etry, [s]kip (leave this node out), [a]bort? ", t.ID, t.TaskType, t.Host))
						if err != nil {
							return wizard.Abort, err
						}
						switch strings.ToLower(a) {
						case "r", "retry":
							return wizard.Retry, nil
						case "s", "skip":
							return wizard.Skip, nil
						case "a", "abort":
							return wizard.Abort, nil
						}
					}
				}
			}
			res, err := wizard.Run(ctx, o)
			if err != nil {
				if res != nil && timings && len(res.Steps) > 0 {
					printTimings(cmd.OutOrStdout(), res.Timings())
				}
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out)
			if len(res.Status.Nodes) > 0 {
				if err := statusTable(out, res.Status); err != nil {
					return err
				}
			}
			if res.ProcessID != 0 && !scaleOut && res.Created {
				fmt.Fprintf(out, "\nroot's password was generated; reveal it once (admin): POST /api/cluster/%d/adminPassword/reveal\n", res.Cluster.ID)
			}
			if timings && len(res.Steps) > 0 {
				printTimings(out, res.Timings())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&plain, "plain", false, "plain progress lines even on a terminal")
	cmd.Flags().BoolVar(&noInput, "no-input", false, "never ask: stop at a failed task and print the command that resumes")
	cmd.Flags().BoolVar(&timings, "timings", false, "print each step's task time and the gap before it (from the tasks' start and end times)")
	silence(cmd)
	return cmd
}

// plainHTTPWarning is the warning for sending an SSH key over plain http
// to a manager that is not on this machine ("" when there is no reason).
func plainHTTPWarning(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return ""
	}
	return fmt.Sprintf("warning: the SSH key goes to %s over plain http, readable on the way: serve the manager with --tls auto and use https:// with --ca-file", u.Host)
}

func printTimings(w io.Writer, ts []wizard.Timing) {
	fmt.Fprintln(w, "\ntimings (task time: first task start to last task end; gap: previous step's last end to this step's first start)")
	tw := table(w)
	fmt.Fprintln(tw, "STEP\tTASKS\tTASK TIME\tGAP BEFORE\tWALL (this command)")
	var total time.Duration
	for _, t := range ts {
		gap := "-"
		if t.Gap != 0 {
			gap = fmt.Sprintf("%.3fs", t.Gap.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3fs\t%s\t%.3fs\n", t.Step, t.Tasks, t.TaskTime.Seconds(), gap, t.Wall.Seconds())
		total += t.Wall
	}
	fmt.Fprintf(tw, "total\t\t\t\t%.3fs\n", total.Seconds())
	_ = tw.Flush()
}
