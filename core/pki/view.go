package pki

import (
	"crypto/tls"
	"time"
)

// snapshot is what every handshake and heartbeat reads (the trusted CAs,
// the bundle, the manager's certificate), taken under the lock at most
// every ReloadEvery and read without it. With the lock on every read,
// thousands of agents' handshakes and heartbeats queued on it, and on a
// busy machine each hand-over waited for the next goroutine to get a CPU:
// the agent endpoint stalled with the processor mostly idle.
type snapshot struct {
	st     *state
	mgr    *tls.Certificate
	mgrErr error
	at     time.Time // the files' last check; the snapshot holds until ReloadEvery after it
}

// view returns the current snapshot, refreshing it (files checked, the
// manager's certificate renewed when due) once it is ReloadEvery old.
// While one caller refreshes, the others go on with the last snapshot.
func (a *Authority) view() *snapshot {
	if v := a.snap.Load(); v != nil && a.opts.Now().Sub(v.at) < ReloadEvery {
		return v
	}
	if !a.mu.TryLock() {
		if v := a.snap.Load(); v != nil {
			return v
		}
		a.mu.Lock()
	}
	defer a.mu.Unlock()
	return a.refreshLocked()
}

// refreshLocked takes a new snapshot. A failure to make the manager's
// certificate is not kept: the next read tries again.
func (a *Authority) refreshLocked() *snapshot {
	st := a.currentLocked()
	mgr, err := a.managerLocked()
	v := &snapshot{st: st, mgr: mgr, mgrErr: err, at: a.checked}
	if err != nil {
		v.at = time.Time{}
	}
	a.snap.Store(v)
	return v
}
