package jobs

import (
	"container/heap"
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Request slots: a request holds a slot of its hook, of its receiver host,
// of its hook's tenant and of the process from start to end, whether the run
// that made it still waits for it or left it to record its own outcome (see
// deliverWorker.sendAll). A hook has at most Config.HookConcurrency slots
// in a process, a host Config.HostConcurrency, a tenant
// Config.TenantConcurrency (hooks without a tenant count as one) and the
// process Config.ProcessConcurrency. The host's bound keeps a receiver's
// connections within the transport's idle pool, so that they are kept alive
// instead of dialled and closed by the thousand.
//
// Stalls are decided per hook: a hook that holds stallMinHeld requests or
// more (or all its slots) and got no answer for stallAfter is stalled until
// its next answer; one that holds fewer takes little of anyone's capacity,
// and a slow answer on a busy machine does not make it step aside. Stalled hooks together
// take at most half of each pool (host, tenant, process), and each at most
// its own slots; a run of a stalled hook that finds no slot steps aside at
// once, snoozed without using an attempt, so that a dead receiver holds its
// slots' connections but no worker. Answering hooks have the rest. Slots
// that hooks took before they stalled may put stalled hooks over their half
// until those requests end (within a request timeout): at a host, answering
// hooks are then admitted while what they hold is below the bound less what
// stalled hooks hold, counting that as half the bound at most, so that one
// tenant's hooks never stall another's at a shared receiver host. A host has
// at most 1.5 times its bound in flight, the excess over connections of
// their own (overflowSlot); a tenant and the process hold to their bounds,
// which bound what a process holds open. A hook that answers again is an
// answering hook at once, and the jobs that stepped aside for it are woken
// (see deliverWorker.wakeRefused).
//
// An answering hook's run waits for a slot within its sending window, first
// come first served: a slow receiver gets slower sending, never silence.
const (
	stallAfter   = 250 * time.Millisecond
	stallMinHeld = 4
)

// forgetAfter is how long a gate remembers a stalled hook that holds no slot:
// its next request counts as stalled until then.
const forgetAfter = 10 * time.Minute

// Bounds of a slotGate.
type gateBounds struct {
	hook, host, tenant, process int
}

// slotKey is a request's place in the gate: its hook, the hook's receiver
// host (see receiverHost) and tenant.
type slotKey struct {
	hook, host, tenant string
}

// slotGate holds a process's request slots.
type slotGate struct {
	bounds gateBounds
	now    func() time.Time
	// minHeld is stallMinHeld, or the hook's bound if lower.
	minHeld int

	mu      sync.Mutex
	hooks   map[slotKey]*hookSlots
	hosts   map[string]*pool
	tenants map[string]*pool
	process pool
	// watched are the answering hooks that hold slots, by when they stall
	// if nothing answers (see expire).
	watched watchHeap
	// waiters wait for a slot in turn.
	waiters []*waiter
	// swept is when idle stalled hooks were last forgotten.
	swept time.Time
}

// pool counts the slots of a host, a tenant or the process.
type pool struct {
	bound int
	// overflow: answering hooks may go past the bound by half while stalled
	// hooks hold more than half (a host's pool); other pools hold to their
	// bound.
	overflow      bool
	held, stalled int // stalled: held by stalled hooks
	hooks         int // remembered
}

// admits reports whether a request of a hook, stalled or not, may take a
// slot of p.
func (p *pool) admits(stalled bool) bool {
	switch {
	case stalled:
		return p.stalled < p.bound/2 && p.held < p.bound
	case p.overflow:
		return p.held-p.stalled < p.bound-min(p.stalled, p.bound/2)
	}
	return p.held < p.bound
}

type hookSlots struct {
	key     slotKey
	pools   [3]*pool // host, tenant, process
	held    int
	stalled bool
	// progress is when the hook last got an answer or, if later, when it
	// last began to hold slots.
	progress time.Time
	index    int // in watched, -1 when not watched
}

type waiter struct {
	hook *hookSlots
	turn chan grant // gets the slot
}

// grant is a slot taken, or none.
type grant int

const (
	noSlot grant = iota
	hostSlot
	// overflowSlot is a slot of an answering hook beyond its host's bound,
	// while stalled hooks hold more than half of it: its request goes over
	// the sender's overflow connections (see newSender), since the host's
	// own are held.
	overflowSlot
)

func newSlotGate(bounds gateBounds, now func() time.Time) *slotGate {
	return &slotGate{
		bounds:  bounds,
		now:     now,
		minHeld: min(stallMinHeld, bounds.hook),
		hooks:   make(map[slotKey]*hookSlots),
		hosts:   make(map[string]*pool),
		tenants: make(map[string]*pool),
		process: pool{bound: bounds.process},
	}
}

// acquire takes a slot for a request of key, waiting for one until deadline
// or ctx ends while its hook answers. It returns the slot taken, if any, and
// whether the hook is stalled, in which case it returns at once.
func (g *slotGate) acquire(ctx context.Context, key slotKey, deadline time.Time) (granted grant, stalled bool) {
	g.mu.Lock()
	now := g.now()
	g.expire(now)
	h := g.hook(key, now)
	if g.admits(h) {
		granted = g.take(h, now)
		g.mu.Unlock()
		return granted, false
	}
	if h.stalled {
		g.mu.Unlock()
		return noSlot, true
	}
	w := &waiter{hook: h, turn: make(chan grant, 1)}
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case granted = <-w.turn:
		return granted, false
	case <-ctx.Done():
	case <-timer.C:
	}
	g.mu.Lock()
	if i := slices.Index(g.waiters, w); i >= 0 {
		g.waiters = slices.Delete(g.waiters, i, i+1)
		if g.idle(h) && !h.stalled {
			g.forget(h)
		}
		g.mu.Unlock()
		return noSlot, false
	}
	g.mu.Unlock()
	// The slot was handed over as the wait ended: give it back.
	<-w.turn
	g.release(key, false)
	return noSlot, false
}

