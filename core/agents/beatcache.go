package agents

import (
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/agent/wire"
	"github.com/dorismanager/dorismanager/core/store"
)

// DefaultBeatCacheTTL is how long a heartbeat answers from what an earlier
// one read (see beatCache).
const DefaultBeatCacheTTL = 30 * time.Second

// beatCache keeps, per certificate serial, the agent record and the pid
// files a heartbeat read from the store, so an agent's next heartbeats
// within the TTL need no store read: with thousands of agents those two
// reads were about 40% of the manager's CPU. Register and renew always
// read the store. This manager's Prepare (a reinstall) and renew drop the
// agent's entries at once; a reinstall through another manager on the same
// database reaches this one's cache after at most the TTL, until when
// heartbeats (liveness only) of the revoked certificate are still taken.
// Pid file changes (roles installed or removed) reach the agent within the
// TTL too.
type beatCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*beatEntry
}

type beatEntry struct {
	agent    store.Agent
	pidFiles []wire.PidFile
	read     time.Time // when agent and pidFiles were read
	lastBeat time.Time // the last heartbeat taken through this entry
}

func newBeatCache(ttl time.Duration) *beatCache {
	return &beatCache{ttl: ttl, m: map[string]*beatEntry{}}
}

// get returns a copy of serial's entry while it is fresh.
func (c *beatCache) get(serial string, now time.Time) (beatEntry, bool) {
	if c.ttl <= 0 {
		return beatEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[serial]
	if !ok || now.Sub(e.read) >= c.ttl {
		delete(c.m, serial)
		return beatEntry{}, false
	}
	return *e, true
}

// put records what a heartbeat read (or, on a hit, the processes and time
// of the beat just taken, keeping the read time).
func (c *beatCache) put(serial string, e beatEntry) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	c.m[serial] = &e
	c.mu.Unlock()
}

// dropAgent forgets every entry of the agent on (clusterID, host).
func (c *beatCache) dropAgent(clusterID int64, host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, e := range c.m {
		if e.agent.ClusterID == clusterID && e.agent.Host == host {
			delete(c.m, s)
		}
	}
}
