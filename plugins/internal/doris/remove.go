package doris

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// Remove deletes the role's home. The manager has stopped the role first;
// a role that still runs is refused rather than deleted under its feet.
func (b *Base) Remove(ctx context.Context, h sdk.Host, req sdk.Request) (sdk.Result, error) {
	s := b.Spec
	dir, err := installDir(req)
	if err != nil {
		return sdk.Result{}, err
	}
	home := s.Home(dir)
	if err := removable(home); err != nil {
		return sdk.Result{}, err
	}
	if proc, err := s.ReadProc(ctx, h, home, path.Join(home, "bin")); err == nil && proc.Running() {
		return sdk.Result{}, sdk.Failf("%s still runs on %s (pid %d): stop it before removing %s", s.Role, req.Node.Host, proc.PID, home)
	}
	res, err := h.Exec(ctx, sdk.Command{Argv: []string{"rm", "-rf", "--", home}})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("remove %s on %s: %w", home, req.Node.Host, err)
	}
	if res.ExitCode != 0 {
		return sdk.Result{}, &sdk.Failure{Summary: fmt.Sprintf("could not remove %s on %s", home, req.Node.Host), Detail: res.Output, Retryable: true}
	}
	facts := sdk.Facts{}
	facts.SetBool(sdk.FactRunning, false)
	return sdk.Result{Summary: fmt.Sprintf("removed %s on %s", home, req.Node.Host), Facts: facts}, nil
}

// removable refuses paths whose removal would take more than a role home
// with it: relative paths and anything shallower than /a/b.
func removable(p string) error {
	clean := path.Clean(p)
	if !path.IsAbs(clean) || strings.Count(clean, "/") < 2 {
		return sdk.Failf("refusing to remove %q: not a role folder (an absolute path at least two levels deep)", p)
	}
	return nil
}
