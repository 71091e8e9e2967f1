package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TasksChannel is the PostgreSQL notification channel on which managers
// sharing a database tell each other that tasks may have become runnable.
const TasksChannel = "dorismanager_tasks"

// NotifyTasks tells every manager listening on the database (ListenTasks)
// that tasks may have become runnable; from is the sender's manager id.
// Call it after the commit that made the work. On SQLite, which one
// manager uses, it does nothing.
func (s *Store) NotifyTasks(ctx context.Context, from string) error {
	if !s.postgres {
		return nil
	}
	if err := s.q(ctx).Exec("SELECT pg_notify(?, ?)", TasksChannel, from).Error; err != nil {
		return fmt.Errorf("notify other managers of runnable tasks: %w", err)
	}
	return nil
}

// ListenTasks calls wake with the sender's manager id for every
// NotifyTasks on the database, and with "" whenever it (re)starts
// listening (notifications sent meanwhile are lost), until ctx ends. It
// listens on a connection of its own and reconnects after an error,
// backing off up to 30 s; meanwhile callers rely on polling. On SQLite
// it returns at once.
func (s *Store) ListenTasks(ctx context.Context, wake func(from string)) error {
	if !s.postgres {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		listened, err := s.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("listen for task notifications from other managers; relying on polling until it works again",
			"error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// listen runs one listening connection until it fails; listened says it
// got as far as listening.
func (s *Store) listen(ctx context.Context, wake func(string)) (listened bool, err error) {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+TasksChannel); err != nil {
		return false, fmt.Errorf("LISTEN %s: %w", TasksChannel, err)
	}
	wake("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("wait for a notification: %w", err)
		}
		wake(n.Payload)
	}
}
