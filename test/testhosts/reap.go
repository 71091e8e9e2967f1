package testhosts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// A test binary killed by a timeout or ^C never calls Close, so its hosts
// (namespaces, veths, bridge, sshd and whatever ran inside, the temp
// folder) would stay forever. Start therefore records who owns each set of
// hosts in its folder, and every Start first removes the sets whose owner
// is gone.

// recordFile is the owner record inside a Hosts.Dir.
const recordFile = "owner.json"

// Owner identifies a process across pid reuse: the pid, its start time
// (clock ticks after boot, field 22 of /proc/<pid>/stat) and the boot.
type Owner struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot"`
}

// record is what a Hosts.Dir says about itself.
type record struct {
	Owner Owner `json:"owner"`
	// Detached hosts outlive their process on purpose (the demo) and are
	// removed by whoever detached them, never by the reaper.
	Detached bool  `json:"detached,omitempty"`
	State    State `json:"state"`
}

// selfOwner identifies this process.
func selfOwner() (Owner, error) {
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return Owner{}, err
	}
	return Owner{PID: pid, Start: start, Boot: bootID()}, nil
}

// procStart is the start time of a live (not zombie) process.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// Gone tells whether the owner no longer runs: no such pid, a pid now
// used by a later process, a zombie, or a record from an earlier boot.
func (o Owner) Gone() bool {
	if o.PID <= 0 {
		return true
	}
	if b := bootID(); o.Boot != "" && b != "" && o.Boot != b {
		return true
	}
	start, err := procStart(o.PID)
	return err != nil || start != o.Start
}

// save writes the owner record atomically into hs.Dir.
func (hs *Hosts) save() error {
	b, err := json.MarshalIndent(record{Owner: hs.owner, Detached: hs.detached, State: hs.State()}, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(hs.Dir, recordFile)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("testhosts owner record: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("testhosts owner record: %w", err)
	}
	return nil
}

// Detach marks the hosts as meant to outlive this process (a demo left
// running for a person): the reaper of later Starts leaves them alone, and
// only Close (usually through Attach in another process) removes them.
func (hs *Hosts) Detach() error {
	hs.detached = true
	return hs.save()
}

// Reap removes every set of test hosts whose owner process is gone and
// which was not detached. Start calls it; callers must hold the hosts
// lock. Sets it cannot read or trust are left alone and logged.
func reap(ctx context.Context, log hclog.Logger) error {
	dirs, err := filepath.Glob(filepath.Join(baseDir(), "testhosts-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b, err := os.ReadFile(filepath.Join(dir, recordFile))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				log.Warn("stale test hosts: cannot read the owner record", "dir", dir, "error", err)
			}
			continue // not ours to judge: no record, no removal
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			log.Warn("stale test hosts: bad owner record", "dir", dir, "error", err)
			continue
		}
		if rec.Detached || !rec.Owner.Gone() {
			continue
		}
		// The record must describe its own folder, so that a copied or
		// edited record cannot point the removal somewhere else.
		rec.State.Dir = dir
		if rec.State.Bridge == "" {
			// Killed before any network object existed: only the folder.
			if err := checkDir(dir); err != nil {
				log.Warn("stale test hosts: refusing the folder", "dir", dir, "error", err)
				continue
			}
			log.Info("removing stale test hosts folder", "dir", dir, "owner_pid", rec.Owner.PID)
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		hs, err := Attach(rec.State)
		if err != nil {
			log.Warn("stale test hosts: refusing the owner record", "dir", dir, "error", err)
			continue
		}
		log.Info("removing stale test hosts", "dir", dir, "owner_pid", rec.Owner.PID, "bridge", rec.State.Bridge, "hosts", len(hs.Hosts))
		if err := hs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("remove stale test hosts in %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
