package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/cli/progress"
	"github.com/dorismanager/dorismanager/cli/rest"
	"github.com/dorismanager/dorismanager/cli/wizard"
)

// opFlags are what every day-2 command shares.
type opFlags struct {
	nodes  []string
	noWait bool
	plain  bool
	yes    bool
}

type node struct {
	Host string `json:"host"`
	Role string `json:"role"`
}

// resolveNodes turns --node HOST[:ROLE] into nodes; a host alone means
// every role the cluster has on it.
func resolveNodes(ctx context.Context, cl *rest.Client, clusterID int64, specs []string) ([]node, error) {
	var out []node
	var roles []rest.Role
	for _, s := range specs {
		host, role, hasRole := strings.Cut(s, ":")
		if host == "" || (hasRole && role == "") {
			return nil, fmt.Errorf("--node %q: HOST or HOST:ROLE (e.g. 10.0.0.12:BE)", s)
		}
		if hasRole {
			out = append(out, node{Host: host, Role: strings.ToUpper(role)})
			continue
		}
		if roles == nil {
			var err error
			if roles, err = cl.Roles(ctx, clusterID); err != nil {
				return nil, err
			}
		}
		n := len(out)
		for _, r := range roles {
			if r.Host == host {
				out = append(out, node{Host: host, Role: r.Role})
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("--node %s: the cluster has no role on that host (dorismanager cluster display)", host)
		}
	}
	return out, nil
}

// opSpec describes one day-2 command.
type opSpec struct {
	use, short, long, endpoint string
	confirm                    bool // ask before (scale-in, destroy)
	nodesRequired              bool
	extra                      func(cmd *cobra.Command) func(ctx context.Context, cl *rest.Client, x rest.Cluster, nodes []node) (map[string]any, error)
}

func opCommands(c *conn) []*cobra.Command {
	var noRolling bool
	var force, purgeScale, purgeDestroy bool
	var pkgURL, pkgSum string
	var allowUnverified bool
	var role, confFile string
	var hosts []string
	var dryRun bool
	specs := []opSpec{
		{use: "stop", short: "stop a cluster's roles (BEs and brokers first, the master FE last)", endpoint: "stop"},
		{use: "start", short: "start a cluster's roles, health-gated (the master FE first)", endpoint: "start"},
		{use: "restart", short: "restart a cluster's roles, one node at a time unless --no-rolling", endpoint: "restart",
			extra: func(cmd *cobra.Command) func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
				cmd.Flags().BoolVar(&noRolling, "no-rolling", false, "stop every node, then start every node")
				return func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
					return map[string]any{"rolling": !noRolling}, nil
				}
			}},
		{use: "scale-in", short: "drain and remove nodes from a cluster, one at a time", endpoint: "scaleIn", confirm: true, nodesRequired: true,
			long: "The cluster drains each node (BE decommission; refused when the others cannot hold its replicas), then it is stopped and its folder removed.",
			extra: func(cmd *cobra.Command) func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
				cmd.Flags().BoolVar(&force, "force", false, "drop without draining")
				cmd.Flags().BoolVar(&purgeScale, "purge", false, "remove the data dirs too")
				return func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
					return map[string]any{"force": force, "purge": purgeScale}, nil
				}
			}},
		{use: "upgrade", short: "upgrade a cluster's roles to another package, rolling", endpoint: "upgrade",
			extra: func(cmd *cobra.Command) func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
				cmd.Flags().StringVar(&pkgURL, "package-url", "", "the new Doris release (required)")
				cmd.Flags().StringVar(&pkgSum, "package-sha256", "", "its SHA-256 (default: the checksum published beside it)")
				cmd.Flags().BoolVar(&allowUnverified, "allow-unverified-package", false, "install a package with no checksum given or published")
				return func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
					if pkgURL == "" {
						return nil, fmt.Errorf("--package-url is required: the release to upgrade to")
					}
					b := map[string]any{"packageUrl": pkgURL}
					if pkgSum != "" {
						b["packageSha256"] = pkgSum
					}
					if allowUnverified {
						b["allowUnverifiedPackage"] = true
					}
					return b, nil
				}
			}},
		{use: "edit-config", short: "replace a role's conf on its nodes (live keys live, the rest by a rolling restart)", endpoint: "config",
			long: "The conf file is the role's whole new conf. Each node's diff and each key's impact go into its task's response; --dry-run reports them and changes nothing.",
			extra: func(cmd *cobra.Command) func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
				cmd.Flags().StringVar(&role, "role", "", "the role: FE, BE or BROKER (required)")
				cmd.Flags().StringVar(&confFile, "conf-file", "", "the role's whole new conf file (required)")
				cmd.Flags().StringSliceVar(&hosts, "host", nil, "only these hosts (repeatable; default every host of the role)")
				cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report the diff and each key's impact, change nothing")
				return func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
					if role == "" || confFile == "" {
						return nil, fmt.Errorf("--role and --conf-file are required")
					}
					b, err := os.ReadFile(confFile)
					if err != nil {
						return nil, fmt.Errorf("read the conf: %w", err)
					}
					body := map[string]any{"role": strings.ToUpper(role), "conf": string(b), "dryRun": dryRun}
					if len(hosts) > 0 {
						body["hosts"] = hosts
					}
					return body, nil
				}
			}},
		{use: "destroy", short: "stop and remove every role and agent of a cluster", endpoint: "destroy", confirm: true,
			long: "Stops every role (master last), removes the role folders (data dirs only with --purge), has every agent remove itself, and marks the cluster destroyed.",
			extra: func(cmd *cobra.Command) func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error) {
				cmd.Flags().BoolVar(&purgeDestroy, "purge", false, "remove the data dirs too")
				return func(_ context.Context, _ *rest.Client, x rest.Cluster, _ []node) (map[string]any, error) {
					return map[string]any{"confirm": x.Name, "purge": purgeDestroy}, nil
				}
			}},
	}
	var out []*cobra.Command
	for _, s := range specs {
		out = append(out, opCmd(c, s))
	}
	return out
}

