package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// packageURLKey is the name of the package URL in a task's input (the
// wizard's role tasks and the operations' tasks share it).
const packageURLKey = "packageUrl"

// RewritePackageURLs passes the stored package URLs that may hold a
// password (processes.package_url, and the packageUrl of tasks' input)
// and do not contain done through rewrite, and stores what it returns, in
// one transaction; rows that rewrite returns unchanged are not written (so
// a second run writes nothing). The manager runs it at start with a
// rewrite that seals the passwords that versions before sealing stored in
// plain text, and the mark of a sealed password as done, so that a start
// reads only the rows still to seal. It returns how many process and task
// rows it changed.
func (s *Store) RewritePackageURLs(ctx context.Context, done string, rewrite func(url string) (string, error)) (processes, tasks int, err error) {
	if done == "" {
		return 0, 0, fmt.Errorf("rewrite package URLs: no mark of a rewritten URL given")
	}
	skip := "%" + likeEscape(done) + "%"
	err = s.Tx(ctx, func(tx *Store) error {
		processes, tasks = 0, 0
		var ps []Process
		if err := tx.q(ctx).Model(&Process{}).Select("id", "package_url").Where(`package_url LIKE ? AND package_url NOT LIKE ? ESCAPE '\'`, "%@%", skip).
			Order("id").Find(&ps).Error; err != nil {
			return fmt.Errorf("read the processes' package URLs: %w", err)
		}
		for _, p := range ps {
			u, err := rewrite(p.PackageURL)
			if err != nil {
				return fmt.Errorf("package URL of process %d: %w", p.ID, err)
			}
			if u == p.PackageURL {
				continue
			}
			if err := tx.q(ctx).Model(&Process{}).Where("id = ?", p.ID).UpdateColumn("package_url", u).Error; err != nil {
				return fmt.Errorf("store the package URL of process %d: %w", p.ID, err)
			}
			processes++
		}
		var ts []Task
		if err := tx.q(ctx).Model(&Task{}).Select("id", "input").Where(`input LIKE ? AND input NOT LIKE ? ESCAPE '\'`, "%"+packageURLKey+"%@%", skip).
			Order("id").Find(&ts).Error; err != nil {
			return fmt.Errorf("read the tasks' package URLs: %w", err)
		}
		for _, t := range ts {
			in, changed, err := rewriteInputURL(t.Input, rewrite)
			if err != nil {
				return fmt.Errorf("package URL of task %d: %w", t.ID, err)
			}
			if !changed {
				continue
			}
			if err := tx.q(ctx).Model(&Task{}).Where("id = ?", t.ID).UpdateColumn("input", in).Error; err != nil {
				return fmt.Errorf("store the package URL of task %d: %w", t.ID, err)
			}
			tasks++
		}
		return nil
	})
	return processes, tasks, err
}

// rewriteInputURL rewrites the packageUrl of a task's JSON input; the
// other fields are kept as they are. An input that is no JSON object or
// has no packageUrl string is left alone.
func rewriteInputURL(input string, rewrite func(string) (string, error)) (string, bool, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal([]byte(input), &fields) != nil {
		return input, false, nil
	}
	var u string
	if raw, ok := fields[packageURLKey]; !ok || json.Unmarshal(raw, &u) != nil {
		return input, false, nil
	}
	nu, err := rewrite(u)
	if err != nil || nu == u {
		return input, false, err
	}
	b, err := json.Marshal(nu)
	if err != nil {
		return input, false, err
	}
	fields[packageURLKey] = b
	out, err := json.Marshal(fields)
	if err != nil {
		return input, false, err
	}
	return string(out), true, nil
}
