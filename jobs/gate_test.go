package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSlotGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		gate *slotGate
		now  time.Time
	}
	// Hooks have 3 slots, a host 8, a tenant 12, the process 16; a hook
	// holding one request may stall.
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		bundle := &testBundle{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		bundle.gate = newSlotGate(gateBounds{hook: 3, host: 8, tenant: 12, process: 16}, func() time.Time { return bundle.now })
		bundle.gate.minHeld = 1
		return bundle
	}
	past := func() time.Time { return time.Now().Add(-time.Second) }
	key := func(hook string) slotKey { return slotKey{hook: hook, host: "http://h:80", tenant: "t"} }
	acquire := func(bundle *testBundle, k slotKey) (bool, bool) {
		granted, stalled := bundle.gate.acquire(ctx, k, past())
		return granted != noSlot, stalled
	}
	// take takes n slots of k, which must all be free, and returns the
	// last one's grant.
	take := func(t *testing.T, bundle *testBundle, k slotKey, n int) grant {
		t.Helper()
		var granted grant
		for range n {
			var stalled bool
			granted, stalled = bundle.gate.acquire(ctx, k, past())
			require.NotEqual(t, noSlot, granted, k.hook)
			require.False(t, stalled)
		}
		return granted
	}

	t.Run("AnsweringHookIsNeverRefused", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		take(t, bundle, key("a"), 3)
		bundle.now = bundle.now.Add(stallAfter / 2)
		acquired, stalled := acquire(bundle, key("a"))
		require.False(t, acquired, "every slot of the hook is held")
		require.False(t, stalled, "requests in flight for less than stallAfter")
		bundle.now = bundle.now.Add(stallAfter)
		bundle.gate.release(key("a"), true)
		take(t, bundle, key("a"), 1)
		bundle.now = bundle.now.Add(stallAfter / 2)
		_, stalled = acquire(bundle, key("a"))
		require.False(t, stalled, "an answer came in within stallAfter")
	})

	t.Run("HangingHookIsStalled", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		take(t, bundle, key("a"), 3)
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		acquired, stalled := acquire(bundle, key("a"))
		require.False(t, acquired)
		require.True(t, stalled)
		take(t, bundle, key("b"), 3)

		// A request ends unanswered: its slot is free again, taken as a
		// stalled hook's.
		bundle.gate.release(key("a"), false)
		take(t, bundle, key("a"), 1)
		_, stalled = acquire(bundle, key("a"))
		require.True(t, stalled)
		// Its requests all end unanswered: it is still stalled.
		for range 3 {
			bundle.gate.release(key("a"), false)
		}
		require.True(t, bundle.gate.hooks[key("a")].stalled)
		// An answer ends the stall at once.
		take(t, bundle, key("a"), 1)
		require.True(t, bundle.gate.release(key("a"), true), "recovered")
		_, ok := bundle.gate.hooks[key("a")]
		require.False(t, ok, "an answering hook holding nothing is forgotten")
	})

	t.Run("StalledHooksTakeHalfOfAHost", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		// Two hooks hang with every slot they took while new, 6 of the
		// host's 8: they stall.
		take(t, bundle, key("a1"), 3)
		take(t, bundle, key("a2"), 3)
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		// An answering hook gets the host's other half, over its bound:
		// beyond it, over connections of their own.
		require.Equal(t, hostSlot, take(t, bundle, key("b"), 2))
		require.Equal(t, overflowSlot, take(t, bundle, key("b"), 1))
		host := bundle.gate.hosts["http://h:80"]
		require.Equal(t, 9, host.held)
		require.Equal(t, 6, host.stalled)
		// Stalled hooks get none while they hold half or more.
		bundle.gate.release(key("a1"), false)
		bundle.gate.release(key("a1"), false)
		acquired, stalled := acquire(bundle, key("a2"))
		require.False(t, acquired)
		require.True(t, stalled, "a2 has no slot, stalled hooks hold their half")
		// Below half, a stalled hook takes a slot, within the host's bound.
		bundle.gate.release(key("a1"), false)
		take(t, bundle, key("a1"), 1)
		acquired, _ = acquire(bundle, key("a1"))
		require.False(t, acquired, "stalled hooks hold their half")
		// The answering hook still has its own slots.
		bundle.gate.release(key("b"), true)
		take(t, bundle, key("b"), 1)
	})

	t.Run("StalledHooksNeverFillAHost", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		take(t, bundle, key("a1"), 3)
		take(t, bundle, key("a2"), 3)
		take(t, bundle, key("a3"), 2)
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		// 8 held by stalled hooks: they count as half, an answering hook
		// has the other half.
		take(t, bundle, key("b1"), 3)
		take(t, bundle, key("b2"), 1)
		acquired, stalled := acquire(bundle, key("b2"))
		require.False(t, acquired, "answering hooks hold the host's other half")
		require.False(t, stalled)
		require.Equal(t, 12, bundle.gate.hosts["http://h:80"].held, "1.5 times the host's bound at most")
	})

	t.Run("HookHoldingFewRequestsDoesNotStall", func(t *testing.T) {
		t.Parallel()
		bundle := &testBundle{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		bundle.gate = newSlotGate(gateBounds{hook: 64, host: 128, tenant: 512, process: 1024}, func() time.Time { return bundle.now })
		take(t, bundle, key("slow"), stallMinHeld-1)
		bundle.now = bundle.now.Add(time.Second)
		take(t, bundle, key("slow"), 1)
		require.False(t, bundle.gate.hooks[key("slow")].stalled, "watched again from its next request")
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		_, stalled := acquire(bundle, key("slow"))
		require.False(t, stalled)
		require.True(t, bundle.gate.hooks[key("slow")].stalled, "it holds stallMinHeld and more, unanswered")
	})

	t.Run("AnsweringHooksShareAHost", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for _, hook := range []string{"a", "b"} {
			take(t, bundle, key(hook), 3)
		}
		take(t, bundle, key("c"), 2)
		acquired, stalled := acquire(bundle, key("c"))
		require.False(t, acquired, "the host's 8 slots are held")
		require.False(t, stalled)
	})

	t.Run("TenantAndProcessBounds", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		other := func(hook, tenant string) slotKey {
			return slotKey{hook: hook, host: "http://" + hook + ":80", tenant: tenant}
		}
		for _, hook := range []string{"a", "b", "c", "d"} {
			take(t, bundle, other(hook, "t1"), 3)
		}
		acquired, _ := acquire(bundle, other("e", "t1"))
		require.False(t, acquired, "the tenant's 12 slots are held")
		take(t, bundle, other("e", "t2"), 3)
		take(t, bundle, other("f", "t2"), 1)
		acquired, _ = acquire(bundle, other("f", "t2"))
		require.False(t, acquired, "the process's 16 slots are held")

		// Tenant t1's hooks stall; the others answer and let go: their
		// slots go to answering hooks, while stalled ones hold half the
		// process and more.
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		for range 3 {
			bundle.gate.release(other("e", "t2"), true)
		}
		bundle.gate.release(other("f", "t2"), true)
		acquired, stalled := acquire(bundle, other("i", "t1"))
		require.False(t, acquired, "a tenant's pool holds to its bound")
		require.False(t, stalled)
		take(t, bundle, other("f", "t2"), 3)
		take(t, bundle, other("g", "t3"), 1)
		acquired, _ = acquire(bundle, other("g", "t3"))
		require.False(t, acquired, "the process holds to its bound")
		require.Equal(t, 16, bundle.gate.process.held)
		// A stalled hook's request ends: an answering hook takes its slot.
		bundle.gate.release(other("a", "t1"), false)
		take(t, bundle, other("g", "t3"), 1)
	})

	t.Run("WaitsForASlotWhileAnswered", func(t *testing.T) {
		t.Parallel()
		gate := newSlotGate(gateBounds{hook: 1, host: 2, tenant: 2, process: 2}, time.Now)
		granted, _ := gate.acquire(ctx, key("h"), time.Now().Add(time.Minute))
		require.Equal(t, hostSlot, granted)
		go func() {
			time.Sleep(10 * time.Millisecond)
			gate.release(key("h"), true)
		}()
		granted, _ = gate.acquire(ctx, key("h"), time.Now().Add(time.Minute))
		require.Equal(t, hostSlot, granted, "the freed slot")
	})

	t.Run("FirstComeFirstServed", func(t *testing.T) {
		t.Parallel()
		gate := newSlotGate(gateBounds{hook: 1, host: 2, tenant: 2, process: 2}, time.Now)
		granted, _ := gate.acquire(ctx, key("h"), time.Now().Add(time.Minute))
		require.Equal(t, hostSlot, granted)
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				granted, _ := gate.acquire(ctx, key("h"), time.Now().Add(time.Minute))
				require.Equal(t, hostSlot, granted)
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				gate.release(key("h"), true)
			}()
			// Each waits before the next comes.
			require.Eventually(t, func() bool {
				gate.mu.Lock()
				defer gate.mu.Unlock()
				return len(gate.waiters) == i+1
			}, time.Second, time.Millisecond)
		}
		gate.release(key("h"), true)
		wg.Wait()
		require.Equal(t, []int{0, 1, 2}, order)
		requireEmpty(t, gate)
	})

	t.Run("WaiterThatGivesUpLosesNoSlot", func(t *testing.T) {
		t.Parallel()
		gate := newSlotGate(gateBounds{hook: 1, host: 2, tenant: 2, process: 2}, time.Now)
		granted, _ := gate.acquire(ctx, key("h"), time.Now().Add(time.Minute))
		require.Equal(t, hostSlot, granted)
		granted, stalled := gate.acquire(ctx, key("h"), time.Now().Add(20*time.Millisecond))
		require.Equal(t, noSlot, granted, "no slot freed in time")
		require.False(t, stalled)
		gate.release(key("h"), true)
		requireEmpty(t, gate)
	})

	t.Run("ForgetsIdleHooks", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		take(t, bundle, key("a"), 1)
		bundle.gate.release(key("a"), true)
		requireEmpty(t, bundle.gate)

		take(t, bundle, key("b"), 1)
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		bundle.gate.release(key("b"), false)
		require.Len(t, bundle.gate.hooks, 1, "a stalled hook is remembered")
		bundle.now = bundle.now.Add(forgetAfter + time.Minute)
		acquired, _ := acquire(bundle, key("c"))
		require.True(t, acquired)
		bundle.gate.release(key("c"), true)
		requireEmpty(t, bundle.gate)
	})

	t.Run("RefusalWaitGrowsToThreeTimeouts", func(t *testing.T) {
		t.Parallel()
		require.InDelta(t, stallAfter, refusalWait(1, 10*time.Second), float64(stallAfter)/4)
		require.InDelta(t, 2*stallAfter, refusalWait(2, 10*time.Second), float64(stallAfter)/2)
		require.InDelta(t, 30*time.Second, refusalWait(100, 10*time.Second), float64(7*time.Second))
	})
}

// requireEmpty: every slot came back, and the gate remembers nothing.
func requireEmpty(t *testing.T, gate *slotGate) {
	t.Helper()
	gate.mu.Lock()
	defer gate.mu.Unlock()
	require.Empty(t, gate.hooks)
	require.Empty(t, gate.hosts)
	require.Empty(t, gate.tenants)
	require.Empty(t, gate.watched)
	require.Zero(t, gate.process.held)
}

func TestReceiverHost(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"http://127.0.0.1:9000/a":       "http://127.0.0.1:9000",
		"http://127.0.0.1:9000/b?x=1":   "http://127.0.0.1:9000",
		"https://Hooks.Example.com/x":   "https://hooks.example.com:443",
		"https://hooks.example.com:443": "https://hooks.example.com:443",
		"http://hooks.example.com/x":    "http://hooks.example.com:80",
		"http://[::1]:8080/x":           "http://::1:8080",
	} {
		require.Equal(t, want, receiverHost(url), url)
	}
}