func opCmd(c *conn, s opSpec) *cobra.Command {
	f := &opFlags{}
	cmd := &cobra.Command{
		Use:               s.use + " CLUSTER",
		Short:             s.short,
		Long:              s.long,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCluster(c),
	}
	var body func(context.Context, *rest.Client, rest.Cluster, []node) (map[string]any, error)
	if s.extra != nil {
		body = s.extra(cmd)
	}
	if s.use != "destroy" && s.use != "edit-config" {
		cmd.Flags().StringSliceVar(&f.nodes, "node", nil, "HOST:ROLE, or HOST for every role on it (repeatable; default every node)")
	}
	cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "print the operation's process id and return")
	cmd.Flags().BoolVar(&f.plain, "plain", false, "plain progress lines even on a terminal")
	if s.confirm {
		cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		ctx, cancel := signalContext(cmd)
		defer cancel()
		x, err := findCluster(ctx, cl, args[0])
		if err != nil {
			return err
		}
		nodes, err := resolveNodes(ctx, cl, x.ID, f.nodes)
		if err != nil {
			return err
		}
		if s.nodesRequired && len(nodes) == 0 {
			return fmt.Errorf("--node is required: the nodes to %s", s.use)
		}
		b := map[string]any{}
		if body != nil {
			if b, err = body(ctx, cl, x, nodes); err != nil {
				return err
			}
		}
		if len(nodes) > 0 {
			b["nodes"] = nodes
		}
		if s.confirm && !f.yes {
			if err := confirm(cmd, s.use, x, nodes); err != nil {
				return err
			}
		}
		pid, err := cl.Operation(ctx, x.ID, s.endpoint, b)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s of cluster %s: process %d\n", s.use, x.Name, pid)
		if f.noWait {
			fmt.Fprintf(cmd.OutOrStdout(), "follow it with: %s\n", commandLine(append([]string{strings.Fields(cmd.CommandPath())[0], "process", "watch"}, append(connArgs(cmd), fmt.Sprint(pid))...)...))
			return nil
		}
		return watch(ctx, cmd, cl, pid, printer(cmd, f.plain), s.use == "edit-config")
	}
	silence(cmd)
	return cmd
}

// confirm asks before destroy and scale-in; without a terminal --yes is needed.
func confirm(cmd *cobra.Command, op string, x rest.Cluster, nodes []node) error {
	if !interactive(cmd) {
		return fmt.Errorf("%s asks for confirmation and there is no terminal to ask: add --yes", op)
	}
	what := "every node"
	if len(nodes) > 0 {
		parts := make([]string, len(nodes))
		for i, n := range nodes {
			parts[i] = n.Host + ":" + n.Role
		}
		what = strings.Join(parts, ", ")
	}
	a, err := ask(cmd, fmt.Sprintf("%s %s of cluster %s. Type the cluster's name to go on: ", op, what, x.Name))
	if err != nil {
		return err
	}
	if a != x.Name {
		return fmt.Errorf("%s not confirmed (%q is not %q): nothing was sent", op, a, x.Name)
	}
	return nil
}

// watch follows a process's current tasks until they are done; a failed
// task ends it with what to do next.
func watch(ctx context.Context, cmd *cobra.Command, cl *rest.Client, pid int64, pr progress.Printer, responses bool) error {
	start := time.Now()
	pr.Step(fmt.Sprintf("process %d", pid))
	tasks, failed, err := wizard.Watch(ctx, cl, pid, pr, 300*time.Millisecond, time.Second, false)
	if err != nil {
		return err
	}
	if responses {
		for _, t := range tasks {
			if msg := t.Message(); msg != "" {
				pr.Line(fmt.Sprintf("task %d %s on %s:\n%s", t.ID, t.TaskType, t.Host, msg))
			}
		}
	}
	if len(failed) == 0 {
		pr.StepDone(fmt.Sprintf("process %d: every task done in %.1fs", pid, time.Since(start).Seconds()))
		return nil
	}
	wizard.ShowFailed(ctx, cl, pr, failed)
	root := strings.Fields(cmd.CommandPath())[0]
	var hints []string
	for _, t := range failed {
		hints = append(hints, fmt.Sprintf("%s task retry %d", root, t.ID), fmt.Sprintf("%s task skip %d", root, t.ID))
	}
	pr.Line(fmt.Sprintf("the tasks after it wait. Then: %s; or end it: %s process complete %d", strings.Join(hints, ", "), root, pid))
	return fmt.Errorf("process %d: %d task(s) failed", pid, len(failed))
}
