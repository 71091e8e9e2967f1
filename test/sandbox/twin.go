package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Twin returns a second manager for the same hosts, package server and
// PostgreSQL database (Options.DB): its own data dir holding the first
// one's CA (pki/ca.key, ca.crt, bundle.crt), secret key and admin token,
// as managers sharing a database must; its own ports and log
// (manager-<name>.log). Start it with StartManager; its Close stops only
// it.
func (s *Sandbox) Twin(name string) (*Sandbox, error) {
	if s.Opts.DB == "" {
		return nil, errors.New("a second manager needs the PostgreSQL database of the first (Options.DB)")
	}
	s.pwMu.Lock()
	if s.adminPW == nil {
		s.adminPW = map[int64]string{}
	}
	pw := s.adminPW
	s.pwMu.Unlock()
	t := &Sandbox{Opts: s.Opts, Hosts: s.Hosts, PackageURL: s.PackageURL, PackageSHA256: s.PackageSHA256, PackageSHA512: s.PackageSHA512,
		PackagePath: s.PackagePath, WorkDir: s.WorkDir, DataDir: filepath.Join(s.WorkDir, "data-"+name),
		logName: "manager-" + name + ".log", twin: true, adminPW: pw}
	if err := os.MkdirAll(filepath.Join(t.DataDir, "pki"), 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{"pki/ca.key", "pki/ca.crt", "pki/bundle.crt", "secret.key", "admin.token"} {
		b, err := os.ReadFile(filepath.Join(s.DataDir, f))
		if err != nil {
			return nil, fmt.Errorf("share the first manager's %s: %w", f, err)
		}
		if err := os.WriteFile(filepath.Join(t.DataDir, f), b, 0o600); err != nil {
			return nil, err
		}
	}
	return t, nil
}
