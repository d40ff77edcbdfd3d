package jobs

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Request slots: a process has at most Config.HookConcurrency requests in
// flight to one hook and Config.HostConcurrency to one receiver host, whether
// the run that made them still waits for them or left them to record their
// own outcomes (see deliverWorker.sendAll). A run takes a slot of its hook,
// then one of its host, per request. The host's bound keeps a receiver's
// connections within the transport's idle pool, so that they are kept alive
// instead of dialled and closed by the thousand; the hook's keeps one hook
// from taking all of a host that others share.
//
// When a gate's slots for a key are all held and nothing of it was answered
// for stallAfter, its receiver is stalled: a run gets no slot and steps aside
// at once, snoozed without using an attempt, so that a dead receiver holds
// its slots' connections but no worker, and never delays deliveries to other
// hooks and hosts. While the receiver answers, a run waits for a slot within
// its sending window, first come first served: a slow receiver gets slower
// sending, never silence, and one that lets some requests time out keeps its
// pace while they fit in its slots: a hook sustains about HookConcurrency ÷
// (share held × timeout) requests per second.
const stallAfter = 250 * time.Millisecond

// slotGate holds the slots of a kind of key (hooks, hosts) in a process.
type slotGate struct {
	slots int // per key
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*keySlots
}

type keySlots struct {
	held int
	// busySince is when held last rose from zero, answeredAt the latest
	// answer.
	busySince, answeredAt time.Time
	// waiters wait for a slot in turn; release hands its slot to the first.
	waiters []chan struct{}
}

func newSlotGate(slots int, now func() time.Time) *slotGate {
	return &slotGate{slots: slots, now: now, keys: make(map[string]*keySlots)}
}

// acquire takes one of key's slots, waiting for one until deadline or ctx
// ends while the receiver answers. It reports whether it took one, and
// whether the key is stalled, in which case it returns at once.
func (g *slotGate) acquire(ctx context.Context, key string, deadline time.Time) (acquired, stalled bool) {
	g.mu.Lock()
	k := g.keys[key]
	if k == nil {
		k = &keySlots{}
		g.keys[key] = k
	}
	now := g.now()
	if k.held < g.slots {
		if k.held == 0 {
			k.busySince = now
		}
		k.held++
		g.mu.Unlock()
		return true, false
	}
	if now.Sub(k.busySince) > stallAfter && now.Sub(k.answeredAt) > stallAfter {
		g.mu.Unlock()
		return false, true
	}
	turn := make(chan struct{}, 1)
	k.waiters = append(k.waiters, turn)
	g.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-turn:
		return true, false
	case <-ctx.Done():
	case <-timer.C:
	}
	g.mu.Lock()
	if i := slices.Index(k.waiters, turn); i >= 0 {
		k.waiters = slices.Delete(k.waiters, i, i+1)
		g.mu.Unlock()
		return false, false
	}
	g.mu.Unlock()
	// The slot was handed over as the wait ended: pass it on.
	g.release(key, false)
	return false, false
}

// release gives back a slot of key, whose request got an answer or not: to
// the first waiter, if any.
func (g *slotGate) release(key string, answered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.keys[key]
	if answered {
		k.answeredAt = g.now()
	}
	if len(k.waiters) > 0 {
		k.waiters[0] <- struct{}{}
		k.waiters = slices.Delete(k.waiters, 0, 1)
		return
	}
	k.held--
	// The map holds only keys at work.
	if k.held == 0 {
		delete(g.keys, key)
	}
}

// receiverHost is the key of a hook URL's host in the host gate: the
// transport's, scheme, host and port, as it keeps connections by them.
func receiverHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// refusalWait is how long a job that found its receiver stalled n times in
// a row waits before it asks again: from stallAfter, doubling, up to three
// request timeouts, jittered. Jobs come back as soon as a slot may have
// freed, and a receiver that stays down costs a few fetches per job and
// minute.
func refusalWait(n int, timeout time.Duration) time.Duration {
	return jitter(min(stallAfter<<min(max(n-1, 0), 16), 3*timeout))
}
