package jobs

import (
	"context"
	"sync"
	"time"
)

// Hook slots: a process has at most Config.HookConcurrency requests in
// flight to one hook, whether the run that made them still waits for them or
// left them to record their own outcomes (see deliverWorker.sendAll). A run
// takes a slot per request. When a hook's slots are all held and nothing of
// it was answered for stallAfter, its receiver is stalled: a run gets no slot
// and steps aside at once, snoozed without using an attempt, so that a dead
// receiver holds its slots' connections but no worker, and never delays
// deliveries to other hooks. While the receiver answers, a run waits for a
// slot within its sending window: a slow receiver gets slower sending, never
// silence, and one that lets some requests time out is not limited at all.
const stallAfter = 250 * time.Millisecond

// hookGate holds the hooks' slots in a process.
type hookGate struct {
	slots   int // per hook
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	hooks map[string]*hookSlots
}

type hookSlots struct {
	held int
	// busySince is when held last rose from zero, answeredAt the latest
	// answer.
	busySince, answeredAt time.Time
	// freed is closed, and replaced, when a slot is released.
	freed chan struct{}
}

func newHookGate(slots int, timeout time.Duration, now func() time.Time) *hookGate {
	return &hookGate{slots: slots, timeout: timeout, now: now, hooks: make(map[string]*hookSlots)}
}

// acquire takes one of the hook's slots, waiting for one until deadline or
// ctx ends while the receiver answers. It reports whether it took one, and
// whether the hook is stalled, in which case it returns at once.
func (g *hookGate) acquire(ctx context.Context, hookID string, deadline time.Time) (acquired, stalled bool) {
	for {
		g.mu.Lock()
		h := g.hooks[hookID]
		if h == nil {
			h = &hookSlots{freed: make(chan struct{})}
			g.hooks[hookID] = h
		}
		now := g.now()
		if h.held < g.slots {
			if h.held == 0 {
				h.busySince = now
			}
			h.held++
			g.mu.Unlock()
			return true, false
		}
		if now.Sub(h.busySince) > stallAfter && now.Sub(h.answeredAt) > stallAfter {
			g.mu.Unlock()
			return false, true
		}
		freed := h.freed
		g.mu.Unlock()
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-freed:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return false, false
		case <-timer.C:
			return false, false
		}
	}
}

// release gives back a slot of the hook, whose request got an answer or
// not.
func (g *hookGate) release(hookID string, answered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hooks[hookID]
	h.held--
	if answered {
		h.answeredAt = g.now()
	}
	close(h.freed)
	h.freed = make(chan struct{})
	// The map holds only hooks at work.
	if h.held == 0 {
		delete(g.hooks, hookID)
	}
}

// refusalWait is how long a job that found its hook stalled n times in a
// row waits before it asks again: from stallAfter, doubling, up to three
// request timeouts, jittered. Jobs come back as soon as a slot may have
// freed, and a receiver that stays down costs a few fetches per job and
// minute.
func (g *hookGate) refusalWait(n int) time.Duration {
	return jitter(min(stallAfter<<min(max(n-1, 0), 16), 3*g.timeout))
}
