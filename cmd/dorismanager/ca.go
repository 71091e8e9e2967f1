package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
)

// caCommand rolls the manager's CA. A running manager notices the change
// on its own within a few seconds (pki.ReloadEvery).
func caCommand(stdout io.Writer) *cobra.Command {
	var db storeOptions
	cmd := group(&cobra.Command{
		Use:   "ca",
		Short: "show or roll the manager's CA",
		Long: `Show or roll the manager's certificate authority (in <data-dir>/pki). A running manager
notices a change within a few seconds.`,
	})
	db.register(cmd.PersistentFlags())
	status := &cobra.Command{
		Use:   "status",
		Short: "the signing CA, the previous one during a rotation, and which CA each agent's certificate is from",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := readCA(db.dataDir)
			if err != nil {
				return err
			}
			return caStatus(db.dataDir, db.db, st, stdout)
		},
	}
	var finish, force bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "start a rotation (a new CA signs, the old one stays trusted), or end it with --finish",
		Long: `Without --finish: start a rotation; a new CA signs from now on, the old one stays trusted.
With --finish: end it; the old CA is no longer trusted (refused while an agent still holds one
of its certificates, unless --force).`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := readCA(db.dataDir)
			if err != nil {
				return err
			}
			if finish {
				return finishRotation(db, st, force, stdout)
			}
			id, err := pki.Rotate(db.dataDir, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, `started a CA rotation: the new CA %s signs from now on; the old CA %s stays trusted.
Running agents get the new CA bundle and renew onto the new CA at their next heartbeat.
When "dorismanager ca status" shows every agent on the new CA, run "dorismanager ca rotate --finish".
`, id, st.SigningID)
			return nil
		},
	}
	rotate.Flags().BoolVar(&finish, "finish", false, "end the rotation under way: drop the old CA")
	rotate.Flags().BoolVar(&force, "force", false, "with --finish: drop the old CA even though agents still hold its certificates (they are cut off)")
	cmd.AddCommand(status, rotate)
	return cmd
}

func readCA(dataDir string) (pki.Status, error) {
	st, err := pki.ReadStatus(dataDir)
	if err != nil {
		return pki.Status{}, fmt.Errorf("the CA in %s: %w", dataDir, err)
	}
	return st, nil
}

func finishRotation(db storeOptions, st pki.Status, force bool, stdout io.Writer) error {
	if st.PrevID == "" {
		return errors.New("no CA rotation is under way (start one with: dorismanager ca rotate)")
	}
	left, err := agentsNotOn(db.dataDir, db.db, st.SigningID)
	if err != nil {
		return err
	}
	if len(left) > 0 && !force {
		return fmt.Errorf("%d agent(s) still hold certificates of the old CA and would be cut off: %s; start them so they renew, reinstall them, or pass --force",
			len(left), strings.Join(left, ", "))
	}
	if err := pki.FinishRotation(db.dataDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "finished the CA rotation: only the CA %s is trusted now\n", st.SigningID)
	return nil
}

func caStatus(dataDir, db string, st pki.Status, stdout io.Writer) error {
	fmt.Fprintf(stdout, "signing CA:  %s\n", st.SigningID)
	if st.PrevID != "" {
		fmt.Fprintf(stdout, "previous CA: %s (rotation under way)\n", st.PrevID)
	}
	agents, err := listAgents(dataDir, db)
	if err != nil {
		return err
	}
	for _, a := range agents {
		ca := "signing CA"
		switch {
		case a.CertIssuer == st.PrevID && st.PrevID != "":
			ca = "previous CA"
		case a.CertIssuer != st.SigningID:
			ca = "unknown CA " + a.CertIssuer
		}
		exp := "-"
		if a.CertNotAfter != nil {
			exp = a.CertNotAfter.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "agent cluster %d %s: %s, certificate %s from the %s, expires %s\n", a.ClusterID, a.Host, a.Status, a.CertSerial, ca, exp)
	}
	return nil
}

func listAgents(dataDir, db string) ([]store.Agent, error) {
	s, err := store.Open(db, dataDir, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	agents, err := s.AllAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return agents, nil
}

// agentsNotOn names the agents whose certificate is not from the CA id.
func agentsNotOn(dataDir, db, id string) ([]string, error) {
	agents, err := listAgents(dataDir, db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range agents {
		if a.CertIssuer != id {
			out = append(out, fmt.Sprintf("cluster %d %s", a.ClusterID, a.Host))
		}
	}
	return out, nil
}
