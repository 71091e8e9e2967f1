package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/core/pluginhost"
)

// pluginsCommand is "plugins ...": the role plugins, the clusters' pins
// and the keys plugins must be signed by. What each does is
// pluginhost.CLI's; a failure is explained on stderr and exits 1.
func pluginsCommand(stdout, stderr io.Writer) *cobra.Command {
	c := pluginhost.CLI{Stdout: stdout, Stderr: stderr}
	cmd := group(&cobra.Command{
		Use:   "plugins",
		Short: "manage the role plugins, the clusters' pins and the keys plugins must be signed by",
		Long: `Manage the role plugins in --plugins-dir, the clusters' pins (in the manager's database:
--db, or else <data-dir>/dorismanager.db when it exists) and the keys plugins must be signed by
(<data-dir>/plugin-keys). Changes tell a manager running on --data-dir to rescan.`,
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.Dir, "plugins-dir", "", "plugins directory (empty: plugins/ beside the dorismanager binary)")
	pf.StringVar(&c.DataDir, "data-dir", "data", "the manager's data directory (pins, trusted keys, and the pid of a running manager)")
	pf.StringVar(&c.DB, "db", "", "database: a postgres:// URL (default the SQLite file <data-dir>/dorismanager.db)")

	// sub is one plugins command taking n arguments.
	sub := func(use, short string, n int, do func(ctx context.Context, args []string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactArgs(n),
			RunE: func(cmd *cobra.Command, args []string) error {
				if c.Dir == "" {
					c.Dir = defaultPluginsDir()
				}
				if err := do(cmd.Context(), args); err != nil {
					fmt.Fprintf(stderr, "plugins %s: %v\n", cmd.Name(), err)
					return exitCode(1)
				}
				return nil
			},
		}
	}
	var key string
	sign := sub("sign --key PRIVATE FILE", "write FILE_SHA256SUM and its signature FILE_SHA256SUM.sig", 1,
		func(_ context.Context, a []string) error { return c.Sign(key, a[0]) })
	sign.Flags().StringVar(&key, "key", "", "the private key file (PEM, from plugins keygen; mode 0600)")
	sign.Args = func(cmd *cobra.Command, args []string) error {
		if key == "" {
			return usageErrorf("usage: %s: --key is required", cmd.UseLine())
		}
		return exactArgs(1)(cmd, args)
	}
	_ = sign.MarkFlagRequired("key") // for completion; Args says it first

	cmd.AddCommand(
		sub("list", "accepted plugins, refused files (and why), trusted keys, every cluster's versions", 0,
			func(ctx context.Context, _ []string) error { return c.List(ctx) }),
		sub("verify", "check every file, starting each through the plugin handshake; exit 1 if any is refused", 0,
			func(ctx context.Context, _ []string) error { return c.Verify(ctx) }),
		sub("install FILE", "check FILE (signature, describe, handshake) and install it with its checksum and signature "+
			"under its canonical name; a running manager is told to rescan", 1,
			func(ctx context.Context, a []string) error { return c.Install(ctx, a[0]) }),
		sub("remove ROLE VERSION", "remove a version no cluster is pinned to", 2,
			func(ctx context.Context, a []string) error { return c.Remove(ctx, a[0], a[1]) }),
		sub("pin CLUSTER ROLE RULE", `pin a cluster's role to a version or rule (1.2.3, ~1.2, ">=1.2 <2"); `+
			"pinning again accepts a new build under the pinned version", 3,
			func(ctx context.Context, a []string) error { return c.Pin(ctx, a[0], a[1], a[2]) }),
		sub("unpin CLUSTER ROLE", "remove a pin (the next use pins the highest version)", 2,
			func(ctx context.Context, a []string) error { return c.Unpin(ctx, a[0], a[1]) }),
		sub("trust KEY", "trust a signing key: a public key file (PEM) or its base64; kept in <data-dir>/plugin-keys/", 1,
			func(_ context.Context, a []string) error { return c.Trust(a[0]) }),
		sub("untrust KEY", "stop trusting a key: its fingerprint (SHA256:...), file or base64", 1,
			func(_ context.Context, a []string) error { return c.Untrust(a[0]) }),
		sub("keys", "the trusted keys", 0,
			func(context.Context, []string) error { return c.Keys() }),
		sign,
		sub("keygen FILE", "make a signing key pair: FILE (private, 0600) and FILE.pub", 1,
			func(_ context.Context, a []string) error { return c.Keygen(a[0]) }),
	)
	return cmd
}