// release gives back a slot of key, whose request got an answer or not, and
// hands slots to waiters in turn. It reports whether the answer ended the
// hook's stall.
func (g *slotGate) release(key slotKey, answered bool) (recovered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.expire(now)
	h := g.hooks[key]
	h.held--
	for _, p := range h.pools {
		p.held--
		if h.stalled {
			p.stalled--
		}
	}
	if answered {
		h.progress = now
		if h.stalled {
			recovered = true
			g.setStalled(h, false)
		} else if h.index >= 0 {
			heap.Fix(&g.watched, h.index)
		}
	}
	g.waiters = slices.DeleteFunc(g.waiters, func(w *waiter) bool {
		if !g.admits(w.hook) {
			return false
		}
		w.turn <- g.take(w.hook, now)
		return true
	})
	if h.held == 0 && h.index >= 0 {
		heap.Remove(&g.watched, h.index)
	}
	if g.idle(h) && !h.stalled {
		g.forget(h)
	}
	return recovered
}

// idle reports whether h holds no slot and waits for none.
func (g *slotGate) idle(h *hookSlots) bool {
	return h.held == 0 && !slices.ContainsFunc(g.waiters, func(w *waiter) bool { return w.hook == h })
}

// hook returns key's slots, made if need be.
func (g *slotGate) hook(key slotKey, now time.Time) *hookSlots {
	if h := g.hooks[key]; h != nil {
		return h
	}
	host := g.hosts[key.host]
	if host == nil {
		host = &pool{bound: g.bounds.host, overflow: true}
		g.hosts[key.host] = host
	}
	tenant := g.tenants[key.tenant]
	if tenant == nil {
		tenant = &pool{bound: g.bounds.tenant}
		g.tenants[key.tenant] = tenant
	}
	h := &hookSlots{key: key, pools: [3]*pool{host, tenant, &g.process}, progress: now, index: -1}
	g.hooks[key] = h
	host.hooks++
	tenant.hooks++
	return h
}

func (g *slotGate) admits(h *hookSlots) bool {
	if h.held >= g.bounds.hook {
		return false
	}
	for _, p := range h.pools {
		if !p.admits(h.stalled) {
			return false
		}
	}
	return true
}

func (g *slotGate) take(h *hookSlots, now time.Time) grant {
	granted := hostSlot
	if h.pools[0].held >= h.pools[0].bound {
		granted = overflowSlot
	}
	if h.held == 0 && !h.stalled {
		h.progress = now
	}
	if !h.stalled && h.index < 0 {
		heap.Push(&g.watched, h)
	}
	h.held++
	for _, p := range h.pools {
		p.held++
		if h.stalled {
			p.stalled++
		}
	}
	return granted
}

// setStalled moves h's slots to or from its pools' stalled counts.
func (g *slotGate) setStalled(h *hookSlots, stalled bool) {
	h.stalled = stalled
	for _, p := range h.pools {
		if stalled {
			p.stalled += h.held
		} else {
			p.stalled -= h.held
		}
	}
	if !stalled && h.held > 0 {
		heap.Push(&g.watched, h)
	}
}

// expire stalls the hooks that got no answer for stallAfter, and forgets
// stalled hooks idle for forgetAfter.
func (g *slotGate) expire(now time.Time) {
	for len(g.watched) > 0 && now.Sub(g.watched[0].progress) > stallAfter {
		// One holding few requests leaves the watch until it takes another.
		if h := heap.Pop(&g.watched).(*hookSlots); h.held >= g.minHeld { //nolint:forcetypeassert
			g.setStalled(h, true)
		}
	}
	if now.Sub(g.swept) < time.Minute {
		return
	}
	g.swept = now
	for _, h := range g.hooks {
		if g.idle(h) && now.Sub(h.progress) > forgetAfter {
			g.forget(h)
		}
	}
}

// forget drops h, which is idle, and its pools when no other hook
// remembered is theirs.
func (g *slotGate) forget(h *hookSlots) {
	delete(g.hooks, h.key)
	if h.pools[0].hooks--; h.pools[0].hooks == 0 {
		delete(g.hosts, h.key.host)
	}
	if h.pools[1].hooks--; h.pools[1].hooks == 0 {
		delete(g.tenants, h.key.tenant)
	}
}

// watchHeap orders answering hooks by progress.
type watchHeap []*hookSlots

func (w watchHeap) Len() int           { return len(w) }
func (w watchHeap) Less(i, j int) bool { return w[i].progress.Before(w[j].progress) }
func (w watchHeap) Swap(i, j int) {
	w[i], w[j] = w[j], w[i]
	w[i].index, w[j].index = i, j
}

func (w *watchHeap) Push(x any) {
	h := x.(*hookSlots) //nolint:forcetypeassert
	h.index = len(*w)
	*w = append(*w, h)
}

func (w *watchHeap) Pop() any {
	old := *w
	h := old[len(old)-1]
	old[len(old)-1] = nil
	h.index = -1
	*w = old[:len(old)-1]
	return h
}

// receiverHost is the key of a hook URL's host in the gate: the
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

// refusalWait is how long a job that found its hook stalled n times in a row
// waits before it asks again: from stallAfter, doubling, up to three request
// timeouts, jittered. A receiver that stays down costs a few fetches per job
// and minute; one that answers again wakes its jobs at once.
func refusalWait(n int, timeout time.Duration) time.Duration {
	return jitter(min(stallAfter<<min(max(n-1, 0), 16), 3*timeout))
}
