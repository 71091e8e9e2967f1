package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	return s.listenOn(ctx, TasksChannel, wake)
}

// listenOn is ListenTasks on any channel.
func (s *Store) listenOn(ctx context.Context, channel string, wake func(payload string)) error {
	if !s.postgres {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		listened, err := s.listen(ctx, channel, wake)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("listen for notifications from other managers; relying on polling until it works again",
			"channel", channel, "error", err, "retry_in", backoff)
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
func (s *Store) listen(ctx context.Context, channel string, wake func(string)) (listened bool, err error) {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return false, fmt.Errorf("LISTEN %s: %w", channel, err)
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

// AgentsChannel is the PostgreSQL notification channel on which a manager
// tells the others that an agent registered with it.
const AgentsChannel = "dorismanager_agents"

// NotifyRegistered tells every manager listening (ListenRegistered) that
// the agent of (clusterID, host) registered; call it after the record
// was written. Nothing on SQLite.
func (s *Store) NotifyRegistered(ctx context.Context, clusterID int64, host string) error {
	if !s.postgres {
		return nil
	}
	if err := s.q(ctx).Exec("SELECT pg_notify(?, ?)", AgentsChannel, fmt.Sprintf("%d/%s", clusterID, host)).Error; err != nil {
		return fmt.Errorf("tell other managers the agent of %s registered: %w", host, err)
	}
	return nil
}

// ListenRegistered calls wake for every NotifyRegistered on the database
// until ctx ends (reconnecting as ListenTasks does; a (re)connect wakes
// with clusterID 0). On SQLite it returns at once.
func (s *Store) ListenRegistered(ctx context.Context, wake func(clusterID int64, host string)) error {
	return s.listenOn(ctx, AgentsChannel, func(p string) {
		c, host, ok := strings.Cut(p, "/")
		id, err := strconv.ParseInt(c, 10, 64)
		if !ok || err != nil {
			wake(0, "")
			return
		}
		wake(id, host)
	})
}
