package doris

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Backoff paces health and membership polls.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	// Settle is how long WaitAlive sees a node refuse heartbeats for a
	// reason only a conf change mends before it stops waiting (0: 15s).
	// The FE shows the last heartbeat's error until the next one, so a
	// node restarted with a fixed conf still shows the old error for up
	// to one heartbeat interval (5s by default).
	Settle time.Duration
}

// defaultSettle is Backoff.Settle's default: three heartbeat intervals.
const defaultSettle = 15 * time.Second

// DefaultBackoff paces probes of a node's own state (its pid, its health
// endpoint, its row in SHOW BACKENDS), which no one can push to us. The cap
// bounds how late a node that came up is noticed (a BE turns Alive at the
// master's next heartbeat, any moment in the interval); a probe costs one
// agent exec, an HTTP GET or a query on a pooled connection, so twice a
// second is cheap even through a ten-minute FE start. The first pause is
// short: the first health probe comes right after the start script has
// returned, usually while the daemon it left is still starting.
var DefaultBackoff = Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}

// ErrWaitTimeout is returned (wrapped) when Poll gives up.
var ErrWaitTimeout = errors.New("timed out")

// Poll calls check until it reports done, ctx is done, or timeout (0: only
// ctx) has passed. check's error is fatal; to keep polling on a probe
// failure, return (false, nil). On timeout the error wraps ErrWaitTimeout.
func (b Backoff) Poll(ctx context.Context, timeout time.Duration, check func(context.Context) (bool, error)) error {
	if b.Initial <= 0 {
		b = DefaultBackoff
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	delay := b.Initial
	for {
		done, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w after %s", ErrWaitTimeout, timeout)
			}
			return ctx.Err()
		case <-t.C:
		}
		if delay *= 2; delay > b.Max {
			delay = b.Max
		}
	}
}

// ParamDuration reads a duration param ("90s", "5m", or plain seconds).
func ParamDuration(params map[string]string, key string, def time.Duration) (time.Duration, error) {
	v, ok := params[key]
	if !ok || v == "" {
		return def, nil
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("param %s = %q is not a duration like 90s or 5m", key, v)
	}
	return d, nil
}
