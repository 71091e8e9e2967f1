package sandbox

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/dorismanager/dorismanager/test/dorissim"
)

// PackVersion packs the simulated release again as another Doris version
// (same layout and format, the same simulator knobs) beside the first
// package, for upgrades, and returns its URL and SHA-256. Like the first
// package it is packed in a process built without -race.
func (s *Sandbox) PackVersion(ctx context.Context, version string) (url, sha256 string, err error) {
	name := "apache-doris-" + version + "-bin-x64." + string(s.Opts.Format)
	out := filepath.Join(filepath.Dir(s.PackagePath), name)
	sim, tool, err := s.simTools(ctx)
	if err != nil {
		return "", "", err
	}
	if _, err := dorissim.PackByCommand(ctx, tool, dorissim.PackOptions{Layout: s.Opts.Layout, Version: version, Format: s.Opts.Format, Out: out,
		SimBinary: sim, SimEnv: SimEnv}); err != nil {
		return "", "", fmt.Errorf("pack the simulated release %s: %w", version, err)
	}
	sum, err := fileSHA256(out)
	if err != nil {
		return "", "", err
	}
	return s.FileURL(name), sum, nil
}
