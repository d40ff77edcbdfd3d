package jobs

import (
	"sync"
	"time"
)

// Stalled hooks: a hook whose receiver has stopped answering (a request
// unanswered for stallAfter, or one that ended without an answer within the
// last request timeout) may have at most stalledJobsMax jobs sending to it in
// a process. Its other jobs step aside, snoozed without using an attempt (see
// deliverWorker.Work), so that a dead receiver holds a couple of workers, not
// all of them, and never delays deliveries to other hooks. A healthy receiver answers in
// milliseconds and is never limited.
const (
	stallAfter     = 250 * time.Millisecond
	stalledJobsMax = 2
)

// hookGate tracks, per hook, this process's jobs and requests in flight and
// the receiver's latest answers.
type hookGate struct {
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	hooks map[string]*hookState
}

type hookState struct {
	jobs     int // jobs sending to the hook
	inFlight int // requests in flight
	// busySince is when inFlight last rose from zero; answeredAt the latest
	// answer; unansweredAt the end of the latest request that got none.
	busySince, answeredAt, unansweredAt time.Time
}

func newHookGate(timeout time.Duration, now func() time.Time) *hookGate {
	return &hookGate{timeout: timeout, now: now, hooks: make(map[string]*hookState)}
}

// enter admits a job of the hook unless the hook is stalled and has
// stalledJobsMax jobs sending already. An admitted job calls leave.
func (g *hookGate) enter(hookID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hooks[hookID]
	if h == nil {
		h = &hookState{}
		g.hooks[hookID] = h
	}
	if h.jobs >= stalledJobsMax && h.stalled(g.now(), g.timeout) {
		return false
	}
	h.jobs++
	return true
}

func (g *hookGate) leave(hookID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hooks[hookID]
	h.jobs--
	// Forget a hook once nothing of it is in flight and its last failure to
	// answer no longer counts, so the map holds only hooks at work.
	if h.jobs == 0 && h.inFlight == 0 && !h.stalled(g.now(), g.timeout) {
		delete(g.hooks, hookID)
	}
}

// requestStarted and requestEnded bracket one request of an admitted job.
func (g *hookGate) requestStarted(hookID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hooks[hookID]
	if h.inFlight == 0 {
		h.busySince = g.now()
	}
	h.inFlight++
}

func (g *hookGate) requestEnded(hookID string, answered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hooks[hookID]
	h.inFlight--
	if answered {
		h.answeredAt = g.now()
	} else {
		h.unansweredAt = g.now()
	}
}

func (h *hookState) stalled(now time.Time, timeout time.Duration) bool {
	if !h.unansweredAt.IsZero() && now.Sub(h.unansweredAt) < timeout && h.unansweredAt.After(h.answeredAt) {
		return true
	}
	waiting := h.busySince
	if h.answeredAt.After(waiting) {
		waiting = h.answeredAt
	}
	return h.inFlight > 0 && now.Sub(waiting) > stallAfter
}
