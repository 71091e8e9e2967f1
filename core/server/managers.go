package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
	"github.com/hashicorp/go-hclog"
)

// Managers on one database find each other in the store: each writes its
// row (id, agent endpoint URL, CA) at start and every ManagerSeenEvery;
// rows older than ManagerExpiry are managers gone. Agents are told the
// live ones' URLs (at install and in every answer) to fail over to.
const (
	ManagerSeenEvery = 10 * time.Second
	ManagerExpiry    = 3 * ManagerSeenEvery
)

// peers keeps this manager's row fresh and the live managers' agent
// endpoints at hand.
type peers struct {
	st   *store.Store
	log  hclog.Logger
	self store.Manager

	mu     sync.Mutex
	urls   []string
	warned map[string]bool // managers with another CA, said once
}

// seen writes this manager's row and reads the live ones.
func (p *peers) seen(ctx context.Context) error {
	if err := p.st.ManagerSeen(ctx, p.self); err != nil {
		return err
	}
	ms, err := p.st.LiveManagers(ctx, ManagerExpiry)
	if err != nil {
		return err
	}
	urls := []string{}
	if p.self.AgentURL != "" {
		urls = append(urls, p.self.AgentURL)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range ms {
		if m.ID == p.self.ID {
			continue
		}
		if m.CAID != "" && m.CAID != p.self.CAID && !p.warned[m.ID] {
			p.warned[m.ID] = true
			p.log.Error("another manager on this database signs with another CA: its agents refuse this manager and this one's refuse it; "+
				"managers sharing a database must share <data-dir>/pki (ca.key, ca.crt, bundle.crt) and the secret key",
				"manager", m.ID, "its_ca", m.CAID, "this_ca", p.self.CAID)
		}
		// A restarted manager's old row names the same URL until it expires.
		if m.AgentURL != "" && !slices.Contains(urls, m.AgentURL) {
			urls = append(urls, m.AgentURL)
		}
	}
	p.urls = urls
	return nil
}

// URLs are the agent endpoints of the live managers (this one first when
// it has an advertise URL), as of the last refresh.
func (p *peers) URLs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.urls...)
}

// run refreshes the row until ctx ends, then deletes it (with the rows of
// managers gone without saying so).
func (p *peers) run(ctx context.Context) {
	t := time.NewTicker(ManagerSeenEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.st.ForgetManagers(fctx, p.self.ID, ManagerExpiry); err != nil {
				p.log.Warn("remove this manager from the running ones", "error", err)
			}
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, ManagerSeenEvery)
			if err := p.seen(sctx); err != nil && ctx.Err() == nil {
				p.log.Warn("record this manager as running (agents may not learn of it)", "error", err)
			}
			cancel()
		}
	}
}
